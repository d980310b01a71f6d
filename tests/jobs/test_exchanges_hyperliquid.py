"""The Hyperliquid adapter over the real ccxt class, answered from real recorded payloads.

The account payloads are ../shared/data/ccxt_fixtures/hyperliquid_response_extract.json, read
here; the markets and the two candles are ccxt's own recorded fixture
(jobs/replay/data/hyperliquid_ccxt_static.json, read here). The liquidation price is checked
against Hyperliquid's documented formula by hand.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import ccxt.async_support as ccxt
import pytest

from jobs.exchanges import ExchangeAdapter, create_adapter
from jobs.exchanges.hyperliquid import HyperliquidAdapter
from jobs.replay.hyperliquid_wire import CCXT_STATIC, RECORDED_ACCOUNT

EXTRACT = Path("ccxt_fixtures") / "hyperliquid_response_extract.json"
BTC = "BTC/USDC:USDC"
ETH = "ETH/USDC:USDC"


@pytest.fixture(scope="module")
def extract(shared_data: Path) -> dict:  # type: ignore[type-arg]
    with (shared_data / EXTRACT).open() as handle:
        data: dict = json.load(handle)  # type: ignore[type-arg]
        return data


@pytest.fixture(scope="module")
def ccxt_static() -> dict:  # type: ignore[type-arg]
    with CCXT_STATIC.open() as handle:
        data: dict = json.load(handle)  # type: ignore[type-arg]
        return data


@pytest.fixture
async def hyperliquid(shared_data: Path) -> AsyncIterator[HyperliquidAdapter]:
    adapter = create_adapter("hyperliquid", replay_dir=shared_data, replay_window="venues-2026-01")
    assert isinstance(adapter, HyperliquidAdapter)
    yield adapter
    await adapter.close()


def _requests(adapter: ExchangeAdapter) -> list[dict[str, str]]:
    assert adapter.transport is not None
    return [r.params for r in adapter.transport.requests]


async def test_markets_are_the_recorded_perpetuals(
    hyperliquid: HyperliquidAdapter,
    ccxt_static: dict,  # type: ignore[type-arg]
) -> None:
    btc, eth = await hyperliquid.load_markets([BTC, ETH])
    universe = {u["name"]: (i, u) for i, u in enumerate(ccxt_static["universe"])}
    for info, coin in ((btc, "BTC"), (eth, "ETH")):
        index, raw = universe[coin]
        assert (info.exchange_symbol, info.base, info.quote, info.settle) == (
            str(index),
            coin,
            "USDC",
            "USDC",
        )
        assert info.linear and info.contract_size == 1.0
        assert info.amount_precision == pytest.approx(10.0 ** -int(raw["szDecimals"]))
    assert _requests(hyperliquid) == [{"type": "metaAndAssetCtxs"}]  # one info call, no spot


async def test_candles_parse_the_recorded_candle_snapshot(
    hyperliquid: HyperliquidAdapter,
    ccxt_static: dict,  # type: ignore[type-arg]
) -> None:
    raw = ccxt_static["candleSnapshot"]["BTC:1m"]
    first, last = int(raw[0]["t"]), int(raw[-1]["t"])
    rows = [r async for p in hyperliquid.fetch_candles(BTC, "1m", first, last + 60_000) for r in p]
    assert [(c.timestamp, c.open, c.high, c.low, c.close, c.volume) for c in rows] == [
        (int(r["t"]), float(r["o"]), float(r["h"]), float(r["l"]), float(r["c"]), float(r["v"]))
        for r in raw
    ]
    (request,) = [p for p in _requests(hyperliquid) if p["type"] == "candleSnapshot"]
    assert (request["req.coin"], request["req.interval"]) == ("BTC", "1m")


async def test_a_recorded_position_carries_the_venues_liquidation_price(
    hyperliquid: HyperliquidAdapter,
    extract: dict,  # type: ignore[type-arg]
) -> None:
    state = extract["fetchPositions_isolated_with_liquidationPx"]["httpResponse"]
    (raw,) = [p["position"] for p in state["assetPositions"]]
    account = await hyperliquid.fetch_account_positions(RECORDED_ACCOUNT.upper(), dex="flx")
    assert (account.account, account.dex) == (RECORDED_ACCOUNT, "flx")
    assert account.taken_at == int(state["time"])  # the venue's time of the state
    (position,) = account.positions
    assert position.side == "long" and position.size == float(raw["szi"])
    assert position.notional_usd == float(raw["positionValue"])
    assert position.entry_price == float(raw["entryPx"])
    assert (position.leverage, position.margin_mode) == (
        float(raw["leverage"]["value"]),
        "isolated",
    )
    assert position.liquidation_price == float(raw["liquidationPx"])
    # Hyperliquid's rule for an isolated position: equity rawUsd + size × P falls to the
    # maintenance margin size × P / (2 × max leverage), so P = -rawUsd / (size × (1 - 1/(2L)))
    size, raw_usd = float(raw["szi"]), float(raw["leverage"]["rawUsd"])
    maintenance = 1 / (2 * float(raw["maxLeverage"]))
    assert position.liquidation_price == pytest.approx(-raw_usd / (size * (1 - maintenance)))
    request = [p for p in _requests(hyperliquid) if p["type"] == "clearinghouseState"]
    assert request == [
        {"type": "clearinghouseState", "user": RECORDED_ACCOUNT.upper(), "dex": "flx"}
    ]


async def test_liquidation_fills_parse_to_liquidation_events(
    hyperliquid: HyperliquidAdapter,
    extract: dict,  # type: ignore[type-arg]
) -> None:
    fills = sorted(extract["fetchMyTrades_liquidation_fills"], key=lambda f: int(f["time"]))
    events = await hyperliquid.fetch_account_liquidations(RECORDED_ACCOUNT)
    assert sorted(e.timestamp for e in events) == [int(f["time"]) for f in fills]
    by_time = {e.timestamp: e for e in events}
    for fill in fills:
        event = by_time[int(fill["time"])]
        assert fill["dir"] == "Close Long" and event.side == "long"  # a sell closed a long
        assert (event.price, event.quantity) == (float(fill["px"]), float(fill["sz"]))
        assert event.usd_value == pytest.approx(float(fill["px"]) * float(fill["sz"]), rel=1e-12)
        assert event.raw["liquidation"]["liquidatedUser"] == RECORDED_ACCOUNT
    hype = by_time[1768931202995]
    assert (hype.symbol, hype.usd_value) == ("HYPE/USDC:USDC", pytest.approx(109.9644))
    # by time: only the January fill lies in [2026-01-20, 2026-01-21)
    january = await hyperliquid.fetch_account_liquidations(
        RECORDED_ACCOUNT, 1768867200000, 1768953600000
    )
    assert [e.timestamp for e in january] == [1768931202995]
    assert _requests(hyperliquid)[-1]["type"] == "userFillsByTime"


async def test_what_was_not_recorded_is_unavailable_not_invented(
    hyperliquid: HyperliquidAdapter,
) -> None:
    for dataset in ("candles", "open_interest", "funding", "tiers"):
        assert hyperliquid.unavailable(BTC, dataset) is not None
    assert "margin tables" in str(hyperliquid.unavailable(BTC, "tiers"))
    now = hyperliquid.now_ms()
    # open interest is a current value only; none was recorded at a known instant
    assert [
        r async for p in hyperliquid.fetch_open_interest(BTC, "5m", 0, now + 1) for r in p
    ] == []
    with pytest.raises(ccxt.BadRequest, match="no recording"):
        await anext(hyperliquid.fetch_funding_rates(BTC, now - 86_400_000, now))
    with pytest.raises(ccxt.BadRequest, match="no recorded clearinghouseState"):
        await hyperliquid.fetch_account_positions("0x" + "0" * 40)
    with pytest.raises(ccxt.BadRequest, match="leaderboard"):
        await hyperliquid.leaderboard_accounts(10)
    with pytest.raises(NotImplementedError, match="no liquidation stream"):
        await anext(hyperliquid.watch_liquidations([BTC]))


async def test_live_mode_is_the_same_class_on_ccxt_hyperliquid() -> None:
    live = create_adapter("hyperliquid")  # no request is made until a method is awaited
    try:
        assert live.transport is None and live.recorded_markets is None
        assert type(live.exchange).__module__ == "ccxt.pro.hyperliquid"
        assert live.unavailable(BTC, "candles") is None
        assert live.exchange.has["fetchCurrencies"] is False  # perpetuals need no spot tokens
    finally:
        await live.close()
