"""Realized liquidations in storage: the collector's events and per-bar totals, one row per market.

Expected totals are computed here from the shared forceOrder captures, independently of the
adapter and of the SQL that aggregates the stored events.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.liquidations import collect_liquidations, import_realized_file, store_liquidation_events
from jobs.runtime import Runtime
from models.liquidations_store import realized_bars
from models.market_store import upsert_markets
from models.records import LiquidationEvent, MarketInfo

from .conftest import make_settings

CAPTURES = Path("forceorder") / "binance_usdm_forceorder_captures_normalized.csv"
BAR = 300_000
TRACKED = {"BTCUSDT": "BTC/USDT:USDT", "ETHUSDT": "ETH/USDT:USDT"}


def _expected_bars(shared_data: Path) -> dict[tuple[str, int], tuple[float, float, int]]:
    """(symbol, bar open ms) → (long USD, short USD, events) straight from the CSV."""
    totals: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    with (shared_data / CAPTURES).open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["symbol"] not in TRACKED:
                continue
            bar = int(row["trade_time_ms"]) // BAR * BAR
            usd = float(row["price"]) * float(row["filled_accum_qty"])
            entry = totals[(TRACKED[row["symbol"]], bar)]
            entry[0 if row["side"] == "SELL" else 1] += usd  # a SELL order closes a long
            entry[2] += 1
    return {k: (v[0], v[1], int(v[2])) for k, v in totals.items()}


async def test_collector_stores_events_and_bar_totals_like_the_captures(
    db: object, shared_data: Path
) -> None:
    rt = Runtime(
        settings=make_settings(
            replay_dir=shared_data, symbols={"binanceusdm": list(TRACKED.values())}
        ),
        engine=db,  # type: ignore[arg-type]
    )
    try:
        report = await collect_liquidations(rt, "binanceusdm")
        expected = _expected_bars(shared_data)
        assert report.events == sum(n for _, _, n in expected.values()) == 73 + 78
        async with rt.engine.connect() as conn:
            events = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT m.symbol, count(*) FROM liquidation_events e "
                            "JOIN markets m ON m.id = e.market_id GROUP BY m.symbol"
                        )
                    )
                ).all()
            )
            rows = (
                await conn.execute(
                    text(
                        "SELECT symbol, ts, long_usd, short_usd, events, lower_bound, exchange, "
                        "base, source, timeframe, note FROM realized_liquidations"
                    )
                )
            ).all()
        assert events == {"BTC/USDT:USDT": 73, "ETH/USDT:USDT": 78}
        got = {(r.symbol, round(r.ts.timestamp() * 1000)): r for r in rows}
        assert set(got) == set(expected)
        for key, (long_usd, short_usd, count) in expected.items():
            row = got[key]
            assert row.long_usd == pytest.approx(long_usd, rel=1e-12, abs=1e-9)
            assert row.short_usd == pytest.approx(short_usd, rel=1e-12, abs=1e-9)
            assert row.events == count
        assert {(r.exchange, r.source, r.timeframe, r.lower_bound) for r in rows} == {
            ("binanceusdm", "stream", "5m", True)
        }
        assert {r.base for r in rows} == {"BTC", "ETH"}
        assert all("lower bound" in r.note for r in rows)
        # replaying the same captures again changes nothing (natural keys, recomputed totals)
        await rt.close()  # a fresh adapter replays the frames from the start
        again = await collect_liquidations(rt, "binanceusdm")
        assert again.events == 0  # nothing new stored
        async with rt.engine.connect() as conn:
            counts = (
                await conn.execute(
                    text(
                        "SELECT (SELECT count(*) FROM liquidation_events), count(*), "
                        "sum(long_usd + short_usd) FROM realized_liquidations"
                    )
                )
            ).one()
        assert counts[:2] == (report.events, len(expected))
        assert counts[2] == pytest.approx(sum(a + b for a, b, _ in expected.values()), rel=1e-12)
    finally:
        await rt.close()


async def _bybit_markets(rt: Runtime) -> None:
    infos = [
        MarketInfo("bybit", "BTC/USDT:USDT", "BTCUSDT", "BTC", "USDT", "USDT", True, 1.0),
        MarketInfo("bybit", "BTC/USD:BTC", "BTCUSD", "BTC", "USD", "BTC", False, 1.0),
    ]
    async with rt.engine.begin() as conn:
        for ref in await upsert_markets(conn, infos):
            rt.markets[(ref.exchange, ref.symbol)] = ref


async def test_two_markets_of_one_base_keep_their_own_bar_totals(
    db: object, shared_data: Path
) -> None:
    """Bybit BTC/USDT and BTC/USD in the same bar: two rows, and the API sums them per venue."""
    rt = Runtime(
        settings=make_settings(
            exchanges=["bybit"], symbols={"bybit": ["BTC/USDT:USDT", "BTC/USD:BTC"]}
        ),
        engine=db,  # type: ignore[arg-type]
    )
    await _bybit_markets(rt)
    t0 = 1_780_000_200_000  # a 5m bar open
    linear = [
        LiquidationEvent("bybit", "BTC/USDT:USDT", t0 + 1_000, "long", 70_000.0, 0.5, 35_000.0),
        LiquidationEvent("bybit", "BTC/USDT:USDT", t0 + 9_000, "short", 70_100.0, 0.1, 7_010.0),
    ]
    inverse = [
        LiquidationEvent("bybit", "BTC/USD:BTC", t0 + 2_000, "long", 70_000.0, 0.2, 14_000.0),
    ]
    await store_liquidation_events(rt, "bybit", linear)
    await store_liquidation_events(rt, "bybit", inverse)  # a later write of the other market
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT symbol, long_usd, short_usd, events, lower_bound FROM "
                    "realized_liquidations ORDER BY symbol"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("BTC/USD:BTC", 14_000.0, 0.0, 1, False),
        ("BTC/USDT:USDT", 35_000.0, 7_010.0, 2, False),
    ]
    # a CoinGlass-style multi-venue total over every BTC market stays representable
    path = shared_data / "coinglass" / "BTC_agg_liquidation_30m.csv"
    await import_realized_file(rt, path, base="BTC")
    start = datetime.fromtimestamp(t0 / 1000, tz=UTC)
    async with AsyncSession(rt.engine) as session:
        bars = await realized_bars(
            session, "BTC", ["bybit"], None, start, datetime.fromtimestamp(t0 / 1000 + 300, UTC), 10
        )
        aggregate = await realized_bars(
            session,
            "BTC",
            ["*"],
            "30m",
            datetime(2026, 5, 21, 10, tzinfo=UTC),
            datetime(2026, 5, 21, 11, tzinfo=UTC),
            10,
        )
    assert [(b.exchange, b.long_usd, b.short_usd, b.events) for b in bars] == [
        ("bybit", 49_000.0, 7_010.0, 3)
    ]
    with path.open(newline="") as handle:
        window = [
            r for r in csv.DictReader(handle) if r["datetime_utc"].startswith("2026-05-21T10:")
        ]
    assert len(window) == 2
    assert [(a.exchange, a.long_usd, a.short_usd) for a in aggregate] == [
        ("*", float(r["longUsd"]), float(r["shortUsd"])) for r in window
    ]
    await rt.close()
