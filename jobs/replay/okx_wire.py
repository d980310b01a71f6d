"""OKX v5 recordings carrying the real Binance values, and how v5 answers them.

The shared data has no OKX market data, so these payloads use OKX's documented v5 wire format
but carry the **real Binance BTCUSDT values** of ``../shared/data`` (the metadata says so), to
run ccxt's OKX request building and parsing on real numbers:

* ``public/instruments?instType=SWAP``: the recorded 2022-05-13 response (BTC-USD-SWAP,
  BTC-USDT-SWAP, ETH-USDT-SWAP) with ``instFamily`` = ``uly`` added (OKX's later name for the
  same field; ccxt needs it for position tiers);
* ``market/candles`` and ``market/history-candles`` rows ``[ts, o, h, l, c, vol, volCcy,
  volCcyQuote, confirm]``, newest first; volumes ``null`` (not in the source); ``confirm`` "0"
  for the last, still open bar;
* ``rubik/stat/contracts/open-interest-history`` rows ``[ts, oi, oiCcy, oiUsd]``: ``oiUsd`` is
  Binance's USD value, ``oiCcy`` = USD / the close of the bar
  ending at ``ts``, ``oi`` (contracts) = ``oiCcy`` / ctVal;
* ``public/funding-rate-history``: the Binance settlements as both ``fundingRate`` and
  ``realizedRate`` (a settled rate is what was realized);
* ``public/position-tiers``: Binance's 2024-10-24 brackets with notional bounds converted to
  contracts at the last closed bar's close (``sz = notional / (ctVal × close)``), ``imr`` =
  1 / initial leverage;
* ``liquidation-orders`` frames: the Binance forceOrder captures of listed instruments, ``sz`` in
  contracts (Binance quantity / ctVal), ``side`` the order side, ``posSide`` the liquidated side.

Range queries follow v5: ``after``/``before`` (candles, funding) and ``begin``/``end`` (rubik)
are exclusive bounds, rows come newest first, at most ``limit`` of them (history candles and
rubik ≤ 100, candles ≤ 300, funding ≤ 400), the newest that match.
"""

from __future__ import annotations

from typing import Any

from jobs.replay.recording import Recording
from jobs.replay.source import (
    SharedData,
    funding_events,
    open_interest_base,
    tiers_valid_from_date,
)
from jobs.replay.wire import Params, Reply, Routes, Unrecorded, int_param, ok, series, window

EXCHANGE_ID = "okx"
RECORDED_INSTRUMENT = "BTC-USDT-SWAP"  # carries the Binance BTCUSDT series


def _v5(payload: list[Any]) -> Reply:
    return ok({"code": "0", "msg": "", "data": payload})


def _binance_id(inst_id: str) -> str:
    base, quote, _ = inst_id.split("-")
    return base + quote


def build(data: SharedData) -> Recording:
    recorded = data.instrument_specs["okx_v5_instruments_swap"]["responses"][0]["data"]
    instruments = [{**i, "instFamily": i["uly"]} for i in recorded]
    by_id = {i["instId"]: i for i in instruments}
    ct_val = float(by_id[RECORDED_INSTRUMENT]["ctVal"])
    last_open = data.bars[-1].timestamp
    candles = [
        [
            str(b.timestamp),
            b.open,
            b.high,
            b.low,
            b.close,
            None,
            None,
            None,
            "0" if b.timestamp == last_open else "1",
        ]
        for b in data.bars
    ]
    open_interest = []
    for i, b in enumerate(data.bars):
        base = open_interest_base(data.bars, i)
        open_interest.append(
            [str(b.timestamp), repr(float(base) / ct_val), base, b.open_interest_usd]
        )
    funding = [
        {
            "instType": "SWAP",
            "instId": RECORDED_INSTRUMENT,
            "fundingRate": e.rate,
            "realizedRate": e.rate,
            "fundingTime": str(e.funding_time),
        }
        for e in funding_events(data.bars)
    ]
    reference_close = float(data.bars[-2].close)  # the last closed bar
    tiers: dict[str, list[dict[str, Any]]] = {}
    for unified, table in data.tiers_latest["tiers"].items():
        inst_id = unified.split(":")[0].replace("/", "-") + "-SWAP"
        if inst_id not in by_id:
            continue
        contract = float(by_id[inst_id]["ctVal"]) * reference_close
        tiers[by_id[inst_id]["instFamily"]] = [
            {
                "uly": by_id[inst_id]["uly"],
                "instFamily": by_id[inst_id]["instFamily"],
                "instId": "",
                "tier": t["info"]["bracket"],
                "minSz": repr(float(t["info"]["notionalFloor"]) / contract),
                "maxSz": repr(float(t["info"]["notionalCap"]) / contract),
                "mmr": t["info"]["maintMarginRatio"],
                "imr": repr(1 / float(t["info"]["initialLeverage"])),
                "maxLever": t["info"]["initialLeverage"],
            }
            for t in table
        ]
    inst_by_binance = {
        _binance_id(i["instId"]): i for i in instruments if i["ctValCcy"] != "USD"
    }  # linear swaps only: Binance USDⓈ-M quantities are in base coin
    frames = []
    for o in data.force_orders:
        inst = inst_by_binance.get(o.symbol)
        if inst is None:
            continue
        detail = {
            "bkLoss": "0",
            "bkPx": o.price,
            "ccy": "",
            "posSide": "long" if o.side == "SELL" else "short",
            "side": o.side.lower(),
            "sz": repr(float(o.filled_accum_qty) / float(inst["ctVal"])),
            "ts": str(o.trade_time),
        }
        frames.append(
            {
                "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
                "data": [
                    {
                        "details": [detail],
                        "instFamily": inst["instFamily"],
                        "instId": inst["instId"],
                        "instType": "SWAP",
                        "uly": inst["uly"],
                    }
                ],
            }
        )
    return Recording(
        exchange_id=EXCHANGE_ID,
        now_ms=data.now_ms,
        metadata={
            "recorded_markets": ["BTC/USDT:USDT"],
            "values_of": "binanceusdm",  # whose market these numbers are
            "values": "REAL BINANCE USDⓈ-M VALUES in OKX v5 wire format (no OKX market data "
            "is shared); for exercising ccxt's OKX parsing, not OKX's market",
            "sources": {
                "candles/open-interest/funding": "binance/BTCUSDT_perp_5m_klines_oi_funding.csv",
                "instruments": "exchange_specs/perp_instrument_specs_BTC_ETH.json "
                "okx_v5_instruments_swap (2022-05-13)",
                "position-tiers": "exchange_specs/binance_leverage_tiers_BTC_ETH_latest.json "
                f"({tiers_valid_from_date(data.tiers_latest)})",
                "liquidation-orders": "forceorder/binance_usdm_forceorder_captures_normalized.csv",
            },
            "derived": {
                "instFamily": "= uly",
                "candle vol/volCcy/volCcyQuote": "null: not in the source",
                "candle confirm": "0 for the last (open) bar, else 1",
                "oiCcy": "Binance USD value / close of the bar ending at the snapshot",
                "oi": "oiCcy / ctVal (contracts)",
                "realizedRate": "= fundingRate (the settled Binance rate)",
                "position-tiers minSz/maxSz": "Binance notional / (ctVal x close of the last "
                f"closed bar = {reference_close})",
                "imr": "1 / initialLeverage",
                "liquidation sz": "Binance accumulated filled quantity / ctVal",
            },
            "tier_reference_close": reference_close,
        },
        static={"instruments": instruments, "positionTiers": tiers},
        series={
            f"candles:{RECORDED_INSTRUMENT}:5m": candles,
            f"openInterest:{RECORDED_INSTRUMENT}:5m": open_interest,
            f"funding:{RECORDED_INSTRUMENT}": funding,
        },
        ws_messages=frames,
    )


