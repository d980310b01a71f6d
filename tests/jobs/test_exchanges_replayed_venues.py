"""Bybit and OKX replay their own recorded data, and nothing else.

Their recordings hold each venue's own files of ../shared/data (Bybit BTCUSDT 5m, OKX
BTC-USDT-SWAP 1m, their 8-hourly settlements) in each venue's v5 wire format, in the replay
window ``venues-2026-01``; neither venue recorded open interest, tiers or liquidations, and
the replay says so instead of answering with another venue's numbers. Every expectation below
is read from the shared files here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path

import ccxt.async_support as ccxt
import pytest

from jobs.exchanges import ExchangeAdapter, create_adapter

SYMBOL = "BTC/USDT:USDT"
WINDOW = "venues-2026-01"
BAR = 300_000
MINUTE = 60_000
SPECS = Path("exchange_specs") / "perp_instrument_specs_BTC_ETH.json"
FILES = {
    "bybit": (Path("bybit") / "BTCUSDT_perp_5m_klines_funding.csv", BAR),
    "okx": (Path("okx") / "BTC-USDT-SWAP_perp_1m_klines_funding.csv", MINUTE),
}
SETTLEMENTS = {
    "bybit": Path("bybit") / "BTCUSDT_perp_funding_8h.csv",
    "okx": Path("okx") / "BTC-USDT-SWAP_funding_8h.csv",
}
BINANCE_BTC = Path("binance") / "BTCUSDT_perp_5m_klines_oi_funding.csv"
VENUES = ("bybit", "okx")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def specs(shared_data: Path) -> dict[str, object]:
    with (shared_data / SPECS).open() as handle:
        data: dict[str, object] = json.load(handle)
        return data


@pytest.fixture(params=VENUES)
async def venue(
    request: pytest.FixtureRequest, shared_data: Path
) -> AsyncIterator[ExchangeAdapter]:
    adapter = create_adapter(request.param, replay_dir=shared_data, replay_window=WINDOW)
    yield adapter
    await adapter.close()


async def _rows(pages: AsyncIterator[list]) -> list:  # type: ignore[type-arg]
    return [row async for page in pages for row in page]


def _ohlcv(row: dict[str, str]) -> tuple[float, ...]:
    keys = ("price_open", "price_high", "price_low", "price_close", "volume_base")
    return tuple(float(row[k]) for k in keys)


async def test_markets_parse_the_recorded_instruments(venue: ExchangeAdapter, specs: dict) -> None:  # type: ignore[type-arg]
    linear, inverse = await venue.load_markets([SYMBOL, "BTC/USD:BTC"])
    assert (linear.linear, linear.settle, inverse.linear, inverse.settle) == (
        True,
        "USDT",
        False,
        "BTC",
    )
    if venue.exchange_id == "bybit":
        v2 = {s["name"]: s for s in specs["bybit_v2_symbols"]["result"]}
        assert linear.exchange_symbol == "BTCUSDT" and inverse.exchange_symbol == "BTCUSD"
        assert linear.price_precision == float(v2["BTCUSDT"]["price_filter"]["tick_size"])
        assert linear.amount_precision == float(v2["BTCUSDT"]["lot_size_filter"]["qty_step"])
    else:
        okx = {i["instId"]: i for i in specs["okx_v5_instruments_swap"]["responses"][0]["data"]}
        assert linear.exchange_symbol == "BTC-USDT-SWAP"
        assert linear.contract_size == float(okx["BTC-USDT-SWAP"]["ctVal"])  # 0.01 BTC
        assert inverse.contract_size == float(okx["BTC-USD-SWAP"]["ctVal"])  # 100 USD
        assert linear.price_precision == float(okx["BTC-USDT-SWAP"]["tickSz"])


async def test_bybit_candles_are_the_bybit_files_rows_not_binances(
    shared_data: Path, binance_rows: list[dict[str, str]]
) -> None:
    rows = _read(shared_data / FILES["bybit"][0])
    adapter = create_adapter("bybit", replay_dir=shared_data, replay_window=WINDOW)
    try:
        assert adapter.recorded_markets == [SYMBOL]
        now = adapter.now_ms()
        first = int(rows[0]["timestamp"])
        candles = await _rows(adapter.fetch_candles(SYMBOL, "5m", first, now))
    finally:
        await adapter.close()
    # the window's clock is past Bybit's last bar: every recorded bar is closed and served
    assert [c.timestamp for c in candles] == [int(r["timestamp"]) for r in rows]
    for index in (0, 1, 5000, len(rows) - 1):
        got = candles[index]
        assert (got.open, got.high, got.low, got.close, got.volume) == _ohlcv(rows[index])
    # the 2026-02-06 00:15 low of the README, Bybit's own: 59,888.0
    low = min(candles, key=lambda c: c.low)
    assert (low.timestamp, low.low) == (1770336900000, 59888.0)
    # Binance recorded no January BTC: nothing of Binance's file can be among these bars
    binance_opens = {int(r["timestamp"]) for r in binance_rows}  # the BINANCE_BTC file
    assert not binance_opens & {c.timestamp for c in candles}


async def test_okx_serves_its_1m_bars_and_the_5m_bars_built_from_them(shared_data: Path) -> None:
    minutes = _read(shared_data / FILES["okx"][0])
    adapter = create_adapter("okx", replay_dir=shared_data, replay_window=WINDOW)
    try:
        now = adapter.now_ms()
        first = int(minutes[0]["timestamp"])
        one = await _rows(adapter.fetch_candles(SYMBOL, "1m", first, now))
        five = await _rows(adapter.fetch_candles(SYMBOL, "5m", first, now))
    finally:
        await adapter.close()
    assert [c.timestamp for c in one] == [int(r["timestamp"]) for r in minutes]
    assert [(c.open, c.high, c.low, c.close, c.volume) for c in one[:3]] == [
        _ohlcv(r) for r in minutes[:3]
    ]
    # brute force: every 5-minute group of the file with all five minutes present
    groups: dict[int, list[dict[str, str]]] = {}
    for row in minutes:
        t = int(row["timestamp"])
        groups.setdefault(t - t % BAR, []).append(row)
    complete = {t: g for t, g in groups.items() if len(g) == 5}
    assert len(complete) == len(groups) - 1  # only the capture's last, 3-minute group is cut
    assert [c.timestamp for c in five] == sorted(complete)
    for bar in (five[0], five[2000], five[-1]):
        group = complete[bar.timestamp]
        assert bar.open == float(group[0]["price_open"])
        assert bar.high == max(float(r["price_high"]) for r in group)
        assert bar.low == min(float(r["price_low"]) for r in group)
        assert bar.close == float(group[-1]["price_close"])
        assert bar.volume == pytest.approx(sum(float(r["volume_base"]) for r in group), rel=1e-12)


async def test_funding_is_each_venues_own_settlements(
    venue: ExchangeAdapter, shared_data: Path
) -> None:
    settlements = _read(shared_data / SETTLEMENTS[venue.exchange_id])
    first = int(settlements[0]["funding_time"])
    funding = await _rows(venue.fetch_funding_rates(SYMBOL, first, venue.now_ms()))
    assert [(f.timestamp, f.funding_rate) for f in funding] == [
        (int(s["funding_time"]), float(s["funding_rate"])) for s in settlements
    ]


async def test_open_interest_tiers_and_liquidations_are_unrecorded_not_borrowed(
    venue: ExchangeAdapter,
) -> None:
    for dataset in ("open_interest", "tiers"):
        reason = venue.unavailable(SYMBOL, dataset)
        assert reason is not None and f"no {dataset} of {SYMBOL}" in reason
    assert "open interest" in str(venue.unavailable(SYMBOL, "open_interest"))
    assert venue.unavailable(SYMBOL, "candles") is None
    assert venue.unavailable(SYMBOL, "funding") is None
    now = venue.now_ms()
    with pytest.raises(ccxt.BadRequest, match="no recording"):
        await _rows(venue.fetch_open_interest(SYMBOL, "5m", now - 86_400_000, now))
    with pytest.raises(ccxt.BadRequest, match="no recording"):
        await venue.fetch_tiers(SYMBOL)
    # no liquidation frames were recorded: the stream ends with nothing
    assert await _rows(venue.watch_liquidations([SYMBOL])) == []


async def test_the_default_window_has_nothing_of_these_venues(shared_data: Path) -> None:
    """Binance's May window: Bybit and OKX recorded nothing then, so they answer nothing."""
    for exchange_id in VENUES:
        adapter = create_adapter(exchange_id, replay_dir=shared_data)
        try:
            assert adapter.recorded_markets == []
            now = adapter.now_ms()
            assert await _rows(adapter.fetch_candles(SYMBOL, "5m", now - 86_400_000, now)) == []
        finally:
            await adapter.close()


async def test_page_sizes_follow_each_venue(venue: ExchangeAdapter) -> None:
    now = venue.now_ms()
    await _rows(venue.fetch_candles(SYMBOL, "5m", now - 10 * 86_400_000, now))
    assert venue.transport is not None
    requests = venue.transport.requests
    if venue.exchange_id == "bybit":
        klines = [r for r in requests if r.path == "/v5/market/kline"]
        assert {(r.params["category"], r.params["limit"]) for r in klines} == {("linear", "1000")}
    else:
        candles = [r for r in requests if "candles" in r.path]
        assert candles and all(int(r.params["limit"]) <= 100 for r in candles)


async def test_bybit_has_no_all_market_liquidation_stream(shared_data: Path) -> None:
    adapter = create_adapter("bybit", replay_dir=shared_data)
    try:
        with pytest.raises(NotImplementedError, match="name the symbols"):
            await anext(adapter.watch_liquidations([]))
    finally:
        await adapter.close()
