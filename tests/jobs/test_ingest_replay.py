"""Ingest of the replayed Binance 4-week window through the real ccxt classes, into PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from jobs.ingest import ingest_dataset
from jobs.runtime import Runtime

SYMBOL = "BTC/USDT:USDT"


def _ms(ts: datetime) -> int:
    return round(ts.timestamp() * 1000)


async def _counts(rt: Runtime) -> dict[str, int]:
    async with rt.engine.connect() as conn:
        return {
            table: (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in ("candles", "open_interest", "funding_rates", "margin_tiers")
        }


async def test_replayed_binance_window_matches_the_csv(
    runtime: Runtime, binance_rows: list[dict[str, str]]
) -> None:
    results = [
        await ingest_dataset(runtime, "binanceusdm", SYMBOL, dataset)
        for dataset in ("candles", "open_interest", "funding", "tiers")
    ]
    assert [r.status for r in results] == ["succeeded"] * 4, [r.error for r in results]
    now = runtime.adapter("binanceusdm").now_ms()
    # only closed bars are stored: every CSV bar that closed by the replay clock
    closed = [r for r in binance_rows if int(r["timestamp"]) + 300_000 <= now]
    async with runtime.engine.connect() as conn:
        n, first, last = (
            await conn.execute(text("SELECT count(*), min(ts), max(ts) FROM candles"))
        ).one()
        spot, snapshot = closed[4000], closed[4001]  # a bar, and the snapshot at its end
        row = (
            await conn.execute(
                text(
                    "SELECT c.open, c.high, c.low, c.close, o.open_interest_usd FROM candles c "
                    "JOIN open_interest o USING (market_id, timeframe, ts) WHERE ts = :ts"
                ),
                {"ts": datetime.fromtimestamp(int(spot["timestamp"]) / 1000, tz=UTC)},
            )
        ).one()
        gaps = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT ts - lag(ts) OVER (ORDER BY ts) AS d "
                    "FROM candles) g WHERE d > interval '5 minutes'"
                )
            )
        ).scalar_one()
        tiers = (
            await conn.execute(
                text("SELECT tier, maintenance_margin_rate, maintenance_amount, source "
                     "FROM margin_tiers ORDER BY tier")
            )
        ).all()  # fmt: skip
    assert n == len(closed)
    assert _ms(first) == int(closed[0]["timestamp"])
    assert _ms(last) == int(closed[-1]["timestamp"])
    assert gaps == 0
    assert row[:4] == tuple(
        float(spot[k]) for k in ("price_open", "price_high", "price_low", "price_close")
    )
    assert row[4] == float(snapshot["open_interest_usd"])
    # Table B (2024-10-24): tier 1 0.4 % / cum 0 … tier 3 0.65 % / cum 950
    assert tiers[0][1:3] == (0.004, 0.0)
    assert tiers[2][1:3] == (0.0065, 950.0)
    assert len(tiers) == 12


async def test_rerun_is_idempotent_and_resumes_from_watermark(runtime: Runtime) -> None:
    for dataset in ("candles", "open_interest", "funding"):
        await ingest_dataset(runtime, "binanceusdm", SYMBOL, dataset)
    before = await _counts(runtime)
    again = [
        await ingest_dataset(runtime, "binanceusdm", SYMBOL, dataset)
        for dataset in ("candles", "open_interest", "funding")
    ]
    assert await _counts(runtime) == before
    # the second run starts at the watermark: at most the still-open tail is fetched again
    assert all(r.rows_written <= 1 for r in again), [r.rows_written for r in again]


async def test_backfill_window_then_incremental_has_no_gap(
    runtime: Runtime, binance_rows: list[dict[str, str]]
) -> None:
    t0 = int(binance_rows[0]["timestamp"])
    cut = int(binance_rows[3000]["timestamp"])
    first = await ingest_dataset(
        runtime, "binanceusdm", SYMBOL, "candles", since_ms=t0, until_ms=cut, job="backfill"
    )
    assert first.status == "succeeded"
    assert first.rows_written == 3000
    rest = await ingest_dataset(runtime, "binanceusdm", SYMBOL, "candles")
    assert rest.status == "succeeded"
    async with runtime.engine.connect() as conn:
        gaps = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT ts - lag(ts) OVER (ORDER BY ts) AS d "
                    "FROM candles) g WHERE d > interval '5 minutes'"
                )
            )
        ).scalar_one()
    assert gaps == 0
