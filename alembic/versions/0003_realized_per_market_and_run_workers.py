"""realized liquidations keyed per market; job runs name their worker and queue job

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

* ``realized_liquidations`` gains ``symbol`` (unified market, or ``*`` for a total over every
  market of the base asset) in its primary key: a venue's BTC/USDT and BTC/USD per-bar totals
  no longer overwrite each other. Existing imported totals (CoinGlass & co.) are such ``*``
  totals; existing stream totals were written per (exchange, base), so they are recomputed per
  market from ``liquidation_events``, for the bar lengths they were stored at.
* ``job_runs`` gains ``worker`` (host:pid) and ``procrastinate_job_id``, so a run left
  ``running`` by a worker that died can be found through its stalled queue job.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# "5m" → "5 minutes" … in SQL, for the bar lengths already stored (frozen here, not imported)
_INTERVAL_SQL = (
    "(substring(t.timeframe from '^[0-9]+') || ' ' || CASE right(t.timeframe, 1) "
    "WHEN 'm' THEN 'minutes' WHEN 'h' THEN 'hours' WHEN 'd' THEN 'days' ELSE 'weeks' END)::interval"
)


def upgrade() -> None:
    op.add_column(
        "realized_liquidations",
        sa.Column("symbol", sa.String(length=64), server_default="*", nullable=False),
    )
    op.alter_column("realized_liquidations", "symbol", server_default=None)
    op.drop_constraint("pk_realized_liquidations", "realized_liquidations", type_="primary")
    op.create_primary_key(
        "pk_realized_liquidations",
        "realized_liquidations",
        ["source", "exchange", "base", "symbol", "timeframe", "ts"],
    )
    op.execute(
        f"""
        WITH stale AS (
            DELETE FROM realized_liquidations WHERE source = 'stream' RETURNING timeframe
        ), t AS (SELECT DISTINCT timeframe FROM stale)
        INSERT INTO realized_liquidations
            (source, exchange, base, symbol, timeframe, ts, long_usd, short_usd, events,
             lower_bound, note)
        SELECT 'stream', m.exchange_id, m.base, m.symbol, t.timeframe,
               date_bin({_INTERVAL_SQL}, e.ts, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bar,
               coalesce(sum(e.usd_value) FILTER (WHERE e.side = 'long'), 0),
               coalesce(sum(e.usd_value) FILTER (WHERE e.side = 'short'), 0),
               count(*), m.exchange_id = 'binanceusdm',
               CASE WHEN m.exchange_id = 'binanceusdm'
                    THEN 'lower bound: Binance pushes at most one event per symbol per second'
               END
        FROM liquidation_events e JOIN markets m ON m.id = e.market_id CROSS JOIN t
        GROUP BY m.exchange_id, m.base, m.symbol, t.timeframe, bar
        """
    )
    op.add_column("job_runs", sa.Column("worker", sa.String(length=128), nullable=True))
    op.add_column("job_runs", sa.Column("procrastinate_job_id", sa.BigInteger(), nullable=True))
    op.create_index(
        op.f("ix_job_runs_procrastinate_job_id"), "job_runs", ["procrastinate_job_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_job_runs_procrastinate_job_id"), table_name="job_runs")
    op.drop_column("job_runs", "procrastinate_job_id")
    op.drop_column("job_runs", "worker")
    # back to one row per (source, exchange, base, timeframe, ts): per-market rows are summed
    op.execute(
        """
        CREATE TEMP TABLE _realized_per_base ON COMMIT DROP AS
        SELECT source, exchange, base, timeframe, ts, sum(long_usd) AS long_usd,
               sum(short_usd) AS short_usd, sum(events) AS events,
               bool_or(lower_bound) AS lower_bound, min(note) AS note
        FROM realized_liquidations GROUP BY source, exchange, base, timeframe, ts
        """
    )
    op.execute("DELETE FROM realized_liquidations")
    op.drop_constraint("pk_realized_liquidations", "realized_liquidations", type_="primary")
    op.drop_column("realized_liquidations", "symbol")
    op.create_primary_key(
        "pk_realized_liquidations",
        "realized_liquidations",
        ["source", "exchange", "base", "timeframe", "ts"],
    )
    op.execute(
        """
        INSERT INTO realized_liquidations
            (source, exchange, base, timeframe, ts, long_usd, short_usd, events, lower_bound, note)
        SELECT source, exchange, base, timeframe, ts, long_usd, short_usd, events, lower_bound, note
        FROM _realized_per_base
        """
    )
