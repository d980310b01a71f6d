"""Hyperliquid recordings: its ``POST /info`` request types, answered from real payloads.

Hyperliquid has one public endpoint, ``POST /info`` with a JSON body whose ``type`` names the
request; the transport flattens the body into parameters (``req.coin`` for ``{"req": {"coin"}}``)
and this module dispatches on ``type``. What is recorded, all real, all Hyperliquid's own:

* ``metaAndAssetCtxs`` (markets): the first two entries of the perpetuals universe (BTC index 0,
  ETH index 1) from ccxt's recorded fixture (``data/hyperliquid_ccxt_static.json`` names the
  commit). The asset contexts (mark price, funding, **open interest**) were recorded at no known
  instant, so none is served: the context list is empty, and the adapter reports open interest
  unavailable rather than stamp an old value with the replay's clock;
* ``candleSnapshot``: two BTC 1m candles of 2024-03-16 from the same fixture (no window reaches
  them; they exercise ccxt's candle parsing). **No candles in any replay window**;
* ``fundingHistory``: not recorded;
* ``clearinghouseState`` (an account's positions, with the exchange-computed ``liquidationPx``)
  and ``userFills``/``userFillsByTime`` (its fills, liquidation fills carrying a
  ``liquidation`` object): the payloads of ``ccxt_fixtures/hyperliquid_response_extract.json``.
  Both are of one account, ``RECORDED_ACCOUNT`` (derived: the extract's state has no address;
  its fills name that address as ``liquidatedUser`` of the account's own liquidations, and the
  fills continue the state's position: 0.13 flx:CRCL long, +0.14 opened, 0.27 liquidated).
  The state is of the ``flx`` HIP-3 dex, as ccxt's fixture requested it (``dex: flx``);
* the top-trader liquidation levels of ``hyperliquid/top_trader_liq_levels_dev.jsonl`` (34
  binned snapshots) ride along in ``static["topTraderLevels"]`` for the known-positions job;
  they are a third-party product of ``clearinghouseState`` reads, not a wire payload.

The stats leaderboard (``GET stats-data…/Mainnet/leaderboard``) is routed but not recorded.
Anything unrecorded raises the replay's "no recording" error, never an invented answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobs.replay.recording import Recording
from jobs.replay.source import SharedData
from jobs.replay.windows import DEFAULT_WINDOW, windows_metadata
from jobs.replay.wire import Params, Reply, Routes, Unrecorded, int_param, ok, stamp_of, window

EXCHANGE_ID = "hyperliquid"
CCXT_STATIC = Path(__file__).resolve().parent / "data" / "hyperliquid_ccxt_static.json"
RECORDED_ACCOUNT = "0x193bd350ec838b1e22d6f302da5343b920aa1c2b"
CANDLE_LIMIT = 5000  # candleSnapshot answers at most 5000 bars
FILLS_LIMIT = 2000  # userFills / userFillsByTime answer at most 2000 fills


def _account_key(user: str, dex: str | None) -> str:
    return f"{user.lower()}|{dex or ''}"


def build(data: SharedData) -> Recording:
    with CCXT_STATIC.open() as handle:
        static_payloads = json.load(handle)
    fixture = data.hyperliquid_fixture or {}
    states: dict[str, Any] = {}
    fills: dict[str, list[Any]] = {}
    if fixture:
        state = fixture["fetchPositions_isolated_with_liquidationPx"]["httpResponse"]
        states[_account_key(RECORDED_ACCOUNT, "flx")] = state
        fills[RECORDED_ACCOUNT] = sorted(
            fixture["fetchMyTrades_liquidation_fills"], key=lambda f: int(f["time"])
        )
    windows = windows_metadata(data, EXCHANGE_ID)
    return Recording(
        exchange_id=EXCHANGE_ID,
        now_ms=windows[DEFAULT_WINDOW]["now_ms"],
        metadata={
            "windows": windows,
            "datasets": {},  # no candle, open-interest, funding or tier series in any window
            "missing": {
                "candles": "the shared data has no Hyperliquid candles (two 2024 BTC 1m candles "
                "from ccxt's fixture exercise the parser only)",
                "open_interest": "Hyperliquid serves open interest only as a current value "
                "(metaAndAssetCtxs); none was recorded at a known instant",
                "funding": "the shared data has no Hyperliquid funding history",
                "tiers": "ccxt reads no Hyperliquid margin tables",
            },
            "recorded_accounts": [RECORDED_ACCOUNT],
            "values": "real Hyperliquid payloads: ccxt's recorded fixtures and "
            "../shared/data/hyperliquid",
            "sources": {
                "metaAndAssetCtxs universe, candleSnapshot": str(static_payloads["_source"]),
                "clearinghouseState, userFills": "ccxt_fixtures/hyperliquid_response_extract.json",
                "topTraderLevels": "hyperliquid/top_trader_liq_levels_dev.jsonl "
                "(kittycapital/liquidation-heatmap data.json history)",
            },
            "derived": {
                "metaAndAssetCtxs contexts": "[]: no context was recorded at a known instant",
                "recorded account": "the state's address is not in the extract; its fills name "
                f"{RECORDED_ACCOUNT} as liquidatedUser of the account's own liquidations",
            },
        },
        static={
            "meta": {"universe": static_payloads["universe"]},
            "clearinghouseState": states,
            "userFills": fills,
            "topTraderLevels": list(data.hyperliquid_levels),
        },
        series={f"candles:{key}": rows for key, rows in static_payloads["candleSnapshot"].items()},
        ws_messages=[],
    )


# --- how /info answers -------------------------------------------------------------------
def _meta_and_asset_ctxs(rec: Recording, params: Params) -> Reply:
    if params.get("dex"):
        raise Unrecorded(f"no recorded metaAndAssetCtxs of dex {params['dex']!r}")
    return ok([rec.static["meta"], []])


def _candle_snapshot(rec: Recording, params: Params) -> Reply:
    key = f"candles:{params.get('req.coin')}:{params.get('req.interval')}"
    rows = rec.series.get(key)
    if rows is None:
        raise Unrecorded(f"no recorded candles {key!r} (recorded: {', '.join(rec.series)})")
    lo, hi = window(
        rows, int_param(params, "req.startTime"), int_param(params, "req.endTime"), stamp_of("t")
    )
    return ok(rows[lo : min(hi, lo + CANDLE_LIMIT)])


def _clearinghouse_state(rec: Recording, params: Params) -> Reply:
    user = params.get("user", "")
    state = rec.static["clearinghouseState"].get(_account_key(user, params.get("dex")))
    if state is None:
        recorded = ", ".join(rec.static["clearinghouseState"]) or "none"
        raise Unrecorded(f"no recorded clearinghouseState of {user} (recorded: {recorded})")
    return ok(state)


def _user_fills(rec: Recording, params: Params) -> Reply:
    user = params.get("user", "").lower()
    fills = rec.static["userFills"].get(user)
    if fills is None:
        raise Unrecorded(f"no recorded fills of {user}")
    start = int_param(params, "startTime") if params.get("type") == "userFillsByTime" else None
    lo, hi = window(fills, start, int_param(params, "endTime"), stamp_of("time"))
    # newest first when not asked by time, as userFills answers; by time: oldest first
    found = fills[lo:hi]
    if start is None:
        return ok(list(reversed(found))[:FILLS_LIMIT])
    return ok(found[:FILLS_LIMIT])


def _unrecorded(what: str) -> Any:
    def handler(rec: Recording, params: Params) -> Reply:
        raise Unrecorded(what)

    return handler


_INFO_TYPES = {
    "metaAndAssetCtxs": _meta_and_asset_ctxs,
    "candleSnapshot": _candle_snapshot,
    "fundingHistory": _unrecorded("no Hyperliquid funding history is recorded"),
    "clearinghouseState": _clearinghouse_state,
    "userFills": _user_fills,
    "userFillsByTime": _user_fills,
}


def _info(rec: Recording, params: Params) -> Reply:
    kind = params.get("type", "")
    handler = _INFO_TYPES.get(kind)
    if handler is None:
        raise Unrecorded(f"info type {kind!r} (recorded: {', '.join(_INFO_TYPES)})")
    return handler(rec, params)


ROUTES: Routes = {
    ("POST", "/info"): _info,
    ("GET", "/Mainnet/leaderboard"): _unrecorded("no Hyperliquid leaderboard is recorded"),
}
