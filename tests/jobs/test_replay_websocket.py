"""Binance ``!forceOrder@arr`` captures replayed through ccxt pro's own message handler."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from jobs.exchanges import create_adapter
from models.records import LiquidationEvent

CAPTURES = Path("forceorder") / "binance_usdm_forceorder_captures_normalized.csv"


@pytest.fixture(scope="module")
def captures(shared_data: Path) -> list[dict[str, str]]:
    with (shared_data / CAPTURES).open(newline="") as handle:
        return list(csv.DictReader(handle))


async def _replay(shared_data: Path, symbols: list[str]) -> tuple[list[LiquidationEvent], list]:  # type: ignore[type-arg]
    adapter = create_adapter("binanceusdm", replay_dir=shared_data)
    events: list[LiquidationEvent] = []
    try:
        async for batch in adapter.watch_liquidations(symbols):
            events.extend(batch)
        assert adapter.websocket_replay is not None
        sent = adapter.websocket_replay.sent
    finally:
        await adapter.close()
    return events, sent


def _totals(rows: list[dict[str, str]]) -> dict[str, float]:
    """USD liquidated per position side, from the CSV: price × filled quantity."""
    totals = {"long": 0.0, "short": 0.0}
    for row in rows:
        side = "long" if row["side"] == "SELL" else "short"  # a SELL order closes a long
        totals[side] += float(row["price"]) * float(row["filled_accum_qty"])
    return totals


async def test_all_market_stream_totals_equal_the_captures(
    shared_data: Path, captures: list[dict[str, str]]
) -> None:
    events, sent = await _replay(shared_data, [])
    assert sent == [{"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": sent[0]["id"]}]
    assert len(events) == len(captures)
    assert [e.timestamp for e in events] == [int(r["trade_time_ms"]) for r in captures]
    expected = _totals(captures)
    got = {side: sum(e.usd_value for e in events if e.side == side) for side in expected}
    assert got == pytest.approx(expected, rel=1e-12)
    assert Counter(e.side for e in events) == Counter(
        "long" if r["side"] == "SELL" else "short" for r in captures
    )


async def test_symbol_streams_yield_only_their_markets(
    shared_data: Path, captures: list[dict[str, str]]
) -> None:
    events, sent = await _replay(shared_data, ["BTC/USDT:USDT", "ETH/USDT:USDT"])
    assert sent[0]["params"] == ["btcusdt@forceOrder", "ethusdt@forceOrder"]
    wanted = [r for r in captures if r["symbol"] in ("BTCUSDT", "ETHUSDT")]
    assert len(events) == len(wanted) > 0
    assert {e.symbol for e in events} <= {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    for symbol, market_id in (("BTC/USDT:USDT", "BTCUSDT"), ("ETH/USDT:USDT", "ETHUSDT")):
        expected = _totals([r for r in wanted if r["symbol"] == market_id])
        got = {
            s: sum(e.usd_value for e in events if e.symbol == symbol and e.side == s)
            for s in expected
        }
        assert got == pytest.approx(expected, rel=1e-12)
    btc = next(e for e in events if e.symbol == "BTC/USDT:USDT")
    row = next(r for r in wanted if r["symbol"] == "BTCUSDT")
    assert (btc.price, btc.quantity) == (float(row["price"]), float(row["filled_accum_qty"]))


async def test_a_finished_replay_ends_a_later_watch_at_once(shared_data: Path) -> None:
    adapter = create_adapter("binanceusdm", replay_dir=shared_data)
    try:
        first = [e async for batch in adapter.watch_liquidations(["BTC/USDT:USDT"]) for e in batch]
        again = [e async for batch in adapter.watch_liquidations(["BTC/USDT:USDT"]) for e in batch]
    finally:
        await adapter.close()
    assert first and again == []
