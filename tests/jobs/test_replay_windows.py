"""Replay windows: each venue replays only its own values, in the window the clock runs in.

Through the real jobs (ingest → materialize) on real PostgreSQL: what a venue did not record is
an ``unavailable`` run with its reason, never another venue's numbers; a market without open
interest gets no model map; the cross-exchange aggregate sums only the venues with real open
interest. Expected numbers come from the shared files.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.ingest import UNAVAILABLE, ingest_dataset
from jobs.materialize import NO_OPEN_INTEREST, materialize_symbol
from jobs.pipeline import ingest_all
from jobs.replay import replay_settings
from jobs.runtime import ConfigurationError, Runtime
from liqmap.settings import Settings
from models import heatmap_store as hs

from .conftest import make_settings

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
JANUARY = "venues-2026-01"
BYBIT_CSV = Path("bybit") / "BTCUSDT_perp_5m_klines_funding.csv"
ETH_FUNDING = Path("binance") / "ETHUSDT_perp_funding_8h.csv"
DAY = 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _defaults(shared_data: Path, **overrides: object) -> Settings:
    """Settings as a user who set only the replay (and maybe its window) has them."""
    return replay_settings(Settings(_env_file=None, replay_dir=shared_data, **overrides))  # type: ignore[call-arg]


def test_the_default_window_tracks_binance_btc_and_known_positions(shared_data: Path) -> None:
    settings = _defaults(shared_data)
    # Hyperliquid for its recorded known levels only (the viewer's real-positions overlay)
    assert settings.exchanges == ["binanceusdm", "hyperliquid"]
    assert settings.symbols_for("binanceusdm") == [BTC]
    assert settings.symbols_for("hyperliquid") == []
    assert settings.backfill_days == 30  # the 27.8-day window fits the default


def test_the_january_window_tracks_each_venues_own_markets(shared_data: Path) -> None:
    settings = _defaults(shared_data, replay_window=JANUARY)
    assert settings.exchanges == ["binanceusdm", "bybit", "okx", "hyperliquid"]
    assert {e: settings.symbols_for(e) for e in settings.exchanges} == {
        "binanceusdm": [ETH],
        "bybit": [BTC],
        "okx": [BTC],
        "hyperliquid": [],  # known positions only: no candle series in any window
    }
    # 2026-01-01 00:00 → 2026-02-08 23:59:59.999 is 39 days less a millisecond: all of it
    assert settings.backfill_days == 39
    with pytest.raises(ConfigurationError, match="valid: binance-btc-2026-05, venues-2026-01"):
        _defaults(shared_data, replay_window="2026-03")


async def _runs(engine: AsyncEngine) -> dict[tuple[str, str, str], tuple[str, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT exchange, symbol, dataset, status, error FROM job_runs ORDER BY id")
        )
        return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}


async def test_january_window_stores_each_venues_own_rows_and_no_map(
    db: AsyncEngine, shared_data: Path
) -> None:
    settings = make_settings(
        replay_dir=shared_data,
        replay_window=JANUARY,
        exchanges=["binanceusdm", "bybit"],
        symbols={"binanceusdm": [ETH], "bybit": [BTC]},
        backfill_days=3,
    )
    rt = Runtime(settings=settings, engine=db)
    try:
        now = rt.adapter("bybit").now_ms()
        start = now - 3 * DAY  # backfill_days back from the window's clock
        results = await ingest_all(rt)
        status = {(r.exchange, r.dataset): r.status for r in results}
        assert status == {
            ("binanceusdm", "candles"): "succeeded",
            ("binanceusdm", "open_interest"): UNAVAILABLE,
            ("binanceusdm", "funding"): "succeeded",
            ("binanceusdm", "tiers"): "succeeded",  # Binance's shipped ETH brackets
            ("bybit", "candles"): "succeeded",
            ("bybit", "open_interest"): UNAVAILABLE,
            ("bybit", "funding"): "succeeded",
            ("bybit", "tiers"): UNAVAILABLE,
        }
        runs = await _runs(db)
        bybit_oi = runs[("bybit", BTC, "open_interest")]
        assert bybit_oi[0] == UNAVAILABLE and "no Bybit open interest" in str(bybit_oi[1])
        eth = await materialize_symbol(rt, ETH)
        btc = await materialize_symbol(rt, BTC)
    finally:
        await rt.close()
    # no open interest anywhere: no positions, no snapshot, no aggregate
    for report in (eth, btc):
        skipped = [s.skipped for s in report.series if s.scope != hs.AGGREGATE_SCOPE]
        assert skipped == [NO_OPEN_INTEREST]
        assert report.snapshots_written == 0
        assert report.series[-1].members == []
    async with db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM heatmap_snapshots"))).scalar() == 0
        assert (await conn.execute(text("SELECT count(*) FROM open_interest"))).scalar() == 0
        bybit = (
            await conn.execute(
                text(
                    "SELECT (extract(epoch FROM c.ts) * 1000)::bigint, c.open, c.high, c.low, "
                    "c.close, c.volume FROM candles c JOIN markets m ON m.id = c.market_id "
                    "WHERE m.exchange_id = 'bybit' ORDER BY c.ts"
                )
            )
        ).all()
        eth_funding = (
            await conn.execute(
                text(
                    "SELECT (extract(epoch FROM f.ts) * 1000)::bigint, f.funding_rate "
                    "FROM funding_rates f JOIN markets m ON m.id = f.market_id "
                    "WHERE m.exchange_id = 'binanceusdm' ORDER BY f.ts"
                )
            )
        ).all()
    with (shared_data / BYBIT_CSV).open(newline="") as handle:
        rows = {int(r["timestamp"]): r for r in csv.DictReader(handle)}
    # three days back from the window's clock: Bybit's own bars, exactly as in its file
    expected = [t for t in rows if start - start % 300_000 <= t and t + 300_000 <= now + 1]
    assert [r[0] for r in bybit] == expected and len(expected) > 800
    for ts, *ohlcv in bybit:
        row = rows[ts]
        assert tuple(ohlcv) == tuple(
            float(row[k])
            for k in ("price_open", "price_high", "price_low", "price_close", "volume_base")
        )
    with (shared_data / ETH_FUNDING).open(newline="") as handle:
        settlements = [
            (int(r["funding_time"]), float(r["funding_rate"])) for r in csv.DictReader(handle)
        ]
    assert [tuple(r) for r in eth_funding] == [s for s in settlements if start <= s[0] <= now]


async def test_the_aggregate_is_the_sum_of_the_venues_with_real_open_interest(
    db: AsyncEngine, shared_data: Path
) -> None:
    """Binance, Bybit and OKX all track BTC/USDT:USDT in the May window; only Binance recorded
    open interest there, so the aggregate is Binance's map exactly: nothing counted twice, and
    nothing from the venues without data."""
    settings = make_settings(
        replay_dir=shared_data,
        exchanges=["binanceusdm", "bybit", "okx"],
        symbols={e: [BTC] for e in ("binanceusdm", "bybit", "okx")},
    )
    rt = Runtime(settings=settings, engine=db)
    try:
        now = rt.adapter("binanceusdm").now_ms()
        for exchange in ("binanceusdm", "bybit", "okx"):
            for dataset in ("candles", "open_interest"):
                await ingest_dataset(rt, exchange, BTC, dataset, since_ms=now - 2 * DAY)
        report = await materialize_symbol(rt, BTC)
        async with db.connect() as conn:
            ids = {
                scope: await hs.ensure_series(conn, BTC, scope, settings.bucket_size_for(BTC))
                for scope in ("binanceusdm", "bybit", "okx", hs.AGGREGATE_SCOPE)
            }
            snaps = {
                scope: await hs.snapshots_after(conn, series_id, "5m", EPOCH)
                for scope, series_id in ids.items()
            }
    finally:
        await rt.close()
    by_scope = {s.scope: s for s in report.series}
    assert by_scope["bybit"].skipped == by_scope["okx"].skipped == NO_OPEN_INTEREST
    assert by_scope["binanceusdm"].skipped is None
    assert by_scope[hs.AGGREGATE_SCOPE].members == ["binanceusdm"]
    assert snaps["bybit"] == snaps["okx"] == []
    binance, total = snaps["binanceusdm"], snaps[hs.AGGREGATE_SCOPE]
    assert len(binance) > 500 and [s.ts for s in total] == [s.ts for s in binance]
    for own, summed in zip(binance, total, strict=True):
        # the sum over the members with open interest, i.e. Binance's own vectors
        assert (summed.price, summed.vector.first) == (own.price, own.vector.first)
        np.testing.assert_array_equal(summed.vector.long_usd, own.vector.long_usd)
        np.testing.assert_array_equal(summed.vector.short_usd, own.vector.short_usd)
    assert float(np.sum(total[-1].vector.long_usd)) > 0  # a real map, not an empty one
