"""known positions: real positions and their exchange-computed liquidation prices

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

The real-position layer (models.known_positions): on Hyperliquid every account's positions and
the venue's liquidation price of each are public. ``known_snapshots`` is one reading of a set of
accounts (a resumable live round, or a recorded binned snapshot), ``known_snapshot_accounts``
which accounts it covers and how each read went, ``known_positions`` the positions as read,
``known_snapshot_markets`` per-market totals beside the venue's open interest, and
``known_level_bins`` already-binned levels with their leverage split, and
``known_liquidations`` the sampled accounts' own liquidation fills (kept apart from the market's
``realized_liquidations``: a sample of accounts is not the market). Downgrade drops them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def _snapshot_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["snapshot_id"],
        ["known_snapshots.id"],
        name=op.f(f"fk_{table}_snapshot_id_known_snapshots"),
        ondelete="CASCADE",
    )


_SNAPSHOT_ID = "snapshot_id"


def upgrade() -> None:
    op.create_table(
        "known_snapshots",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("venue", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("taken_at", _TZ, nullable=False),
        sa.Column("finished_at", _TZ, nullable=True),
        sa.Column("selection", sa.Text(), nullable=False),
        sa.Column("accounts_planned", sa.Integer(), nullable=False),
        sa.Column("state_from", _TZ, nullable=True),
        sa.Column("state_to", _TZ, nullable=True),
        sa.Column("leverage_bands", postgresql.ARRAY(sa.String(length=16)), nullable=True),
        sa.Column(
            "meta", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("created_at", _TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_known_snapshots")),
        sa.UniqueConstraint(
            "venue", "source", "taken_at", name=op.f("uq_known_snapshots_venue_source_taken_at")
        ),
    )
    op.create_table(
        "known_snapshot_accounts",
        sa.Column(_SNAPSHOT_ID, sa.BigInteger(), nullable=False),
        _snapshot_fk("known_snapshot_accounts"),
        sa.Column("account", sa.String(length=66), nullable=False),
        sa.Column("dex", sa.String(length=32), nullable=False),
        sa.Column("read_at", _TZ, nullable=True),
        sa.Column("state_time", _TZ, nullable=True),
        sa.Column("positions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "snapshot_id", "account", "dex", name=op.f("pk_known_snapshot_accounts")
        ),
    )
    op.create_table(
        "known_positions",
        sa.Column(_SNAPSHOT_ID, sa.BigInteger(), nullable=False),
        _snapshot_fk("known_positions"),
        sa.Column("account", sa.String(length=66), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("dex", sa.String(length=32), nullable=False),
        sa.Column("coin", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("size", sa.Double(), nullable=False),
        sa.Column("notional_usd", sa.Double(), nullable=False),
        sa.Column("entry_price", sa.Double(), nullable=True),
        sa.Column("leverage", sa.Double(), nullable=True),
        sa.Column("margin_mode", sa.String(length=16), nullable=True),
        sa.Column("liquidation_price", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("snapshot_id", "account", "symbol", name=op.f("pk_known_positions")),
    )
    op.create_table(
        "known_snapshot_markets",
        sa.Column(_SNAPSHOT_ID, sa.BigInteger(), nullable=False),
        _snapshot_fk("known_snapshot_markets"),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("price", sa.Double(), nullable=True),
        sa.Column("long_usd", sa.Double(), nullable=False),
        sa.Column("short_usd", sa.Double(), nullable=False),
        sa.Column("positions", sa.Integer(), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=True),
        sa.Column("bin_width", sa.Double(), nullable=True),
        sa.Column("venue_open_interest_usd", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("snapshot_id", "symbol", name=op.f("pk_known_snapshot_markets")),
    )
    op.create_table(
        "known_level_bins",
        sa.Column(_SNAPSHOT_ID, sa.BigInteger(), nullable=False),
        _snapshot_fk("known_level_bins"),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("usd", sa.Double(), nullable=False),
        sa.Column("usd_by_leverage", postgresql.ARRAY(sa.Double()), nullable=False),
        sa.PrimaryKeyConstraint(
            "snapshot_id", "symbol", "side", "price", name=op.f("pk_known_level_bins")
        ),
    )
    op.create_table(
        "known_liquidations",
        sa.Column("venue", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=66), nullable=False),
        sa.Column("fill_id", sa.String(length=80), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("ts", _TZ, nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("usd_value", sa.Double(), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("fetched_at", _TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint(
            "venue", "account", "fill_id", name=op.f("pk_known_liquidations")
        ),
    )
    op.create_index(
        "ix_known_liquidations_venue_symbol_ts", "known_liquidations", ["venue", "symbol", "ts"]
    )


def downgrade() -> None:
    op.drop_index("ix_known_liquidations_venue_symbol_ts", table_name="known_liquidations")
    for table in (
        "known_liquidations",
        "known_level_bins",
        "known_snapshot_markets",
        "known_positions",
        "known_snapshot_accounts",
        "known_snapshots",
    ):
        op.drop_table(table)
