"""Bybit v5 recordings of Bybit's own data, and how v5 answers them.

Every value is Bybit's, from ``../shared/data``:

* ``instruments-info``: the recorded Bybit v2 ``/v2/public/symbols`` entries (2021-04-17: BTCUSD,
  BTCUSDT, ETHUSDT) mapped field by field to v5 names (contract type and settle coin from the
  quote: USD → inverse, settled in the base coin);
* ``kline`` rows ``[start, open, high, low, close, volume, turnover]`` of BTCUSDT 5m,
  2026-01-01 → 2026-02-08 (``bybit/BTCUSDT_perp_5m_klines_funding.csv``), newest first;
  ``turnover`` ``null`` (not in the source);
* ``funding/history``: the recorded 8-hourly settlements (``bybit/BTCUSDT_perp_funding_8h.csv``).

Not recorded, so never answered with anyone else's numbers: open interest (the shared data has no
Bybit open interest in any window), risk limits, and the ``allLiquidation`` stream. Requests for
them get the replay's "no recording" error, and the adapter reports those datasets unavailable.

Range queries: ``start``/``end`` (kline) and ``startTime``/``endTime`` are inclusive; when more
rows match than ``limit`` the newest are returned (pages run backwards from ``end``);
``open-interest`` also pages with ``cursor`` (kept for a recording that has it).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from typing import Any

from jobs.replay.recording import Recording
from jobs.replay.source import SharedData
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

EXCHANGE_ID = "bybit"
INTERVALS = {"5": "5m"}  # kline interval -> recorded bar
OI_INTERVALS = {"5min": "5m"}


def _v5(rec: Recording, result: Any) -> Reply:
    return ok(
        {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": rec.now_ms}
    )


def _v5_error(code: int, msg: str) -> Reply:
    body = {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": 0}
    return Reply(200, json.dumps(body))  # v5 reports request errors in the body, HTTP 200


def _instrument(v2: dict[str, Any]) -> dict[str, Any]:
    inverse = v2["quote_currency"] == "USD"
    lev, price, lot = v2["leverage_filter"], v2["price_filter"], v2["lot_size_filter"]
    return {
        "symbol": v2["name"],
        "contractType": "InversePerpetual" if inverse else "LinearPerpetual",
        "status": v2["status"],
        "baseCoin": v2["base_currency"],
        "quoteCoin": v2["quote_currency"],
        "settleCoin": v2["base_currency"] if inverse else v2["quote_currency"],
        "priceScale": str(v2["price_scale"]),
        "leverageFilter": {
            "minLeverage": str(lev["min_leverage"]),
            "maxLeverage": str(lev["max_leverage"]),
            "leverageStep": str(lev["leverage_step"]),
        },
        "priceFilter": {
            "minPrice": str(price["min_price"]),
            "maxPrice": str(price["max_price"]),
            "tickSize": str(price["tick_size"]),
        },
        "lotSizeFilter": {
            "maxOrderQty": str(lot["max_trading_qty"]),
            "minOrderQty": str(lot["min_trading_qty"]),
            "qtyStep": str(lot["qty_step"]),
        },
    }


def build(data: SharedData) -> Recording:
    instruments = [_instrument(v2) for v2 in data.instrument_specs["bybit_v2_symbols"]["result"]]
    series_rows: dict[str, list[Any]] = {}
    datasets: dict[str, list[str]] = {}
    sources: dict[str, str] = {
        "instruments-info": "exchange_specs/perp_instrument_specs_BTC_ETH.json "
        "bybit_v2_symbols (2021-04-17) mapped to v5 field names",
    }
    for market in data.of(EXCHANGE_ID):
        symbol = market.market_id
        series_rows[f"kline:{symbol}:5m"] = [
            [str(b.timestamp), b.open, b.high, b.low, b.close, b.volume, None] for b in market.bars
        ]
        series_rows[f"funding:{symbol}"] = [
            {"symbol": symbol, "fundingRate": e.rate, "fundingRateTimestamp": str(e.funding_time)}
            for e in market.funding
        ]
        datasets[market.symbol] = ["candles", "funding"]
        sources.update({f"{symbol} {k}": v for k, v in market.sources.items()})
    windows = windows_metadata(data, EXCHANGE_ID)
    return Recording(
        exchange_id=EXCHANGE_ID,
        now_ms=windows[DEFAULT_WINDOW]["now_ms"],
        metadata={
            "windows": windows,
            "datasets": datasets,
            "missing": {
                "open_interest": "the shared data has no Bybit open interest in any window "
                "(README: 'Still missing')",
                "tiers": "no Bybit risk-limit table is in the shared data",
                "liquidations": "no Bybit allLiquidation frames are in the shared data",
            },
            "values": "real Bybit data from ../shared/data/bybit",
            "sources": sources,
            "derived": {
                "kline turnover": "null: not in the source",
                "time": "the replay clock",
            },
        },
        static={"instruments": instruments, "riskLimits": {}},
        series=series_rows,
        ws_messages=[],
    )


def _newest(
    rows: list[Any], time: Callable[[Any], int], start: int | None, end: int | None, limit: int
) -> list[Any]:
    lo, hi = window(rows, start, end, time)
    return list(reversed(rows[max(lo, hi - limit) : hi]))  # newest first


def _limit(params: Params, default: int, maximum: int) -> int | Reply:
    limit = int_param(params, "limit")
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        return _v5_error(10001, "params error: limit is invalid")
    return limit


def _instruments(rec: Recording, params: Params) -> Reply:
    category = params.get("category")
    if category not in ("linear", "inverse"):
        raise Unrecorded(f"instruments of category {category!r} (recorded: linear, inverse)")
    wanted = "InversePerpetual" if category == "inverse" else "LinearPerpetual"
    found = [i for i in rec.static["instruments"] if i["contractType"] == wanted]
    if "status" in params:
        found = [i for i in found if i["status"] == params["status"]]
    if "symbol" in params:
        found = [i for i in found if i["symbol"] == params["symbol"]]
    return _v5(rec, {"category": category, "list": found, "nextPageCursor": ""})


def _kline(rec: Recording, params: Params) -> Reply:
    bar = INTERVALS.get(params.get("interval", ""))
    if params.get("category") != "linear" or bar is None:
        raise Unrecorded("only linear 5-minute klines are recorded")
    rows = series(rec, f"kline:{params.get('symbol')}:{bar}")
    limit = _limit(params, 200, 1000)
    if isinstance(limit, Reply):
        return limit
    found = _newest(rows, stamp_at(0), int_param(params, "start"), int_param(params, "end"), limit)
    return _v5(rec, {"category": "linear", "symbol": params["symbol"], "list": found})


def _open_interest(rec: Recording, params: Params) -> Reply:
    bar = OI_INTERVALS.get(params.get("intervalTime", ""))
    if params.get("category") != "linear" or bar is None:
        raise Unrecorded("only linear 5min open interest is recorded")
    rows = series(rec, f"openInterest:{params.get('symbol')}:{bar}")
    limit = _limit(params, 50, 200)
    if isinstance(limit, Reply):
        return limit
    time = stamp_of("timestamp")
    end = int_param(params, "endTime")
    cursor = params.get("cursor")
    if cursor:  # our cursor: the oldest timestamp already returned
        end = int(cursor) - 1
    found = _newest(rows, time, int_param(params, "startTime"), end, limit)
    lo, _ = window(rows, int_param(params, "startTime"), end, time)
    # more pages when the oldest row returned is not the first of the range
    more = bool(found) and bisect.bisect_left(rows, time(found[-1]), key=time) > lo
    return _v5(
        rec,
        {
            "symbol": params["symbol"],
            "category": "linear",
            "list": found,
            "nextPageCursor": found[-1]["timestamp"] if more else "",
        },
    )


def _funding(rec: Recording, params: Params) -> Reply:
    if params.get("category") != "linear":
        raise Unrecorded("only linear funding history is recorded")
    rows = series(rec, f"funding:{params.get('symbol')}")
    limit = _limit(params, 200, 200)
    if isinstance(limit, Reply):
        return limit
    found = _newest(
        rows,
        stamp_of("fundingRateTimestamp"),
        int_param(params, "startTime"),
        int_param(params, "endTime"),
        limit,
    )
    return _v5(rec, {"category": "linear", "list": found})


def _risk_limit(rec: Recording, params: Params) -> Reply:
    symbol = params.get("symbol", "")
    tiers = rec.static["riskLimits"].get(symbol)
    if tiers is None:
        raise Unrecorded(f"no recorded risk limits for {symbol!r}")
    return _v5(rec, {"category": params.get("category"), "list": tiers})


ROUTES: Routes = {
    ("GET", "/v5/market/instruments-info"): _instruments,
    ("GET", "/v5/market/kline"): _kline,
    ("GET", "/v5/market/open-interest"): _open_interest,
    ("GET", "/v5/market/funding/history"): _funding,
    ("GET", "/v5/market/risk-limit"): _risk_limit,
}
