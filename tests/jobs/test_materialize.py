"""The materialization job on the real replayed Binance window, against real PostgreSQL.

The contract: an incremental run (state saved, only new bars processed) stores exactly what a
full recompute stores; tier tables apply point-in-time; every new snapshot is NOTIFYed.
"""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.tiers import MarginTiers
from jobs.ingest import ingest_dataset
from jobs.materialize import materialize_symbol
from jobs.runtime import Runtime
from jobs.tier_periods import fingerprint, tier_periods
from models.market_store import MarketRow

SYMBOL = "BTC/USDT:USDT"
EXCHANGE = "binanceusdm"


async def ingest(rt: Runtime, until_ms: int | None = None) -> None:
    for dataset in ("candles", "open_interest", "tiers"):
        result = await ingest_dataset(rt, EXCHANGE, SYMBOL, dataset, until_ms=until_ms)
        assert result.status == "succeeded", result.error


async def stored(engine: AsyncEngine) -> dict[str, Any]:
    """Everything the materializer wrote for the market's series, in a comparable form."""
    async with engine.connect() as conn:
        snaps = (
            await conn.execute(
                text(
                    "SELECT s.scope, h.resolution, h.ts, h.price, h.bucket_origin, h.long_usd, "
                    "h.short_usd, h.long_total_usd, h.short_total_usd, h.band_usd "
                    "FROM heatmap_snapshots h JOIN heatmap_series s ON s.id = h.series_id "
                    "ORDER BY s.scope, h.resolution, h.ts"
                )
            )
        ).all()
        swept = (
            await conn.execute(
                text(
                    "SELECT s.scope, w.ts, w.long_usd, w.short_usd FROM swept_levels w "
                    "JOIN heatmap_series s ON s.id = w.series_id ORDER BY s.scope, w.ts"
                )
            )
        ).all()
        state = (
            await conn.execute(
                text(
                    "SELECT s.scope, e.last_bar_ts, e.state FROM engine_states e "
                    "JOIN heatmap_series s ON s.id = e.series_id ORDER BY s.scope"
                )
            )
        ).all()
    return {
        "snapshots": [tuple(r) for r in snaps],
        "swept": [tuple(r) for r in swept],
        "state": [tuple(r) for r in state],
    }


