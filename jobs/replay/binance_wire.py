"""Binance USDⓈ-M (``binanceusdm``) recordings in fapi wire format, and how fapi answers them.

Everything is real Binance data from ``../shared/data/binance`` (and Binance's own exchangeInfo,
leverage brackets and forceOrder captures). Two markets have series:

* BTCUSDT 2026-05-25 → 2026-06-22 (window ``binance-btc-2026-05``): prices, open interest in USD
  and the last funding rate, no volume;
* ETHUSDT 2026-01-01 → 2026-02-08 (window ``venues-2026-01``): prices, base volume and the
  8-hourly funding settlements, **no open interest** (none was recorded: an open-interest
  request for it has no recording, and the adapter reports the dataset unavailable).

In each 12-field kline: 0 open time, 1-4 OHLC and 5 volume are the file's own strings (volume
``null`` where the file has none); 6 close time = open time + 5 min - 1 ms (Binance's rule);
7 quote volume, 8 trade count, 9 taker-buy base, 10 taker-buy quote: ``null`` (unknown; never a
made-up number); 11 "ignore": "0" as Binance always sends.

openInterestHist rows (BTCUSDT): ``sumOpenInterestValue`` is the file's USD value;
``sumOpenInterest`` (BTC) is derived as USD / the price at the snapshot (the close of the bar
ending at ``timestamp``; the first row: its own open). fundingRate rows: BTCUSDT's settlements
derived from ``last_funding_rate`` (see ``source.funding_events``), ETHUSDT's from its settlement
file; ``markPrice`` is omitted (not recorded). exchangeInfo is the recorded 2021-07-22 response
(BTCUSDT, ETHUSDT); leverageBracket is the shipped 2024-10-24 bracket table (freqtrade) in fapi
form. Range queries follow the fapi docs: ``startTime``/``endTime`` inclusive, ``limit``
default/max 500/1500 (klines), 30/500 (openInterestHist, last 30 days only), 100/1000
(fundingRate).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobs.replay.recording import Recording
from jobs.replay.source import (
    BAR_MS,
    MarketSeries,
    SharedData,
    open_interest_base,
    tiers_valid_from_date,
)
from jobs.replay.windows import DEFAULT_WINDOW, windows_metadata
from jobs.replay.wire import (
    Params,
    Reply,
    Routes,
    Unrecorded,
    int_param,
    ok,
    series,
    stamp_at,
    stamp_of,
    window,
)

EXCHANGE_ID = "binanceusdm"
OPEN_INTEREST_DAYS = 30
DAY_MS = 86_400_000


def _error(status: int, code: int, msg: str) -> Reply:
    import json

    return Reply(status, json.dumps({"code": code, "msg": msg}))


def _market_series(market: MarketSeries) -> dict[str, list[Any]]:
    symbol = market.market_id
    out: dict[str, list[Any]] = {
        f"klines:{symbol}:5m": [
            [
                b.timestamp,
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume,
                b.timestamp + BAR_MS - 1,
                None,
                None,
                None,
                None,
                "0",
            ]
            for b in market.bars
        ],
        f"fundingRate:{symbol}": [
            {"symbol": symbol, "fundingTime": e.funding_time, "fundingRate": e.rate}
            for e in market.funding
        ],
    }
    if market.has_open_interest:
        out[f"openInterestHist:{symbol}:5m"] = [
            {
                "symbol": symbol,
                "sumOpenInterest": open_interest_base(market.bars, i),
                "sumOpenInterestValue": b.open_interest_usd,
                "timestamp": b.timestamp,  # the snapshot instant: the end of the previous bar
            }
            for i, b in enumerate(market.bars)
        ]
    return out


def build(data: SharedData) -> Recording:
    markets = data.of(EXCHANGE_ID)
    series_rows: dict[str, list[Any]] = {}
    datasets: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    derived: dict[str, str] = {}
    for market in markets:
        series_rows.update(_market_series(market))
        datasets[market.symbol] = ["candles", "funding"] + (
            ["open_interest"] if market.has_open_interest else []
        )
        sources.update({f"{market.market_id} {k}": v for k, v in market.sources.items()})
        derived.update({f"{market.market_id} {k}": v for k, v in market.derived.items()})
    for unified in data.tiers_latest["tiers"]:
        datasets.setdefault(unified, []).append("tiers")
    info = data.instrument_specs["binance_usdm_exchangeInfo"]
    exchange_info = {"serverTime": info["serverTime"], "symbols": info["symbols"]}
    brackets = []
    for unified, tiers in data.tiers_latest["tiers"].items():
        market_id = unified.split(":")[0].replace("/", "")
        brackets.append(
            {
                "symbol": market_id,
                "brackets": [
                    {
                        "bracket": int(t["info"]["bracket"]),
                        "initialLeverage": int(t["info"]["initialLeverage"]),
                        "notionalCap": float(t["info"]["notionalCap"]),
                        "notionalFloor": float(t["info"]["notionalFloor"]),
                        "maintMarginRatio": float(t["info"]["maintMarginRatio"]),
                        "cum": float(t["info"]["cum"]),
                    }
                    for t in tiers
                ],
            }
        )
    windows = windows_metadata(data, EXCHANGE_ID)
    return Recording(
        exchange_id=EXCHANGE_ID,
        now_ms=windows[DEFAULT_WINDOW]["now_ms"],
        metadata={
            "windows": windows,
            "datasets": datasets,
            "missing": {
                "open_interest": "the shared data has Binance open interest for BTCUSDT only "
                "(README: 'Still missing')",
            },
            "values": "real Binance USDⓈ-M data from ../shared/data/binance",
            "sources": {
                **sources,
                "exchangeInfo": "exchange_specs/perp_instrument_specs_BTC_ETH.json "
                "(recorded 2021-07-22)",
                "leverageBracket": "exchange_specs/binance_leverage_tiers_BTC_ETH_latest.json "
                f"(as of {tiers_valid_from_date(data.tiers_latest)})",
                "forceOrder": "forceorder/binance_usdm_forceorder_captures_normalized.csv",
            },
            "derived": {
                **derived,
                "kline[6] closeTime": "open time + 299999 ms",
                "kline[7,8,9,10]": "null: the files have no quote volume, trade counts or "
                "taker volumes",
                "now_ms": "per window: the close time of the last (possibly partial) bar",
                "forceOrder E": "event time not captured: set to the trade time T",
            },
        },
        static={"exchangeInfo": exchange_info, "leverageBracket": brackets},
        series=series_rows,
        ws_messages=[_force_order_message(o) for o in data.force_orders],
    )


def _force_order_message(order: Any) -> dict[str, Any]:
    """A ``!forceOrder@arr`` frame as fapi sends it (keys per the fapi websocket docs)."""
    body: dict[str, Any] = {
        "s": order.symbol,
        "S": order.side,
        "o": order.order_type,
        "f": order.time_in_force,
        "q": order.orig_qty,
        "p": order.price,
    }
    if order.avg_price is not None:  # not kept by every capture: leave it out, never guess
        body["ap"] = order.avg_price
    body.update(
        {
            "X": order.status,
            "l": order.last_filled_qty,
            "z": order.filled_accum_qty,
            "T": order.trade_time,
        }
    )
    return {"e": "forceOrder", "E": order.trade_time, "o": body}


# --- how fapi answers -------------------------------------------------------------------------
def _limit(params: Params, default: int, maximum: int) -> int | Reply:
    limit = int_param(params, "limit")
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        return _error(400, -1130, "Data sent for parameter 'limit' is not valid.")
    return limit


def _slice(rows: list[Any], time: Callable[[Any], int], params: Params, limit: int) -> list[Any]:
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    lo, hi = window(rows, start, end, time)
    # fapi returns the oldest `limit` rows from startTime, else the newest before endTime/now
    return rows[lo : min(hi, lo + limit)] if start is not None else rows[max(lo, hi - limit) : hi]


def _exchange_info(rec: Recording, params: Params) -> Reply:
    return ok(rec.static["exchangeInfo"])


def _klines(rec: Recording, params: Params) -> Reply:
    rows = series(rec, f"klines:{params.get('symbol')}:{params.get('interval')}")
    limit = _limit(params, 500, 1500)
    if isinstance(limit, Reply):
        return limit
    return ok(_slice(rows, stamp_at(0), params, limit))


def _open_interest_hist(rec: Recording, params: Params) -> Reply:
    rows = series(rec, f"openInterestHist:{params.get('symbol')}:{params.get('period')}")
    limit = _limit(params, 30, 500)
    if isinstance(limit, Reply):
        return limit
    start = int_param(params, "startTime")
    if start is not None and start < rec.now_ms - OPEN_INTEREST_DAYS * DAY_MS:
        # "Only the data of the latest 1 month is available"
        return _error(400, -1130, "Data sent for parameter 'startTime' is not valid.")
    return ok(_slice(rows, stamp_of("timestamp"), params, limit))


def _funding_rate(rec: Recording, params: Params) -> Reply:
    symbol = params.get("symbol")
    if symbol is None:
        raise Unrecorded("fundingRate without symbol (all-market history) is not recorded")
    rows = series(rec, f"fundingRate:{symbol}")
    limit = _limit(params, 100, 1000)
    if isinstance(limit, Reply):
        return limit
    return ok(_slice(rows, stamp_of("fundingTime"), params, limit))


def _leverage_bracket(rec: Recording, params: Params) -> Reply:
    brackets = rec.static["leverageBracket"]
    symbol = params.get("symbol")
    if symbol is None:
        return ok(brackets)
    match = [b for b in brackets if b["symbol"] == symbol]
    if not match:
        raise Unrecorded(f"no recorded leverage brackets for {symbol}")
    return ok(match)


ROUTES: Routes = {
    ("GET", "/fapi/v1/exchangeInfo"): _exchange_info,
    ("GET", "/fapi/v1/klines"): _klines,
    ("GET", "/futures/data/openInterestHist"): _open_interest_hist,
    ("GET", "/fapi/v1/fundingRate"): _funding_rate,
    ("GET", "/fapi/v1/leverageBracket"): _leverage_bracket,
}
