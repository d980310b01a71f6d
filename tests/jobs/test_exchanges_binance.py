"""The Binance USDⓈ-M adapter over the real ccxt class, replaying the shared 4-week window.

Every expected number is read from ../shared/data in the test itself.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import ccxt.async_support as ccxt
import pytest

from jobs.exchanges import SUPPORTED_EXCHANGES, ExchangeAdapter, create_adapter

SYMBOL = "BTC/USDT:USDT"
BAR = 300_000
CSV_PATH = Path("binance") / "BTCUSDT_perp_5m_klines_oi_funding.csv"
TIERS_PATH = Path("exchange_specs") / "binance_leverage_tiers_BTC_ETH_latest.json"
ETH_CSV = Path("binance") / "ETHUSDT_perp_5m_klines_funding.csv"
ETH_FUNDING = Path("binance") / "ETHUSDT_perp_funding_8h.csv"
EIGHT_HOURS = 8 * 3_600_000


@pytest.fixture(scope="module")
def csv_rows(binance_rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows of ``CSV_PATH`` (the run's one read of it, tests/conftest.py)."""
    return binance_rows


@pytest.fixture
async def binance(shared_data: Path) -> AsyncIterator[ExchangeAdapter]:
    adapter = create_adapter("binanceusdm", replay_dir=shared_data)
    yield adapter
    await adapter.close()


async def _collect(pages: AsyncIterator[list]) -> tuple[list, list[int]]:  # type: ignore[type-arg]
    rows: list = []  # type: ignore[type-arg]
    sizes: list[int] = []
    async for page in pages:
        rows.extend(page)
        sizes.append(len(page))
    return rows, sizes


def _closed(csv_rows: list[dict[str, str]], now: int) -> list[dict[str, str]]:
    return [r for r in csv_rows if int(r["timestamp"]) + BAR <= now]


async def test_markets_and_clock(binance: ExchangeAdapter, csv_rows: list[dict[str, str]]) -> None:
    (info,) = await binance.load_markets([SYMBOL])
    assert (info.exchange, info.exchange_symbol, info.linear) == ("binanceusdm", "BTCUSDT", True)
    assert (info.base, info.quote, info.settle, info.contract_size) == ("BTC", "USDT", "USDT", 1)
    # exchangeInfo: PRICE_FILTER tickSize 0.01, LOT_SIZE stepSize 0.001
    assert (info.price_precision, info.amount_precision) == (0.01, 0.001)
    # the replay clock stops inside the last (possibly partial) bar: it is not closed
    last_open = int(csv_rows[-1]["timestamp"])
    assert last_open < binance.now_ms() < last_open + BAR


async def test_replay_and_live_modes_are_the_same_class(binance: ExchangeAdapter) -> None:
    assert binance.recorded_markets == [SYMBOL]
    live = create_adapter("binanceusdm")  # no request is made until a method is awaited
    try:
        assert type(live) is type(binance)
        assert live.transport is None and live.recorded_markets is None
        assert (
            type(live.exchange).__module__
            == type(binance.exchange).__module__
            == "ccxt.pro.binanceusdm"
        )
    finally:
        await live.close()


async def test_candles_over_the_whole_window_match_the_csv(
    binance: ExchangeAdapter, csv_rows: list[dict[str, str]]
) -> None:
    now = binance.now_ms()
    first = int(csv_rows[0]["timestamp"])
    rows, sizes = await _collect(binance.fetch_candles(SYMBOL, "5m", first - 7 * 86_400_000, now))
    closed = _closed(csv_rows, now)
    assert len(rows) == len(closed) == len(csv_rows) - 1
    assert len(sizes) > 1 and max(sizes) <= 1500  # paginated, fapi's 1500-bar pages
    assert [r.timestamp for r in rows] == [int(r["timestamp"]) for r in closed]
    for index in (0, 1, 2777, 4000, len(closed) - 1):
        expected = closed[index]
        got = rows[index]
        assert (got.open, got.high, got.low, got.close) == tuple(
            float(expected[k]) for k in ("price_open", "price_high", "price_low", "price_close")
        )
        assert got.volume is None and got.taker_buy_volume is None  # not in the source
    klines_calls = [r for r in binance.transport.requests if r.path == "/fapi/v1/klines"]
    assert all(r.params["limit"] == "1500" for r in klines_calls)