async def forget_states(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM engine_states"))


async def bar_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM candles"))).scalar_one())


def midpoint(binance_rows: list[dict[str, str]]) -> int:
    return int(binance_rows[len(binance_rows) // 2]["timestamp"])


async def test_incremental_runs_store_exactly_a_full_recompute(
    runtime: Runtime, db: AsyncEngine, binance_rows: list[dict[str, str]]
) -> None:
    await ingest(runtime, until_ms=midpoint(binance_rows))
    first = await materialize_symbol(runtime, SYMBOL)
    assert first.series[0].full_recompute and first.series[0].bars > 0
    await ingest(runtime)
    second = await materialize_symbol(runtime, SYMBOL)
    market = second.series[0]
    assert not market.full_recompute, "the saved state should have been continued"
    assert 0 < market.bars < len(binance_rows) // 2 + 2  # only the new bars were run
    incremental = await stored(db)

    await forget_states(db)
    full = await materialize_symbol(runtime, SYMBOL)
    assert full.series[0].full_recompute
    assert full.series[0].bars == await bar_count(db)
    recomputed = await stored(db)

    assert len(incremental["snapshots"]) > 1000
    assert incremental == recomputed


async def test_unchanged_tier_refresh_keeps_the_state_and_the_numbers(
    runtime: Runtime, db: AsyncEngine
) -> None:
    await ingest(runtime)
    await materialize_symbol(runtime, SYMBOL)
    before = await stored(db)
    await copy_latest_tier_table(db, valid_from=datetime(2026, 6, 30, tzinfo=UTC))
    report = await materialize_symbol(runtime, SYMBOL)
    assert not report.series[0].full_recompute
    assert await stored(db) == before


async def test_a_changed_tier_table_applies_from_when_it_was_valid(
    runtime: Runtime, db: AsyncEngine, binance_rows: list[dict[str, str]]
) -> None:
    """Positions opened after a tier change use the new table; earlier ones keep the old."""
    change = midpoint(binance_rows)
    await ingest(runtime, until_ms=change - 1)
    await materialize_symbol(runtime, SYMBOL)
    await ingest(runtime)
    # a much stricter first tier from the change on: 5 % maintenance instead of 0.4 %
    await copy_latest_tier_table(
        db, valid_from=datetime.fromtimestamp(change / 1000, UTC), first_rate=0.05
    )
    report = await materialize_symbol(runtime, SYMBOL)
    assert not report.series[0].full_recompute  # the new period starts after the saved bar
    incremental = await stored(db)
    await forget_states(db)
    await materialize_symbol(runtime, SYMBOL)
    assert await stored(db) == incremental  # point-in-time tiers: full recompute agrees

    # and the change mattered: bars before it are untouched, bars after it differ
    async with db.begin() as conn:
        await conn.execute(
            text("DELETE FROM margin_tiers WHERE valid_from = :v"),
            {"v": datetime.fromtimestamp(change / 1000, UTC)},
        )
    await forget_states(db)
    await materialize_symbol(runtime, SYMBOL)
    plain = await stored(db)
    cut = datetime.fromtimestamp(change / 1000, UTC)
    old = [r for r in plain["swept"] if r[1] < cut]
    assert old == [r for r in incremental["swept"] if r[1] < cut]
    after_plain = [r[2:] for r in plain["swept"] if r[1] >= cut]
    after_strict = [r[2:] for r in incremental["swept"] if r[1] >= cut]
    assert after_plain != after_strict


async def copy_latest_tier_table(
    engine: AsyncEngine, *, valid_from: datetime, first_rate: float | None = None
) -> None:
    """Store the newest tier table again under ``valid_from`` (optionally changing tier 1)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO margin_tiers (market_id, valid_from, tier, min_notional, "
                "max_notional, maintenance_margin_rate, maintenance_amount, max_leverage, "
                "notional_unit, source) "
                "SELECT market_id, :v, tier, min_notional, max_notional, "
                "CASE WHEN tier = 1 AND CAST(:rate AS float8) IS NOT NULL "
                "THEN CAST(:rate AS float8) "
                "ELSE maintenance_margin_rate END, maintenance_amount, max_leverage, "
                "notional_unit, source || ' (test copy)' FROM margin_tiers "
                "WHERE valid_from = (SELECT max(valid_from) FROM margin_tiers)"
            ),
            {"v": valid_from, "rate": first_rate},
        )


async def test_each_write_is_notified_once_per_resolution_with_its_range(
    runtime: Runtime, db: AsyncEngine, database_url: str, binance_rows: list[dict[str, str]]
) -> None:
    await ingest(runtime, until_ms=int(binance_rows[-40]["timestamp"]))
    await materialize_symbol(runtime, SYMBOL)
    await ingest(runtime)
    async with db.connect() as conn:
        before = (await conn.execute(text("SELECT max(ts) FROM heatmap_snapshots"))).scalar_one()
    listener = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        await listener.execute("LISTEN liqmap_heatmap")
        report = await materialize_symbol(runtime, SYMBOL)
        received = [orjson.loads(n.payload) async for n in listener.notifies(timeout=2.0)]
    finally:
        await listener.close()
    assert report.snapshots_written > 0
    async with db.connect() as conn:
        written = (
            await conn.execute(
                text(
                    "SELECT h.series_id, h.resolution, min(h.ts), max(h.ts), count(*), "
                    "(array_agg(h.price ORDER BY h.ts DESC))[1] FROM heatmap_snapshots h "
                    "WHERE h.ts > :before GROUP BY 1, 2"
                ),
                {"before": before},
            )
        ).all()
    # one message per (series, resolution) written: its first and last bar, count, last price
    expected = sorted(
        (sid, res, round(lo.timestamp() * 1000), round(hi.timestamp() * 1000), n, price)
        for sid, res, lo, hi, n, price in written
    )
    got = sorted(
        (p["series_id"], p["resolution"], p["first"], p["ts"], p["count"], p["price"])
        for p in received
    )
    assert got == expected
    assert sum(p["count"] for p in received) == report.snapshots_written
    assert {p["symbol"] for p in received} == {SYMBOL}
    assert {p["scope"] for p in received} == {"binanceusdm", "all"}


# --- units of stored tier tables ------------------------------------------------------------
TierRow = namedtuple(
    "TierRow",
    "valid_from tier min_notional max_notional maintenance_margin_rate maintenance_amount "
    "max_leverage notional_unit source close_at first_close",
)


def market_row(
    market_id: int, exchange: str, symbol: str, linear: bool, contract_size: float
) -> MarketRow:
    base, rest = symbol.split("/")
    quote, settle = rest.split(":")
    return MarketRow(
        market_id, exchange, symbol, symbol, base, quote, settle, linear, contract_size, True
    )


def rows(
    unit: str,
    floors: list[float],
    caps: list[float],
    amounts: list[float],
    close: float,
    valid: datetime,
) -> list[TierRow]:
    rates = [0.005, 0.01]
    return [
        TierRow(valid, i + 1, f, c, r, a, 50.0, unit, "api", close, close)
        for i, (f, c, r, a) in enumerate(zip(floors, caps, rates, amounts, strict=True))
    ]


def test_tier_units_are_converted_to_the_engine_units_at_the_close_of_the_day() -> None:
    valid = datetime(2026, 6, 1, tzinfo=UTC)
    linear = market_row(1, "okx", "BTC/USDT:USDT", True, 0.01)
    inverse = market_row(2, "okx", "BTC/USD:BTC", False, 100.0)
    # OKX linear tiers in coin: 0–10 BTC, 10–50 BTC at 60,000 → 0–600k, 600k–3M USD
    (period,) = tier_periods(rows("base", [0, 10], [10, 50], [0, 0.05], 60_000.0, valid), linear)
    assert period.tiers.floor.tolist() == [0.0, 600_000.0]
    assert period.tiers.cap.tolist() == [600_000.0, 3_000_000.0]
    assert period.tiers.maintenance_amount.tolist() == pytest.approx([0.0, 3_000.0])
    # contracts of 0.01 BTC: 1,000 contracts = 10 BTC = 600k USD
    (period,) = tier_periods(
        rows("contracts", [0, 1000], [1000, 5000], [0, 5], 60_000.0, valid), linear
    )
    assert period.tiers.cap.tolist() == pytest.approx([600_000.0, 3_000_000.0], rel=1e-12)
    # inverse in USD → coin at 50,000: 0–1M USD = 0–20 BTC
    (period,) = tier_periods(
        rows("quote", [0, 1e6], [1e6, 5e6], [0, 5000], 50_000.0, valid), inverse
    )
    assert period.tiers.floor.tolist() == pytest.approx([0.0, 20.0], rel=1e-12)
    assert period.tiers.cap.tolist() == pytest.approx([20.0, 100.0], rel=1e-12)
    # inverse in 100-USD contracts: 10,000 contracts = 1M USD = 20 BTC
    (period,) = tier_periods(
        rows("contracts", [0, 1e4], [1e4, 5e4], [0, 50], 50_000.0, valid), inverse
    )
    assert period.tiers.cap.tolist() == pytest.approx([20.0, 100.0], rel=1e-12)
    assert period.reference_price == 50_000.0 and period.start_ms is None


def test_equal_consecutive_tables_are_one_period() -> None:
    market = market_row(1, "binanceusdm", SYMBOL, True, 1.0)
    day1, day2, day3 = (datetime(2026, 6, d, tzinfo=UTC) for d in (1, 2, 3))
    table = rows("quote", [0, 5e4], [5e4, 6e5], [0, 250], 60_000.0, day1)
    same = [r._replace(valid_from=day2) for r in table]
    changed = [r._replace(valid_from=day3, maintenance_margin_rate=0.02) for r in table]
    periods = tier_periods([*table, *same, *changed], market)
    assert [p.start_ms for p in periods] == [None, round(day3.timestamp() * 1000)]
    assert fingerprint(periods[0].tiers) != fingerprint(periods[1].tiers)
    assert isinstance(periods[1].tiers, MarginTiers)


def test_inverse_profile_matches_the_closed_form() -> None:
    """Inverse isolated LP/EP away from tier edges: (1 + m)/(1 + 1/L) long, (1 − m)/(1 − 1/L)."""
    from engine.model import ModelParams

    tiers = MarginTiers.from_rates([0, 1e6], [1e6, 1e9], [0.005, 0.01])  # coin notional
    profile = ModelParams.default().profile(tiers, inverse=True, reference_price=60_000.0)
    lev = profile.leverage
    assert np.allclose(profile.long_ratio, (1 + 0.005) / (1 + 1 / lev), rtol=1e-12)
    assert np.allclose(profile.short_ratio, (1 - 0.005) / (1 - 1 / lev), rtol=1e-12)
