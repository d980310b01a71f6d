"""Bybit v5 recordings carrying the real Binance values, and how v5 answers them.

The shared data has no Bybit market data, so these payloads are written in Bybit's documented v5
wire format but carry the **real Binance BTCUSDT values** of ``../shared/data`` (the metadata
says so). Their purpose is to run ccxt's Bybit request building and parsing on real numbers:

* ``instruments-info``: the recorded Bybit v2 ``/v2/public/symbols`` entries (2021-04-17: BTCUSD,
  BTCUSDT, ETHUSDT) mapped field by field to v5 names (contract type and settle coin from the
  quote: USD → inverse, settled in the base coin);
* ``kline`` rows ``[start, open, high, low, close, volume, turnover]``, newest first, volume and
  turnover ``null`` (not in the source);
* ``open-interest``: linear OI is in base coin: the Binance USD value / the price at the
  snapshot (the close of the bar ending at its timestamp);
* ``funding/history``: the Binance settlements (see ``source.funding_events``);
* ``risk-limit``: Binance's 2024-10-24 brackets as risk limits (``riskLimitValue`` = notional
  cap, ``maintenanceMargin`` = maintMarginRatio, ``mmDeduction`` = cum, ``maxLeverage`` and
  ``initialMargin`` = 1 / initial leverage);
* ``allLiquidation`` frames: the Binance forceOrder captures of markets listed here; Bybit's
  ``S`` is the *position* side ("Buy" = a long was liquidated), so a Binance SELL order → "Buy".

Range queries: ``start``/``end`` (kline) and ``startTime``/``endTime`` are inclusive; when more
rows match than ``limit`` the newest are returned (pages run backwards from ``end``);
``open-interest`` also pages with ``cursor``.
"""

from __future__ import annotations

import json
from typing import Any

from jobs.replay.recording import Recording
from jobs.replay.source import (
    RECORDED_SYMBOL,
    SharedData,
    funding_events,
    open_interest_base,
    tiers_valid_from_date,
)
from jobs.replay.wire import Params, Reply, Routes, Unrecorded, int_param, ok, series, window

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
    symbol = RECORDED_SYMBOL
    instruments = [_instrument(v2) for v2 in data.instrument_specs["bybit_v2_symbols"]["result"]]
    klines = [[str(b.timestamp), b.open, b.high, b.low, b.close, None, None] for b in data.bars]
    open_interest = [
        {"openInterest": open_interest_base(data.bars, i), "timestamp": str(b.timestamp)}
        for i, b in enumerate(data.bars)
    ]
    funding = [
        {"symbol": symbol, "fundingRate": e.rate, "fundingRateTimestamp": str(e.funding_time)}
        for e in funding_events(data.bars)
    ]
    risk_limits: dict[str, list[dict[str, Any]]] = {}
    for unified, tiers in data.tiers_latest["tiers"].items():
        market_id = unified.split(":")[0].replace("/", "")
        risk_limits[market_id] = [
            {
                "id": int(t["info"]["bracket"]),
                "symbol": market_id,
                "riskLimitValue": t["info"]["notionalCap"],
                "maintenanceMargin": t["info"]["maintMarginRatio"],
                "initialMargin": repr(1 / float(t["info"]["initialLeverage"])),
                "isLowestRisk": 1 if t["info"]["bracket"] == "1" else 0,
                "maxLeverage": t["info"]["initialLeverage"],
                "mmDeduction": t["info"]["cum"],
            }
            for t in tiers
        ]
    listed = {i["symbol"] for i in instruments}
    frames = [
        {
            "topic": f"allLiquidation.{o.symbol}",
            "type": "snapshot",
            "ts": o.trade_time,
            "data": [
                {
                    "T": o.trade_time,
                    "s": o.symbol,
                    "S": "Buy" if o.side == "SELL" else "Sell",  # position side
                    "v": o.filled_accum_qty,
                    "p": o.price,
                }
            ],
        }
        for o in data.force_orders
        if o.symbol in listed
    ]
    return Recording(
        exchange_id=EXCHANGE_ID,
        now_ms=data.now_ms,
        metadata={
            "recorded_markets": ["BTC/USDT:USDT"],
            "values_of": "binanceusdm",  # whose market these numbers are
            "values": "REAL BINANCE USDⓈ-M VALUES in Bybit v5 wire format (no Bybit market "
            "data is shared); for exercising ccxt's Bybit parsing, not Bybit's market",
            "sources": {
                "kline/open-interest/funding": "binance/BTCUSDT_perp_5m_klines_oi_funding.csv",
                "instruments-info": "exchange_specs/perp_instrument_specs_BTC_ETH.json "
                "bybit_v2_symbols (2021-04-17) mapped to v5 field names",
                "risk-limit": "exchange_specs/binance_leverage_tiers_BTC_ETH_latest.json "
                f"({tiers_valid_from_date(data.tiers_latest)}) as v5 risk limits",
                "allLiquidation": "forceorder/binance_usdm_forceorder_captures_normalized.csv",
            },
            "derived": {
                "kline volume/turnover": "null: not in the source",
                "openInterest": "Binance sumOpenInterestValue / close of the bar ending at the "
                "snapshot (base coin)",
                "initialMargin": "1 / initialLeverage",
                "allLiquidation S": "position side: Binance SELL order -> Buy",
                "allLiquidation v": "Binance accumulated filled quantity z",
                "time": "the replay clock",
            },
        },
        static={"instruments": instruments, "riskLimits": risk_limits},
        series={
            f"kline:{symbol}:5m": klines,
            f"openInterest:{symbol}:5m": open_interest,
            f"funding:{symbol}": funding,
        },
        ws_messages=frames,
    )


def _newest(
    rows: list[Any], times: list[int], start: int | None, end: int | None, limit: int
) -> list[Any]:
    lo, hi = window(times, start, end)
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
    times = [int(r[0]) for r in rows]
    found = _newest(rows, times, int_param(params, "start"), int_param(params, "end"), limit)
    return _v5(rec, {"category": "linear", "symbol": params["symbol"], "list": found})


def _open_interest(rec: Recording, params: Params) -> Reply:
    bar = OI_INTERVALS.get(params.get("intervalTime", ""))
    if params.get("category") != "linear" or bar is None:
        raise Unrecorded("only linear 5min open interest is recorded")
    rows = series(rec, f"openInterest:{params.get('symbol')}:{bar}")
    limit = _limit(params, 50, 200)
    if isinstance(limit, Reply):
        return limit
    times = [int(r["timestamp"]) for r in rows]
    end = int_param(params, "endTime")
    cursor = params.get("cursor")
    if cursor:  # our cursor: the oldest timestamp already returned
        end = int(cursor) - 1
    found = _newest(rows, times, int_param(params, "startTime"), end, limit)
    lo, _ = window(times, int_param(params, "startTime"), end)
    more = bool(found) and times.index(int(found[-1]["timestamp"])) > lo
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
    times = [int(r["fundingRateTimestamp"]) for r in rows]
    found = _newest(
        rows, times, int_param(params, "startTime"), int_param(params, "endTime"), limit
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