async def test_candles_respect_until_and_resume_without_overlap(
    binance: ExchangeAdapter, csv_rows: list[dict[str, str]]
) -> None:
    start = int(csv_rows[100]["timestamp"])
    cut = int(csv_rows[3100]["timestamp"])
    head, _ = await _collect(binance.fetch_candles(SYMBOL, "5m", start, cut))
    tail, _ = await _collect(binance.fetch_candles(SYMBOL, "5m", cut, binance.now_ms()))
    assert len(head) == 3000 and head[-1].timestamp == cut - BAR
    assert tail[0].timestamp == cut
    stamps = [r.timestamp for r in head + tail]
    assert stamps == sorted(set(stamps))
    assert all(b - a == BAR for a, b in itertools.pairwise(stamps))


async def test_open_interest_matches_the_csv_with_derived_base_amount(
    binance: ExchangeAdapter, csv_rows: list[dict[str, str]]
) -> None:
    now = binance.now_ms()
    rows, sizes = await _collect(binance.fetch_open_interest(SYMBOL, "5m", 0, now))
    # the whole 27.8-day file lies inside Binance's 30-day window, every row is served
    assert len(rows) == len(csv_rows)
    assert max(sizes) <= 500 and len(sizes) >= len(csv_rows) // 500
    # the snapshot stamped t (the CSV row opening at t) closes the bar opening at t - 5 min
    assert [r.timestamp for r in rows] == [int(r["timestamp"]) - BAR for r in csv_rows]
    for index in (0, 1, 4000, len(csv_rows) - 1):
        usd = float(csv_rows[index]["open_interest_usd"])
        # the derived amount: USD over the price at the snapshot (the bar's close it ends)
        price = float(csv_rows[index - 1]["price_close"] if index else csv_rows[0]["price_open"])
        assert rows[index].open_interest_usd == usd
        assert rows[index].open_interest == pytest.approx(usd / price, rel=1e-12)
    # requests never reach back beyond the 30-day window (the oldest row fapi serves)
    oldest = min(
        int(r.params["startTime"])
        for r in binance.transport.requests
        if r.path == "/futures/data/openInterestHist"
    )
    assert oldest >= now - 30 * 86_400_000


async def test_funding_events_are_the_settlements_in_the_csv(
    binance: ExchangeAdapter, csv_rows: list[dict[str, str]]
) -> None:
    by_time = {int(r["timestamp"]): r for r in csv_rows}
    first, last = int(csv_rows[0]["timestamp"]), int(csv_rows[-1]["timestamp"])
    rows, _ = await _collect(binance.fetch_funding_rates(SYMBOL, first, binance.now_ms()))
    settlements = [
        t
        for t in range(first - first % EIGHT_HOURS + EIGHT_HOURS, last, EIGHT_HOURS)
        if t + BAR <= last
    ]
    assert [r.timestamp for r in rows] == settlements
    for row in rows:
        # the CSV's last_funding_rate shows the new settlement from the bar after it on
        assert row.funding_rate == float(by_time[row.timestamp + BAR]["last_funding_rate"])
    changes = {
        int(b["timestamp"]) - int(b["timestamp"]) % EIGHT_HOURS
        for a, b in itertools.pairwise(csv_rows)
        if a["last_funding_rate"] != b["last_funding_rate"]
    }
    assert changes <= set(settlements)  # every step in the column is one of the events


async def test_tiers_without_keys_use_the_dated_shipped_table(
    binance: ExchangeAdapter, shared_data: Path
) -> None:
    table = await binance.fetch_tiers(SYMBOL)
    # the stored source says it is the shipped, dated fallback table (and which one)
    shipped = "shipped:binance_leverage_tiers_BTC_ETH_2024-10-24.json@2024-10-24"
    assert table.source.startswith(shipped)
    assert table.valid_from == 1_729_728_000_000  # 2024-10-24T00:00Z
    with (shared_data / TIERS_PATH).open() as handle:
        raw = [t["info"] for t in json.load(handle)["tiers"][SYMBOL]]
    assert [(t.tier, t.min_notional, t.max_notional) for t in table.tiers] == [
        (int(r["bracket"]), float(r["notionalFloor"]), float(r["notionalCap"])) for r in raw
    ]
    rates = [(t.maintenance_margin_rate, t.maintenance_amount, t.max_leverage) for t in table.tiers]
    assert rates == [
        (float(r["maintMarginRatio"]), float(r["cum"]), float(r["initialLeverage"])) for r in raw
    ]
    # Table B (2024-10-24): 125x at 0.4 % with no deduction, tier 3 0.65 % / cum 950
    assert (table.tiers[0].max_leverage, table.tiers[0].maintenance_margin_rate) == (125, 0.004)
    assert table.tiers[2].maintenance_amount == 950.0
    with pytest.raises(ccxt.BadSymbol):
        await binance.fetch_tiers("DOGE/USDT:USDT")