def _exclusive(
    times: list[int], rows: list[Any], older_than: int | None, newer_than: int | None, limit: int
) -> list[Any]:
    start = None if newer_than is None else newer_than + 1
    end = None if older_than is None else older_than - 1
    lo, hi = window(times, start, end)
    return list(reversed(rows[max(lo, hi - limit) : hi]))  # newest first


def _limit(params: Params, default: int, maximum: int) -> int:
    limit = int_param(params, "limit")
    return default if limit is None else max(1, min(limit, maximum))


def _instruments(rec: Recording, params: Params) -> Reply:
    if params.get("instType") != "SWAP":
        raise Unrecorded(f"instruments of type {params.get('instType')!r} (recorded: SWAP)")
    found = rec.static["instruments"]
    if "instId" in params:
        found = [i for i in found if i["instId"] == params["instId"]]
    return _v5(found)


def _candles(maximum: int) -> Any:
    def handler(rec: Recording, params: Params) -> Reply:
        if params.get("bar") != "5m":
            raise Unrecorded("only 5m candles are recorded")
        rows = series(rec, f"candles:{params.get('instId')}:5m")
        times = [int(r[0]) for r in rows]
        return _v5(
            _exclusive(
                times,
                rows,
                int_param(params, "after"),
                int_param(params, "before"),
                _limit(params, 100, maximum),
            )
        )

    return handler


def _open_interest(rec: Recording, params: Params) -> Reply:
    if params.get("period") != "5m":
        raise Unrecorded("only 5m open interest is recorded")
    rows = series(rec, f"openInterest:{params.get('instId')}:5m")
    times = [int(r[0]) for r in rows]
    return _v5(
        _exclusive(
            times,
            rows,
            int_param(params, "end"),
            int_param(params, "begin"),
            _limit(params, 100, 100),
        )
    )


def _funding(rec: Recording, params: Params) -> Reply:
    rows = series(rec, f"funding:{params.get('instId')}")
    times = [int(r["fundingTime"]) for r in rows]
    return _v5(
        _exclusive(
            times,
            rows,
            int_param(params, "after"),
            int_param(params, "before"),
            _limit(params, 400, 400),
        )
    )


def _position_tiers(rec: Recording, params: Params) -> Reply:
    if params.get("instType") != "SWAP":
        raise Unrecorded(f"position tiers of type {params.get('instType')!r}")
    family = params.get("instFamily") or params.get("uly") or ""
    tiers = rec.static["positionTiers"].get(family)
    if tiers is None:
        raise Unrecorded(f"no recorded position tiers for {family!r}")
    return _v5(tiers)


ROUTES: Routes = {
    ("GET", "/api/v5/public/instruments"): _instruments,
    ("GET", "/api/v5/market/candles"): _candles(300),
    ("GET", "/api/v5/market/history-candles"): _candles(100),
    ("GET", "/api/v5/rubik/stat/contracts/open-interest-history"): _open_interest,
    ("GET", "/api/v5/public/funding-rate-history"): _funding,
    ("GET", "/api/v5/public/position-tiers"): _position_tiers,
}
