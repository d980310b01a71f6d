"""rate-limit buckets shared by every API process

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Rate limits held per process allowed N times the limit to N API processes. ``rate_limit_buckets``
holds one GCRA bucket per client (``key:<id>``, ``ip:<address>``, ``authfail:<address>``): the
theoretical arrival time of its next request, epoch seconds by the database's clock, taken and
advanced in one statement (``models/queries.sql``, ``rate_limit_take``). UNLOGGED: buckets are
not worth WAL traffic, and after a crash they are simply full again. Downgrade drops it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_buckets",
        sa.Column("client", sa.String(length=200), nullable=False),
        sa.Column("tat", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("client", name=op.f("pk_rate_limit_buckets")),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("rate_limit_buckets")