def test_the_tier_table_is_shipped_once() -> None:
    """One copy of the Binance brackets (engine/data), read by one loader (engine.tiers)."""
    repo = Path(__file__).resolve().parents[2]
    copies = sorted(
        p.relative_to(repo).as_posix()
        for folder in ("engine", "jobs", "models", "api", "liqmap")
        for p in (repo / folder).rglob("binance_leverage_tiers*.json")
    )
    assert copies == ["engine/data/binance_leverage_tiers_BTC_ETH_2024-10-24.json"]


async def test_tiers_with_keys_parse_the_leverage_bracket_endpoint(shared_data: Path) -> None:
    adapter = create_adapter("binanceusdm", replay_dir=shared_data, api_key="k", secret="s")
    try:
        api = await adapter.fetch_tiers(SYMBOL)
        shipped = adapter.shipped_tiers(SYMBOL)  # type: ignore[attr-defined]
    finally:
        await adapter.close()
    assert api.source == "api"
    assert api.tiers == shipped.tiers  # ccxt's parse of fapi brackets == the shipped table
    request = adapter.transport.requests[-1]  # type: ignore[union-attr]
    assert request.path == "/fapi/v1/leverageBracket"


async def test_unknown_exchange_and_market_errors_list_valid_names(
    binance: ExchangeAdapter,
) -> None:
    with pytest.raises(ValueError, match="valid: binanceusdm, bybit, hyperliquid, okx"):
        create_adapter("binance-futures")
    assert SUPPORTED_EXCHANGES == ("binanceusdm", "bybit", "hyperliquid", "okx")
    with pytest.raises(ValueError) as excinfo:
        await binance.load_markets([SYMBOL, "BTC/USDT"])
    message = str(excinfo.value)
    assert "'BTC/USDT'" in message and "close: BTC/USDT:USDT" in message
    assert "ETH/USDT:USDT" in message  # the valid markets are listed
    with pytest.raises(ccxt.BadSymbol):
        await anext(binance.fetch_candles("XRP/USDT:USDT", "5m", 0, binance.now_ms()))


async def test_unrecorded_request_names_its_key(binance: ExchangeAdapter) -> None:
    # ETHUSDT has recorded candles and funding, but no open interest was ever recorded
    assert binance.unavailable("ETH/USDT:USDT", "candles") is None
    reason = binance.unavailable("ETH/USDT:USDT", "open_interest")
    assert reason is not None and "open_interest of ETH/USDT:USDT" in reason
    assert binance.unavailable(SYMBOL, "open_interest") is None
    now = binance.now_ms()
    with pytest.raises(
        ccxt.BadRequest,
        match=r"no recording for GET /futures/data/openInterestHist\?.*symbol=ETHUSDT",
    ):
        await anext(binance.fetch_open_interest("ETH/USDT:USDT", "5m", now - 86_400_000, now))


async def test_eth_candles_and_funding_are_binances_own_january_rows(shared_data: Path) -> None:
    with (shared_data / ETH_CSV).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with (shared_data / ETH_FUNDING).open(newline="") as handle:
        settlements = list(csv.DictReader(handle))
    adapter = create_adapter("binanceusdm", replay_dir=shared_data, replay_window="venues-2026-01")
    try:
        assert adapter.recorded_markets == ["ETH/USDT:USDT"]
        now = adapter.now_ms()
        assert now == int(rows[-1]["timestamp"]) + BAR - 1  # the window ends with ETH's last bar
        first = int(rows[0]["timestamp"])
        candles, _ = await _collect(adapter.fetch_candles("ETH/USDT:USDT", "5m", first, now))
        closed = _closed(rows, now)
        assert [c.timestamp for c in candles] == [int(r["timestamp"]) for r in closed]
        for index in (0, 5000, len(closed) - 1):
            got, row = candles[index], closed[index]
            assert (got.open, got.high, got.low, got.close, got.volume) == tuple(
                float(row[k])
                for k in ("price_open", "price_high", "price_low", "price_close", "volume_base")
            )
        funding, _ = await _collect(adapter.fetch_funding_rates("ETH/USDT:USDT", first, now))
        inside = [s for s in settlements if first <= int(s["funding_time"]) <= now]
        assert [(f.timestamp, f.funding_rate) for f in funding] == [
            (int(s["funding_time"]), float(s["funding_rate"])) for s in inside
        ]
        # the May BTC bars lie after this window's clock: the venue has nothing of them yet
        later, _ = await _collect(adapter.fetch_candles(SYMBOL, "5m", now - 86_400_000, now))
        assert later == []
    finally:
        await adapter.close()
