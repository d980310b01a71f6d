"""snapshots (keyset paging), longShortSplit (+ series), and the market series queries."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from tests.api.conftest import GraphQLClient
from tests.api.seed import BUCKET, Seeded

SNAPSHOTS = """
query ($start: DateTime!, $end: DateTime, $exchange: String, $first: Int!, $after: String) {
  snapshots(symbol: "BTC/USDT:USDT", start: $start, end: $end, exchange: $exchange,
            resolution: ONE_HOUR, first: $first, after: $after) {
    edges { cursor node { at price totalLongUsd levels { longUsd } model { version } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def test_snapshot_pages_cover_every_hour_once(gql: GraphQLClient, seeded: Seeded) -> None:
    start = seeded.bars.ts[0]
    end = start + timedelta(hours=30)
    hourly = [s for s in seeded.snapshots["bybit"] if s.resolution == "1h"
              and start <= s.ts + timedelta(minutes=5) < end]  # fmt: skip
    seen, after, pages = [], None, 0
    while True:
        data = (
            await gql.data(SNAPSHOTS, start=start.isoformat(), end=end.isoformat(),
                           exchange="bybit", first=7, after=after)
        )["snapshots"]  # fmt: skip
        pages += 1
        assert data["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [e["node"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
        assert after == data["edges"][-1]["cursor"]
    assert pages == -(-len(hourly) // 7)
    assert [n["at"] for n in seen] == [(s.ts + timedelta(minutes=5)).isoformat() for s in hourly]
    for node, snap in zip(seen, hourly, strict=True):
        np.testing.assert_array_equal([lv["longUsd"] for lv in node["levels"]], snap.long_usd)
        assert node["model"]["version"] == "fixture-1"


async def test_snapshot_paging_errors(gql: GraphQLClient, seeded: Seeded) -> None:
    start = seeded.bars.ts[0].isoformat()
    body = await gql(SNAPSHOTS, start=start, first=5, after="bm90LWEtY3Vyc29y")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql(SNAPSHOTS, start=start, first=5000)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql(SNAPSHOTS, start=start, first=5, exchange="okx")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


SPLIT = """
query ($at: DateTime, $pct: Float!) {
  longShortSplit(symbol: "BTC/USDT:USDT", at: $at, withinPct: $pct) {
    at price withinPct longUsd shortUsd ratio
    perExchange { exchange longUsd shortUsd ratio }
  }
}
"""


def brute_split(snap, pct: float) -> tuple[float, float]:
    """Walk the buckets; a bucket partly inside the window counts by its covered width."""
    low, high = snap.price * (1 - pct / 100), snap.price * (1 + pct / 100)
    long_usd = short_usd = 0.0
    for k in range(snap.long_usd.size):
        a = snap.bucket_origin + k * BUCKET
        covered = max(0.0, min(a + BUCKET, high) - max(a, low)) / BUCKET
        long_usd += float(snap.long_usd[k]) * covered
        short_usd += float(snap.short_usd[k]) * covered
    return long_usd, short_usd


async def test_long_short_split_per_exchange_and_total(gql: GraphQLClient, seeded: Seeded) -> None:
    index = 300
    b = [s for s in seeded.snapshots["binanceusdm"] if s.resolution == "5m"][index]
    y = [s for s in seeded.snapshots["bybit"] if s.resolution == "5m"][index]
    at = (b.ts + timedelta(minutes=5)).isoformat()
    data = (await gql.data(SPLIT, at=at, pct=3.0))["longShortSplit"]
    per = {p["exchange"]: p for p in data["perExchange"]}
    for scope, snap in (("binanceusdm", b), ("bybit", y)):
        long_usd, short_usd = brute_split(snap, 3.0)
        assert per[scope]["longUsd"] == pytest.approx(long_usd, rel=1e-9)
        assert per[scope]["shortUsd"] == pytest.approx(short_usd, rel=1e-9)
        assert per[scope]["ratio"] == pytest.approx(long_usd / short_usd)
    assert data["longUsd"] == pytest.approx(per["binanceusdm"]["longUsd"] + per["bybit"]["longUsd"])
    assert data["ratio"] == pytest.approx(data["longUsd"] / data["shortUsd"])
    assert data["at"] == at and data["price"] == pytest.approx((b.price + y.price) / 2)
    body = await gql(SPLIT, pct=0.0)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_long_short_series(gql: GraphQLClient, seeded: Seeded) -> None:
    start = seeded.bars.ts[0]
    data = await gql.data(
        """query ($s: DateTime!, $e: DateTime!) {
             longShortSeries(symbol: "BTC/USDT:USDT", exchanges: ["binanceusdm"], start: $s,
                             end: $e, withinPct: 2) { at longUsd shortUsd } }""",
        s=start.isoformat(), e=(start + timedelta(hours=5)).isoformat(),
    )  # fmt: skip
    end = start + timedelta(hours=5)  # instants in [start, end): 01:00 … 04:00
    hourly = [s for s in seeded.snapshots["binanceusdm"]
              if s.resolution == "1h" and s.ts + timedelta(minutes=5) < end]  # fmt: skip
    assert len(hourly) == 4
    points = data["longShortSeries"]
    assert [p["at"] for p in points] == [(s.ts + timedelta(minutes=5)).isoformat() for s in hourly]
    for p, snap in zip(points, hourly, strict=True):
        assert (p["longUsd"], p["shortUsd"]) == pytest.approx(brute_split(snap, 2.0), rel=1e-9)


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


async def test_market_series_match_the_source_files(gql: GraphQLClient, seeded: Seeded) -> None:
    bars = seeded.bars
    start, end = bars.ts[10], bars.ts[10] + timedelta(hours=20)
    data = await gql.data(SERIES, s=start.isoformat(), e=end.isoformat(), ex="binanceusdm")
    assert len(data["candles"]) == 240
    np.testing.assert_array_equal([c["close"] for c in data["candles"]], bars.close[10:250])
    np.testing.assert_array_equal([c["low"] for c in data["candles"]], bars.low[10:250])
    np.testing.assert_array_equal(
        [o["openInterestUsd"] for o in data["openInterest"]], bars.oi_usd[10:250]
    )
    funding_times = [f["ts"] for f in data["fundingRates"]]
    assert funding_times == ["2026-06-01T08:00:00+00:00", "2026-06-01T16:00:00+00:00"]
    i = bars.ts.index(bars.ts[0] + timedelta(hours=8))
    assert data["fundingRates"][0]["fundingRate"] == bars.funding[i]
    realized = [r for r in seeded.realized if start <= r[4] < end]
    assert len(data["realizedLiquidations"]) == len(realized) == 40
    for got, row in zip(data["realizedLiquidations"], realized, strict=True):
        assert (got["source"], got["exchange"], got["timeframe"]) == ("coinglass", "*", "30m")
        assert (got["longUsd"], got["shortUsd"]) == (row[5], row[6])


async def test_series_errors(gql: GraphQLClient, seeded: Seeded) -> None:
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


async def test_swept_levels_beside_realized(gql: GraphQLClient, seeded: Seeded) -> None:
    bars = seeded.bars
    start, end = bars.ts[0], bars.ts[0] + timedelta(hours=6)
    data = (
        await gql.data(SWEPT, s=start.isoformat(), e=end.isoformat(), interval="THIRTY_MINUTES")
    )["sweptLevels"]
    swept_long, swept_short = seeded.swept["all"]
    realized = {r[4]: r for r in seeded.realized}
    assert len(data) == 12
    for j, row in enumerate(data):
        assert row["bars"] == 6
        assert row["predictedLongUsd"] == pytest.approx(swept_long[6 * j : 6 * j + 6].sum())
        assert row["predictedShortUsd"] == pytest.approx(swept_short[6 * j : 6 * j + 6].sum())
        real = realized[start + timedelta(minutes=30 * j)]
        assert (row["realizedLongUsd"], row["realizedShortUsd"]) == (real[5], real[6])
        assert row["realizedSource"] == "coinglass/*"
    # per exchange at 5m: the model's own numbers, no realized source at that interval
    data = (await gql.data(SWEPT, s=start.isoformat(), e=end.isoformat(), ex=["bybit"]))[
        "sweptLevels"
    ]
    bybit_long, _ = seeded.swept["bybit"]
    np.testing.assert_allclose([r["predictedLongUsd"] for r in data], bybit_long[:72])
    assert all(r["realizedLongUsd"] is None for r in data)
