"""snapshots (keyset paging), longShortSplit (+ series), and the market series queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest

from tests.api.conftest import GraphQLClient, build_app
from tests.api.pipeline import BAR, MID_WINDOW, WITHOUT_OI, Snap, Stored, read_force_orders

SNAPSHOTS = """
query ($start: DateTime!, $end: DateTime, $exchange: String, $first: Int!, $after: String) {
  snapshots(symbol: "BTC/USDT:USDT", start: $start, end: $end, exchange: $exchange,
            resolution: ONE_HOUR, first: $first, after: $after) {
    edges { cursor node { at price totalLongUsd levels { longUsd } model { version } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def test_snapshot_pages_cover_every_hour_once(gql: GraphQLClient, stored: Stored) -> None:
    # from half an hour before Binance's first hourly map: the pages start where the series does
    first = stored.snapshots("binanceusdm", "1h")[0].at
    start = first - timedelta(minutes=30)
    end = start + timedelta(hours=30)
    hourly = [s for s in stored.snapshots("binanceusdm", "1h") if start <= s.at < end]
    assert len(hourly) == 30 and hourly[0].at == first
    seen, after, pages = [], None, 0
    while True:
        data = (
            await gql.data(
                SNAPSHOTS,
                start=start.isoformat(),
                end=end.isoformat(),
                exchange="binanceusdm",
                first=7,
                after=after,
            )
        )["snapshots"]
        pages += 1
        assert data["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [e["node"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
        assert after == data["edges"][-1]["cursor"]
    assert pages == -(-len(hourly) // 7)
    assert [n["at"] for n in seen] == [s.at.isoformat() for s in hourly]
    for node, snap in zip(seen, hourly, strict=True):
        np.testing.assert_array_equal([lv["longUsd"] for lv in node["levels"]], snap.long_usd)
        assert node["model"]["version"] == snap.model_version


async def test_snapshot_paging_errors(gql: GraphQLClient, stored: Stored) -> None:
    start = MID_WINDOW.isoformat()
    body = await gql(SNAPSHOTS, start=start, first=5, after="bm90LWEtY3Vyc29y")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql(SNAPSHOTS, start=start, first=5000)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # a venue with no BTC/USDT:USDT market at all
    body = await gql(SNAPSHOTS, start=start, first=5, exchange="hyperliquid")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "binanceusdm" in body["errors"][0]["message"]
    # a tracked venue without open interest: no maps, an empty page (not an error)
    data = await gql.data(SNAPSHOTS, start=start, first=5, exchange="okx")
    assert data["snapshots"]["edges"] == [] and not data["snapshots"]["pageInfo"]["hasNextPage"]


SPLIT = """
query ($at: DateTime, $pct: Float!) {
  longShortSplit(symbol: "BTC/USDT:USDT", at: $at, withinPct: $pct) {
    at price withinPct longUsd shortUsd ratio
    perExchange { exchange longUsd shortUsd ratio }
  }
}
"""


def brute_split(snap: Snap, pct: float) -> tuple[float, float]:
    """Walk the buckets; a bucket partly inside the window counts by its covered width."""
    low, high = snap.price * (1 - pct / 100), snap.price * (1 + pct / 100)
    long_usd = short_usd = 0.0
    bucket = snap.bucket_size
    for k in range(snap.long_usd.size):
        a = snap.bucket_origin + k * bucket
        covered = max(0.0, min(a + bucket, high) - max(a, low)) / bucket
        long_usd += float(snap.long_usd[k]) * covered
        short_usd += float(snap.short_usd[k]) * covered
    return long_usd, short_usd


SPLIT_OF = """
query ($at: DateTime, $pct: Float!, $ex: [String!]) {
  longShortSplit(symbol: "BTC/USDT:USDT", exchanges: $ex, at: $at, withinPct: $pct) {
    at price longUsd shortUsd ratio perExchange { exchange longUsd shortUsd ratio }
  }
}
"""


async def test_long_short_split_per_exchange_and_total(gql: GraphQLClient, stored: Stored) -> None:
    """perExchange lists the venues with maps (Binance: the only one with open interest) and
    the total is their sum; naming the venues without maps changes nothing. The arithmetic
    over several venues is tested on hand-built vectors (tests/maps/test_levels.py)."""
    ts = MID_WINDOW + timedelta(hours=4, minutes=10)
    b = stored.snapshot("binanceusdm", "5m", ts)
    at = b.at.isoformat()
    data = (await gql.data(SPLIT, at=at, pct=3.0))["longShortSplit"]
    named = (await gql.data(SPLIT_OF, at=at, pct=3.0, ex=["binanceusdm", *WITHOUT_OI]))[
        "longShortSplit"
    ]
    long_usd, short_usd = brute_split(b, 3.0)
    for answer in (data, named):
        (per,) = answer["perExchange"]
        assert per["exchange"] == "binanceusdm"
        assert per["longUsd"] == pytest.approx(long_usd, rel=1e-9)
        assert per["shortUsd"] == pytest.approx(short_usd, rel=1e-9)
        assert per["ratio"] == pytest.approx(long_usd / short_usd)
        assert answer["longUsd"] == pytest.approx(long_usd, rel=1e-9)
        assert answer["shortUsd"] == pytest.approx(short_usd, rel=1e-9)
        assert answer["ratio"] == pytest.approx(answer["longUsd"] / answer["shortUsd"])
        assert answer["at"] == at and answer["price"] == pytest.approx(b.price)
    alone = await gql.data(SPLIT_OF, at=at, pct=3.0, ex=list(WITHOUT_OI))
    assert alone["longShortSplit"] is None  # no venue with a map: nothing to split
    body = await gql(SPLIT, pct=0.0)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


LS_SERIES = """query ($s: DateTime!, $e: DateTime!, $ex: [String!]) {
  longShortSeries(symbol: "BTC/USDT:USDT", exchanges: $ex, start: $s, end: $e, withinPct: 2) {
    at longUsd shortUsd perExchange { exchange longUsd } } }"""


async def test_long_short_series(gql: GraphQLClient, stored: Stored) -> None:
    start = MID_WINDOW - timedelta(hours=2)
    end = start + timedelta(hours=5)  # instants in [start, end): the five hours from start
    variables = {"s": start.isoformat(), "e": end.isoformat()}
    data = await gql.data(LS_SERIES, **variables, ex=["binanceusdm"])
    hourly = [s for s in stored.snapshots("binanceusdm", "1h") if start <= s.at < end]
    assert len(hourly) == 5
    points = data["longShortSeries"]
    assert [p["at"] for p in points] == [s.at.isoformat() for s in hourly]
    for p, snap in zip(points, hourly, strict=True):
        assert (p["longUsd"], p["shortUsd"]) == pytest.approx(brute_split(snap, 2.0), rel=1e-9)
    # the total sums the venues with maps: Binance's every hour, nothing from Bybit or OKX
    for ex in (None, ["binanceusdm", *WITHOUT_OI]):
        total = (await gql.data(LS_SERIES, **variables, ex=ex))["longShortSeries"]
        assert [p["at"] for p in total] == [s.at.isoformat() for s in hourly]
        for p in total:
            at = datetime.fromisoformat(p["at"])
            per = {e["exchange"]: e["longUsd"] for e in p["perExchange"]}
            b = stored.snapshot("binanceusdm", "1h", at - BAR)
            assert per == {"binanceusdm": pytest.approx(brute_split(b, 2.0)[0], rel=1e-9)}
            assert p["longUsd"] == pytest.approx(per["binanceusdm"])
    none = await gql.data(LS_SERIES, **variables, ex=["okx"])
    assert none["longShortSeries"] == []


SERIES = """
query ($s: DateTime!, $e: DateTime!, $ex: String!) {
  candles(symbol: "BTC/USDT:USDT", exchange: $ex, start: $s, end: $e) { ts open high low close }
  openInterest(symbol: "BTC/USDT:USDT", exchange: $ex, start: $s, end: $e) {
    ts openInterestUsd }
  fundingRates(symbol: "BTC/USDT:USDT", exchange: $ex, start: $s, end: $e) { ts fundingRate }
  realizedLiquidations(symbol: "BTC/USDT:USDT", start: $s, end: $e) {
    ts timeframe source exchange longUsd shortUsd lowerBound }
}
"""


def coinglass_day(stored: Stored) -> datetime:
    """Midnight of the first full day of the Binance file; CoinGlass covers it too."""
    first = stored.bars.ts[0].replace(hour=0, minute=0) + timedelta(days=1)
    assert first in stored.coinglass
    return first


async def test_market_series_match_the_source_files(gql: GraphQLClient, stored: Stored) -> None:
    bars = stored.bars
    i = bars.index(coinglass_day(stored)) + 10
    start, end = bars.ts[i], bars.ts[i] + timedelta(hours=20)
    data = await gql.data(SERIES, s=start.isoformat(), e=end.isoformat(), ex="binanceusdm")
    assert len(data["candles"]) == 240
    np.testing.assert_array_equal([c["close"] for c in data["candles"]], bars.close[i : i + 240])
    np.testing.assert_array_equal([c["low"] for c in data["candles"]], bars.low[i : i + 240])
    assert [c["ts"] for c in data["candles"]] == [t.isoformat() for t in bars.ts[i : i + 240]]
    # open interest as stored by the ingest (which CSV snapshot a bar carries is the ingest's
    # business); every value is one of the file's
    oi = stored.rows(
        "SELECT ts, open_interest_usd FROM open_interest WHERE market_id = %s AND ts >= %s "
        "AND ts < %s ORDER BY ts",
        (stored.market_id("binanceusdm"), start, end),
    )
    assert len(oi) == 240
    assert [(o["ts"], o["openInterestUsd"]) for o in data["openInterest"]] == [
        (ts.isoformat(), value) for ts, value in oi
    ]
    assert {v for _, v in oi} <= set(bars.oi_usd.tolist())
    # funding settles at 00/08/16 UTC; the CSV's last_funding_rate shows the settled rate on the
    # bar after the settlement (the replay's documented rule)
    funding = data["fundingRates"]
    day = start.replace(hour=0, minute=0)
    settlements = [day + timedelta(hours=h) for h in (8, 16)]
    assert [f["ts"] for f in funding] == [t.isoformat() for t in settlements]
    for f, t in zip(funding, settlements, strict=True):
        row = stored.rows(
            "SELECT funding_rate FROM funding_rates WHERE market_id = %s AND ts = %s",
            (stored.market_id("binanceusdm"), t),
        )
        assert f["fundingRate"] == row[0][0] == bars.funding[bars.index(t + BAR)]
    realized = sorted((t, v) for t, v in stored.coinglass.items() if start <= t < end)
    assert len(data["realizedLiquidations"]) == len(realized) == 40
    for got, (ts, (long_usd, short_usd)) in zip(
        data["realizedLiquidations"], realized, strict=True
    ):
        assert got["ts"] == ts.isoformat()
        assert (got["source"], got["exchange"], got["timeframe"]) == ("coinglass", "*", "30m")
        assert (got["longUsd"], got["shortUsd"]) == (long_usd, short_usd)
        assert got["lowerBound"] is False


async def test_realized_liquidations_of_the_replayed_stream(
    gql: GraphQLClient, stored: Stored
) -> None:
    """The collector stored the replayed forceOrder captures: per 5m bar, the sums of the
    capture file's BTCUSDT events, flagged as lower bounds."""
    start, end = datetime(2024, 8, 17, tzinfo=UTC), datetime(2024, 8, 19, tzinfo=UTC)
    data = await gql.data(
        """query ($s: DateTime!, $e: DateTime!) {
             realizedLiquidations(symbol: "BTC/USDT:USDT", start: $s, end: $e,
                                  exchanges: ["binanceusdm"]) {
               ts timeframe source exchange longUsd shortUsd events lowerBound } }""",
        s=start.isoformat(),
        e=end.isoformat(),
    )
    bars: dict[datetime, list[float]] = {}
    for ts, side, usd in read_force_orders(stored.shared_data):
        if start <= ts < end:
            bar = bars.setdefault(
                ts.replace(minute=ts.minute - ts.minute % 5, second=0, microsecond=0), [0.0, 0.0, 0]
            )
            bar[0 if side == "long" else 1] += usd
            bar[2] += 1
    rows = data["realizedLiquidations"]
    assert [r["ts"] for r in rows] == [t.isoformat() for t in sorted(bars)]
    assert len(rows) > 3
    for r in rows:
        long_usd, short_usd, events = bars[datetime.fromisoformat(r["ts"])]
        assert (r["source"], r["exchange"], r["timeframe"]) == ("stream", "binanceusdm", "5m")
        assert r["longUsd"] == pytest.approx(long_usd, rel=1e-9, abs=1e-9)
        assert r["shortUsd"] == pytest.approx(short_usd, rel=1e-9, abs=1e-9)
        assert r["events"] == events and r["lowerBound"] is True


async def test_series_errors(gql: GraphQLClient, stored: Stored) -> None:
    body = await gql(SERIES, s="2026-06-01T00:00:00Z", e="2026-06-02T00:00:00Z", ex="bybitt")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "bybit" in body["errors"][0]["message"]
    body = await gql(SERIES, s="2026-06-01T00:00:00Z", e="2026-05-02T00:00:00Z", ex="bybit")
    assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}


SWEPT = """
query ($s: DateTime!, $e: DateTime!, $interval: Interval, $ex: [String!]) {
  sweptLevels(symbol: "BTC/USDT:USDT", start: $s, end: $e, interval: $interval, exchanges: $ex) {
    ts bars predictedLongUsd predictedShortUsd realizedLongUsd realizedShortUsd realizedSource
  }
}
"""


async def test_swept_levels_beside_realized(gql: GraphQLClient, stored: Stored) -> None:
    start = coinglass_day(stored)
    end = start + timedelta(hours=6)
    data = (
        await gql.data(SWEPT, s=start.isoformat(), e=end.isoformat(), interval="THIRTY_MINUTES")
    )["sweptLevels"]
    swept = stored.swept("all")
    assert len(data) == 12
    for j, row in enumerate(data):
        t0 = start + timedelta(minutes=30 * j)
        bars = [swept[t0 + timedelta(minutes=5 * k)] for k in range(6)]
        assert row["ts"] == t0.isoformat() and row["bars"] == 6
        assert row["predictedLongUsd"] == pytest.approx(sum(lo for lo, _ in bars), rel=1e-12)
        assert row["predictedShortUsd"] == pytest.approx(sum(sh for _, sh in bars), rel=1e-12)
        assert (row["realizedLongUsd"], row["realizedShortUsd"]) == stored.coinglass[t0]
        assert row["realizedSource"] == "coinglass/*"
    assert sum(r["predictedLongUsd"] + r["predictedShortUsd"] for r in data) > 0
    # per exchange at 5m: the model's own numbers, no realized source at that interval
    start = MID_WINDOW
    end = start + timedelta(hours=6)
    data = (await gql.data(SWEPT, s=start.isoformat(), e=end.isoformat(), ex=["binanceusdm"]))[
        "sweptLevels"
    ]
    binance = stored.swept("binanceusdm")
    expected = [binance[start + timedelta(minutes=5 * k)] for k in range(72)]
    assert [r["ts"] for r in data] == [
        (start + timedelta(minutes=5 * k)).isoformat() for k in range(72)
    ]
    np.testing.assert_array_equal([r["predictedLongUsd"] for r in data], [e[0] for e in expected])
    np.testing.assert_array_equal([r["predictedShortUsd"] for r in data], [e[1] for e in expected])
    assert all(r["realizedLongUsd"] is None for r in data)
    # a venue without open interest: the model swept nothing there, it placed nothing
    assert stored.swept("bybit") == {}
    none = await gql.data(SWEPT, s=start.isoformat(), e=end.isoformat(), ex=["bybit"])
    assert none["sweptLevels"] == []


async def test_row_series_over_the_limit_are_refused_not_cut(
    api_engine: Any, api_database_url: str, stored: Stored
) -> None:
    """fundingRates and realizedLiquidations read rows, not bars: a range holding more rows than
    LIQMAP_API_MAX_SERIES_POINTS is RANGE_TOO_LARGE (it was the oldest rows, silently cut); a
    range holding exactly the limit answers all of them."""
    bars = stored.bars
    i = bars.index(coinglass_day(stored)) + 10
    start, end = bars.ts[i], bars.ts[i] + timedelta(hours=20)  # 40 CoinGlass bars, 2 fundings
    query = """query ($s: DateTime!, $e: DateTime!) {
      realizedLiquidations(symbol: "BTC/USDT:USDT", start: $s, end: $e) { ts } }"""
    funding = """query ($s: DateTime!, $e: DateTime!) {
      fundingRates(symbol: "BTC/USDT:USDT", exchange: "binanceusdm", start: $s, end: $e) { at } }"""
    for limit, rows in ((40, 40), (39, None)):
        app = build_app(api_engine, api_database_url, api_max_series_points=limit)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                gql = GraphQLClient(client)
                body = await gql(query, s=start.isoformat(), e=end.isoformat())
                if rows is not None:
                    assert len(body["data"]["realizedLiquidations"]) == rows
                else:
                    (error,) = body["errors"]
                    assert error["extensions"]["code"] == "RANGE_TOO_LARGE"
                    assert "more than the maximum of 39 rows" in error["message"]
        finally:
            await app.state.hub.close()
    app = build_app(api_engine, api_database_url, api_max_series_points=1)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = await GraphQLClient(client)(funding, s=start.isoformat(), e=end.isoformat())
        assert body["errors"][0]["extensions"]["code"] == "RANGE_TOO_LARGE"
    finally:
        await app.state.hub.close()
