"""Bybit and OKX adapters parse their own v5 wire formats back to the real Binance values.

The recordings for these venues carry the Binance numbers of ../shared/data in each venue's
documented wire format (see jobs/replay/bybit_wire.py, okx_wire.py), so ccxt's Bybit and OKX
request building and parsing run on real data; every expectation below comes from the shared
files, read here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobs.exchanges import ExchangeAdapter, create_adapter

SYMBOL = "BTC/USDT:USDT"
BAR = 300_000
EIGHT_HOURS = 8 * 3_600_000
CSV_PATH = Path("binance") / "BTCUSDT_perp_5m_klines_oi_funding.csv"
SPECS = Path("exchange_specs") / "perp_instrument_specs_BTC_ETH.json"
TIERS = Path("exchange_specs") / "binance_leverage_tiers_BTC_ETH_latest.json"
CAPTURES = Path("forceorder") / "binance_usdm_forceorder_captures_normalized.csv"
VENUES = ("bybit", "okx")


@pytest.fixture(scope="module")
def csv_rows(shared_data: Path) -> list[dict[str, str]]:
    with (shared_data / CSV_PATH).open(newline="") as handle:
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
    adapter = create_adapter(request.param, replay_dir=shared_data)
    yield adapter
    await adapter.close()


async def _rows(pages: AsyncIterator[list]) -> list:  # type: ignore[type-arg]
    return [row async for page in pages for row in page]


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


async def test_candles_open_interest_and_funding_equal_the_binance_csv(
    venue: ExchangeAdapter, csv_rows: list[dict[str, str]]
) -> None:
    now = venue.now_ms()
    first = int(csv_rows[0]["timestamp"])
    candles = await _rows(venue.fetch_candles(SYMBOL, "5m", first, now))
    closed = [r for r in csv_rows if int(r["timestamp"]) + BAR <= now]
    assert [c.timestamp for c in candles] == [int(r["timestamp"]) for r in closed]
    for index in (0, 4000, len(closed) - 1):
        got, row = candles[index], closed[index]
        assert (got.open, got.high, got.low, got.close) == tuple(
            float(row[k]) for k in ("price_open", "price_high", "price_low", "price_close")
        )

    interest = await _rows(venue.fetch_open_interest(SYMBOL, "5m", first - BAR, now))
    # each snapshot is stored at the open of the bar it closes, one bar before its stamp
    assert [r.timestamp for r in interest] == [int(r["timestamp"]) - BAR for r in csv_rows]
    for index in (0, 1, 4000, len(csv_rows) - 1):
        usd = float(csv_rows[index]["open_interest_usd"])
        price = float(csv_rows[index - 1]["price_close"] if index else csv_rows[0]["price_open"])
        if venue.exchange_id == "bybit" and index == 0:
            # Bybit sends the amount only; no recorded bar ends at the first snapshot to price it
            assert interest[index].open_interest_usd is None
        else:
            assert interest[index].open_interest_usd == pytest.approx(usd, rel=1e-12)
        assert interest[index].open_interest == pytest.approx(usd / price, rel=1e-12)

    funding = await _rows(venue.fetch_funding_rates(SYMBOL, first, now))
    by_time = {int(r["timestamp"]): r for r in csv_rows}
    last = int(csv_rows[-1]["timestamp"])
    settlements = [
        t
        for t in range(first - first % EIGHT_HOURS + EIGHT_HOURS, last, EIGHT_HOURS)
        if t + BAR <= last
    ]
    assert [f.timestamp for f in funding] == settlements
    assert [f.funding_rate for f in funding] == [
        float(by_time[t + BAR]["last_funding_rate"]) for t in settlements
    ]


async def test_page_sizes_follow_each_venue(venue: ExchangeAdapter) -> None:
    now = venue.now_ms()
    await _rows(venue.fetch_candles(SYMBOL, "5m", now - 10 * 86_400_000, now))
    await _rows(venue.fetch_open_interest(SYMBOL, "5m", now - 10 * 86_400_000, now))
    assert venue.transport is not None
    requests = venue.transport.requests
    if venue.exchange_id == "bybit":
        klines = [r for r in requests if r.path == "/v5/market/kline"]
        assert {(r.params["category"], r.params["limit"]) for r in klines} == {("linear", "1000")}
        oi = [r for r in requests if r.path == "/v5/market/open-interest"]
        assert {r.params["intervalTime"] for r in oi} == {"5min"}
    else:
        candles = [r for r in requests if "candles" in r.path]
        assert candles and all(int(r.params["limit"]) <= 100 for r in candles)
        oi = [r for r in requests if "open-interest-history" in r.path]
        assert oi and all(int(r.params["limit"]) <= 100 for r in oi)
        assert len(oi) >= 10 * 288 // 100  # ≤100 rows a call


async def test_tiers_carry_the_binance_brackets(
    venue: ExchangeAdapter, shared_data: Path, csv_rows: list[dict[str, str]]
) -> None:
    with (shared_data / TIERS).open() as handle:
        raw = [t["info"] for t in json.load(handle)["tiers"][SYMBOL]]
    table = await venue.fetch_tiers(SYMBOL)
    assert table.source == "api"
    assert [t.maintenance_margin_rate for t in table.tiers] == [
        float(r["maintMarginRatio"]) for r in raw
    ]
    assert [t.max_leverage for t in table.tiers] == [float(r["initialLeverage"]) for r in raw]
    if venue.exchange_id == "bybit":
        # minNotional comes from the previous tier's riskLimitValue (ccxt), cum from mmDeduction
        assert [(t.min_notional, t.max_notional, t.maintenance_amount) for t in table.tiers] == [
            (float(r["notionalFloor"]), float(r["notionalCap"]), float(r["cum"])) for r in raw
        ]
        assert {t.notional_unit for t in table.tiers} == {"quote"}
    else:
        # contracts → coin; the recording converted notional at the last closed bar's close
        close = float(csv_rows[-2]["price_close"])
        assert [t.max_notional * close for t in table.tiers] == pytest.approx(
            [float(r["notionalCap"]) for r in raw], rel=1e-12
        )
        assert {t.notional_unit for t in table.tiers} == {"base"}
        assert {t.maintenance_amount for t in table.tiers} == {0.0}


async def test_liquidation_stream_totals_equal_the_captures(
    venue: ExchangeAdapter, shared_data: Path
) -> None:
    with (shared_data / CAPTURES).open(newline="") as handle:
        captures = [r for r in csv.DictReader(handle) if r["symbol"] in ("BTCUSDT", "ETHUSDT")]
    events = await _rows(venue.watch_liquidations([SYMBOL, "ETH/USDT:USDT"]))
    assert len(events) == len(captures) > 0
    for symbol, market_id in ((SYMBOL, "BTCUSDT"), ("ETH/USDT:USDT", "ETHUSDT")):
        for side, order_side in (("long", "SELL"), ("short", "BUY")):
            expected = sum(
                float(r["price"]) * float(r["filled_accum_qty"])
                for r in captures
                if r["symbol"] == market_id and r["side"] == order_side
            )
            got = sum(e.usd_value for e in events if e.symbol == symbol and e.side == side)
            assert got == pytest.approx(expected, rel=1e-9)


async def test_bybit_has_no_all_market_liquidation_stream(shared_data: Path) -> None:
    adapter = create_adapter("bybit", replay_dir=shared_data)
    try:
        with pytest.raises(NotImplementedError, match="name the symbols"):
            await anext(adapter.watch_liquidations([]))
    finally:
        await adapter.close()
