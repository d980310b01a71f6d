"""no per-row foreign key from the bulk-ingested series to markets

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

``candles`` and ``open_interest`` are written 100,000 rows at a time (COPY + one upsert); their
foreign key to ``markets`` ran a referential check per row, 40 % of the bulk write path
(measured: 736 → 443 ms for 100,000 candles). Every batch carries one market id its writer has
just resolved from ``markets``, so the check adds nothing. Downgrade restores the constraints.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("candles", "open_interest")


def upgrade() -> None:
    for table in TABLES:
        op.drop_constraint(f"fk_{table}_market_id_markets", table, type_="foreignkey")


def downgrade() -> None:
    for table in TABLES:
        op.create_foreign_key(
            f"fk_{table}_market_id_markets", table, "markets", ["market_id"], ["id"],
            ondelete="CASCADE",
        )
