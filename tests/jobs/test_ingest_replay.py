"""Ingest of the replayed Binance 4-week window through the real ccxt classes, into PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.ingest import ingest_dataset
from jobs.replay import ReplayClock
from jobs.runtime import Runtime
from tests.jobs.conftest import make_settings

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
                text(
                    "SELECT tier, maintenance_margin_rate, maintenance_amount, source "
                    "FROM margin_tiers ORDER BY tier"
                )
            )
        ).all()
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


async def test_a_started_replay_clock_hands_out_bars_one_period_at_a_time(
    db: AsyncEngine, shared_data: Path, binance_rows: list[dict[str, str]]
) -> None:
    """``replay_start`` holds the clock back; with ``replay_speed`` it runs from ``replay_epoch``
    as a live venue's does, so each ingest period finds exactly the bars that closed since."""
    end = int(binance_rows[-1]["timestamp"])
    start = end - 6 * 3_600_000  # six hours before the recording's last bar opens
    start -= start % 300_000

    def at(clock_ms: int, speed: float = 0.0, epoch: datetime | None = None) -> Runtime:
        settings = make_settings(
            replay_dir=shared_data,
            replay_start=datetime.fromtimestamp(clock_ms / 1000, tz=UTC),
            replay_speed=speed,
            replay_epoch=epoch,
        )
        return Runtime(settings=settings, engine=db)

    async def newest() -> int:
        async with db.connect() as conn:
            return _ms((await conn.execute(text("SELECT max(ts) FROM candles"))).scalar_one())

    held = at(start)
    try:
        assert held.adapter("binanceusdm").now_ms() == start  # speed 0: the clock stands still
        assert (await ingest_dataset(held, "binanceusdm", SYMBOL, "candles")).status == "succeeded"
        assert await newest() == start - 300_000  # the last bar that closed by the clock
    finally:
        await held.close()

    # 30 recorded seconds per wall second, started 10 s ago: the clock reads start + 5 min plus
    # 30× the time this test takes (it may take up to 10 s), so exactly one more bar has closed
    running = at(start, 30.0, datetime.now(UTC) - timedelta(seconds=10))
    try:
        now = running.adapter("binanceusdm").now_ms()
        assert start + 300_000 <= now < start + 600_000
        result = await ingest_dataset(running, "binanceusdm", SYMBOL, "candles")
        assert result.status == "succeeded"
        assert await newest() == start
        assert result.rows_written <= 2  # the new bar (and the still-open tail rewritten)
    finally:
        await running.close()

    # a clock started before the epoch stands at replay_start; one never runs past the recording
    later = at(start, 300.0, datetime.now(UTC) + timedelta(hours=1))
    past = at(start, 1e9, datetime.now(UTC) - timedelta(days=1))
    frozen = Runtime(settings=make_settings(replay_dir=shared_data), engine=db)
    try:
        assert later.adapter("binanceusdm").now_ms() == start
        recording_end = frozen.adapter("binanceusdm").now_ms()
        assert recording_end > end
        assert past.adapter("binanceusdm").now_ms() == recording_end
        assert ReplayClock.starting(recording_end, recording_end + 1, 5.0, 0).speed == 0
    finally:
        for rt in (later, past, frozen):
            await rt.close()


async def test_the_replay_clock_survives_a_worker_restart_in_the_same_process(
    db: AsyncEngine, shared_data: Path, binance_rows: list[dict[str, str]]
) -> None:
    """A worker restarted inside `liqmap up --replay` (after a database outage) opens a new
    runtime with new adapters. Without LIQMAP_REPLAY_EPOCH the clock runs from the process's
    start, so the new adapters read the same clock as the old ones: it continues, it does not
    start over at replay_start (recovery waited for the clock to catch up again)."""
    import psutil

    end = int(binance_rows[-1]["timestamp"])
    start = end - 7 * 86_400_000  # at 60×, the clock reaches the end after 168 min of test run
    speed = 60.0
    settings = make_settings(
        replay_dir=shared_data,
        replay_start=datetime.fromtimestamp(start / 1000, tz=UTC),
        replay_speed=speed,
    )
    process_start_ms = psutil.Process().create_time() * 1000
    before = Runtime(settings=settings, engine=db)  # the worker before the outage
    try:
        first = before.adapter("binanceusdm").now_ms()
        await asyncio.sleep(0.5)
        after = Runtime(settings=settings, engine=db)  # the restarted worker's runtime
        try:
            old, new = before.adapter("binanceusdm").now_ms(), after.adapter("binanceusdm").now_ms()
            read_at_ms = time.time() * 1000
        finally:
            await after.close()
    finally:
        await before.close()
    # one clock: both adapters read the same instant (a few ms of reading apart × speed)
    assert abs(new - old) <= 0.1 * speed * 1000
    assert new >= first + 0.5 * speed * 1000 * 0.9  # it ran on while the "worker" was down
    # and it runs from the process's start: it read replay_start then
    expected = start + (read_at_ms - process_start_ms) * speed
    assert abs(new - expected) <= 0.2 * speed * 1000
