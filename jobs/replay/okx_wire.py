"""OKX v5 recordings of OKX's own data, and how v5 answers them.

Every value is OKX's, from ``../shared/data``:

* ``public/instruments?instType=SWAP``: the recorded 2022-05-13 response (BTC-USD-SWAP,
  BTC-USDT-SWAP, ETH-USDT-SWAP) with ``instFamily`` = ``uly`` added (OKX's later name for the
  same field; ccxt reads it);
* ``market/candles`` and ``market/history-candles`` rows ``[ts, o, h, l, c, vol, volCcy,
  volCcyQuote, confirm]`` of BTC-USDT-SWAP, newest first: ``bar=1m`` serves the recorded 1-minute
  bars (``okx/BTC-USDT-SWAP_perp_1m_klines_funding.csv``, 2026-01-01 → 2026-01-16 07:57);
  ``bar=5m`` serves 5-minute bars **derived** from them (see ``source.aggregate_bars``: only
  where all five minutes are recorded), as OKX serves 5m natively. ``volCcy`` (coin) is the
  file's volume, ``vol`` (contracts) = volCcy / ctVal, ``volCcyQuote`` ``null`` (not recorded);
  ``confirm`` is "1" for a bar closed by the replay clock, else "0";
* ``public/funding-rate-history``: the recorded 8-hourly settlements as both ``fundingRate`` and
  ``realizedRate`` (a settled rate is what was realized).

Not recorded, so never answered with anyone else's numbers: open-interest history (none in the
shared data), position tiers, and the ``liquidation-orders`` stream: such requests get the
replay's "no recording" error and the adapter reports those datasets unavailable.

Range queries follow v5: ``after``/``before`` (candles, funding) and ``begin``/``end`` (rubik)
are exclusive bounds, rows come newest first, at most ``limit`` of them (history candles and
rubik ≤ 100, candles ≤ 300, funding ≤ 400), the newest that match.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from jobs.replay.recording import Recording
from jobs.replay.source import SharedData
from jobs.replay.windows import DEFAULT_WINDOW, windows_metadata
from jobs.replay.wire import (
    Params,
    Reply,
    Routes,
    Unrecorded,
    answering_at,
    int_param,
    ok,
    series,
    stamp_at,
    stamp_of,
    window,
)

EXCHANGE_ID = "okx"
BARS = {"1m": 60_000, "5m": 300_000}


def _v5(payload: list[Any]) -> Reply:
    return ok({"code": "0", "msg": "", "data": payload})


def build(data: SharedData) -> Recording:
    recorded = data.instrument_specs["okx_v5_instruments_swap"]["responses"][0]["data"]
    instruments = [{**i, "instFamily": i["uly"]} for i in recorded]
    by_id = {i["instId"]: i for i in instruments}
    series_rows: dict[str, list[Any]] = {}
    datasets: dict[str, list[str]] = {}
    sources: dict[str, str] = {
        "instruments": "exchange_specs/perp_instrument_specs_BTC_ETH.json "
        "okx_v5_instruments_swap (2022-05-13)",
    }
    derived: dict[str, str] = {
        "instFamily": "= uly",
        "candle vol": "volCcy / ctVal (contracts)",
        "candle volCcyQuote": "null: not in the source",
        "candle confirm": "1 when the bar is closed by the replay clock, else 0",
        "realizedRate": "= fundingRate (a settled rate)",
    }
    for market in data.of(EXCHANGE_ID):
        inst = market.market_id
        ct_val = Decimal(by_id[inst]["ctVal"])
        bar = f"{market.bar_ms // 60_000}m"
        series_rows[f"candles:{inst}:{bar}"] = [
            [
                str(b.timestamp),
                b.open,
                b.high,
                b.low,
                b.close,
                None if b.volume is None else str(Decimal(b.volume) / ct_val),
                b.volume,
                None,
                "1",
            ]
            for b in market.bars
        ]
        series_rows[f"funding:{inst}"] = [
            {
                "instType": "SWAP",
                "instId": inst,
                "fundingRate": e.rate,
                "realizedRate": e.rate,
                "fundingTime": str(e.funding_time),
            }
            for e in market.funding
        ]
        datasets[market.symbol] = ["candles", "funding"]
        sources.update({f"{inst} {k}": v for k, v in market.sources.items()})
        derived.update({f"{inst} {k}": v for k, v in market.derived.items()})
    windows = windows_metadata(data, EXCHANGE_ID)
    return Recording(
        exchange_id=EXCHANGE_ID,
        now_ms=windows[DEFAULT_WINDOW]["now_ms"],
        metadata={
            "windows": windows,
            "datasets": datasets,
            "missing": {
                "open_interest": "the shared data has no OKX open interest in any window "
                "(README: 'Still missing')",
                "tiers": "no OKX position-tier table is in the shared data",
                "liquidations": "no OKX liquidation-orders frames are in the shared data",
            },
            "values": "real OKX data from ../shared/data/okx",
            "sources": sources,
            "derived": derived,
        },
        static={"instruments": instruments, "positionTiers": {}},
        series=series_rows,
        ws_messages=[],
    )


def _exclusive(
    rows: list[Any],
    time: Callable[[Any], int],
    older_than: int | None,
    newer_than: int | None,
    limit: int,
) -> list[Any]:
    start = None if newer_than is None else newer_than + 1
    end = None if older_than is None else older_than - 1
    lo, hi = window(rows, start, end, time)
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
        bar = params.get("bar", "1m")  # OKX's default bar is 1m
        if bar not in BARS:
            raise Unrecorded(f"only {', '.join(BARS)} candles are recorded")
        rows = series(rec, f"candles:{params.get('instId')}:{bar}")
        found = _exclusive(
            rows,
            stamp_at(0),
            int_param(params, "after"),
            int_param(params, "before"),
            _limit(params, 100, maximum),
        )
        now = answering_at.get()
        if now is None:
            now = rec.now_ms
        return _v5([[*r[:8], "1" if int(r[0]) + BARS[bar] <= now + 1 else "0"] for r in found])

    return handler


def _open_interest(rec: Recording, params: Params) -> Reply:
    if params.get("period") != "5m":
        raise Unrecorded("only 5m open interest is recorded")
    rows = series(rec, f"openInterest:{params.get('instId')}:5m")
    return _v5(
        _exclusive(
            rows,
            stamp_at(0),
            int_param(params, "end"),
            int_param(params, "begin"),
            _limit(params, 100, 100),
        )
    )


def _funding(rec: Recording, params: Params) -> Reply:
    rows = series(rec, f"funding:{params.get('instId')}")
    return _v5(
        _exclusive(
            rows,
            stamp_of("fundingTime"),
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
