"""Renamed fields and arguments: the new names answer, the old ones still answer the same.

The names agree across types (an instant is ``at``, a bar is named by its ``start``, the map
field is ``liquidationMap`` after the type it returns, every summable selection is
``exchanges``); the old names stay, deprecated with a reason (tests/api/test_schema.py), and
answer exactly what the new ones do. Values are compared with the stored rows (plain SQL).
"""

from __future__ import annotations

from datetime import datetime

from tests.api.conftest import GraphQLClient
from tests.api.pipeline import BAR, SYMBOL, Stored

RANGE = {"s": "2026-06-20T00:00:00Z", "e": "2026-06-20T06:00:00Z"}  # Bybit is stored from 06-18
SERIES = {"s": "2026-05-27T00:00:00Z", "e": "2026-05-27T06:00:00Z"}  # realized data ends 05-28


async def test_liquidation_map_is_liquidation_levels_renamed(
    gql: GraphQLClient, stored: Stored
) -> None:
    fields = "symbol exchanges at price bucketSize totalLongUsd totalShortUsd levels { longUsd }"
    data = await gql.data(
        f"""{{ new: liquidationMap(symbol: "{SYMBOL}", exchanges: ["binanceusdm"]) {{ {fields} }}
              old: liquidationLevels(symbol: "{SYMBOL}", exchanges: ["binanceusdm"]) {{ {fields} }}
           }}"""
    )
    assert data["new"] == data["old"]
    assert datetime.fromisoformat(data["new"]["at"]) == stored.latest("binanceusdm").at


async def test_snapshots_take_exchanges_and_still_the_deprecated_exchange(
    gql: GraphQLClient, stored: Stored
) -> None:
    query = """
    query ($s: DateTime!, $e: DateTime!, $x: [String!], $one: String) {
      snapshots(symbol: "BTC/USDT:USDT", start: $s, end: $e, exchanges: $x, exchange: $one) {
        edges { node { at exchanges totalLongUsd } }
      }
    }"""
    new = (await gql.data(query, x=["binanceusdm"], **RANGE))["snapshots"]["edges"]
    old = (await gql.data(query, one="binanceusdm", **RANGE))["snapshots"]["edges"]
    assert new == old and len(new) == 6
    day_20 = [s.at for s in stored.snapshots("binanceusdm", "1h") if s.at.day == 20]
    expected = [at.isoformat() for at in day_20[:6]]
    assert [e["node"]["at"] for e in new] == expected
    # several exchanges are summed, as everywhere else: over the venues with maps (Bybit has no
    # recorded open interest, so it adds nothing and is not named)
    both = (await gql.data(query, x=["binanceusdm", "bybit"], **RANGE))["snapshots"]["edges"]
    assert both[0]["node"]["exchanges"] == ["binanceusdm"]
    assert [e["node"]["totalLongUsd"] for e in both] == [e["node"]["totalLongUsd"] for e in new]
    body = await gql(query, x=["bybit"], one="bybit", **RANGE)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "not both" in body["errors"][0]["message"]


async def test_series_rows_name_bars_by_start_and_instants_by_at(
    gql: GraphQLClient, stored: Stored
) -> None:
    data = await gql.data(
        """query ($s: DateTime!, $e: DateTime!) {
          candles(symbol: "BTC/USDT:USDT", exchange: "binanceusdm", start: $s, end: $e) {
            start ts }
          openInterest(symbol: "BTC/USDT:USDT", exchange: "binanceusdm", start: $s, end: $e) {
            start ts }
          fundingRates(symbol: "BTC/USDT:USDT", exchange: "binanceusdm", start: $s, end: $e) {
            at ts }
          realizedLiquidations(symbol: "BTC/USDT:USDT", start: $s, end: $e) { start ts }
          sweptLevels(symbol: "BTC/USDT:USDT", start: $s, end: $e) { start ts }
          markets(exchange: "binanceusdm") { coverage { firstAt firstTs lastAt lastTs } }
        }""",
        **SERIES,
    )
    for field, name in (
        ("candles", "start"),
        ("openInterest", "start"),
        ("fundingRates", "at"),
        ("realizedLiquidations", "start"),
        ("sweptLevels", "start"),
    ):
        rows = data[field]
        assert rows and all(r[name] == r["ts"] for r in rows), field
    market = stored.market_id("binanceusdm")
    candle_starts = [
        ts.isoformat()
        for (ts,) in stored.rows(
            "SELECT ts FROM candles WHERE market_id = %s AND ts >= %s AND ts < %s ORDER BY ts",
            (market, SERIES["s"], SERIES["e"]),
        )
    ]
    assert [r["start"] for r in data["candles"]] == candle_starts
    assert len(candle_starts) == 6 * 3600 // BAR.seconds
    for coverage in (c for m in data["markets"] for c in m["coverage"]):
        assert (
            coverage["firstAt"] == coverage["firstTs"] and coverage["lastAt"] == coverage["lastTs"]
        )
