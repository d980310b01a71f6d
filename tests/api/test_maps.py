"""liquidationLevels: the map at an instant, checked against the stored snapshots by brute force."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from tests.api.conftest import GraphQLClient
from tests.api.seed import BUCKET, SYMBOL, Seeded

LEVELS = """
query ($symbol: String!, $exchanges: [String!], $at: DateTime, $priceMin: Float,
       $priceMax: Float, $bucketSize: Float) {
  liquidationLevels(symbol: $symbol, exchanges: $exchanges, at: $at, priceMin: $priceMin,
                    priceMax: $priceMax, bucketSize: $bucketSize) {
    symbol exchanges at price bucketSize priceMin priceMax totalLongUsd totalShortUsd maxUsd
    levels { price priceHigh longUsd shortUsd cumulativeLongUsd cumulativeShortUsd intensity }
    maxPainLong { side price cumulativeUsd }
    maxPainShort { side price cumulativeUsd }
    clusters(minUsd: 0, limit: 50) { side priceLow priceHigh peakPrice notionalUsd distancePct }
    model { version assumptions }
    coverage { exchanges lastBar staleness missingDatasets }
  }
}
"""


def stored(seeded: Seeded, scope: str, index: int = -1, resolution: str = "5m"):
    rows = [r for r in seeded.snapshots[scope] if r.resolution == resolution]
    return rows[index]


def brute_force_walls(values: np.ndarray) -> list[tuple[int, int, float]]:
    """Runs of buckets ≥ the mean non-empty bucket, by walking the vector one bucket at a time."""
    nonzero = [v for v in values if v > 0]
    if not nonzero:
        return []
    threshold = sum(nonzero) / len(nonzero)
    runs, start = [], None
    for i, v in enumerate([*values.tolist(), 0.0]):
        if v >= threshold and v > 0 and start is None:
            start = i
        elif (v < threshold or v == 0) and start is not None:
            runs.append((start, i, float(sum(values[start:i]))))
            start = None
    return runs


async def test_latest_aggregate_map_matches_stored_snapshot(
    gql: GraphQLClient, seeded: Seeded
) -> None:
    data = (await gql.data(LEVELS, symbol=SYMBOL))["liquidationLevels"]
    snap = stored(seeded, "all")
    assert data["exchanges"] == ["binanceusdm", "bybit"]
    assert data["at"] == (snap.ts + timedelta(minutes=5)).isoformat()
    assert data["price"] == pytest.approx(snap.price)
    assert data["bucketSize"] == BUCKET
    assert data["priceMin"] == pytest.approx(snap.bucket_origin)
    levels = data["levels"]
    assert len(levels) == snap.long_usd.size
    np.testing.assert_array_equal([lv["longUsd"] for lv in levels], snap.long_usd)
    np.testing.assert_array_equal([lv["shortUsd"] for lv in levels], snap.short_usd)
    prices = np.array([lv["price"] for lv in levels])
    np.testing.assert_allclose(prices, snap.bucket_origin + BUCKET * np.arange(len(levels)))
    assert data["totalLongUsd"] == pytest.approx(float(snap.long_usd.sum(dtype=np.float64)))

    # cumulative curves, summed outward from the price one bucket at a time
    price = snap.price
    for i, lv in enumerate(levels):
        expected_long = sum(
            float(snap.long_usd[j]) for j in range(i, len(levels)) if prices[j] <= price
        ) if prices[i] <= price else 0.0  # fmt: skip
        expected_short = sum(
            float(snap.short_usd[j]) for j in range(0, i + 1) if prices[j] + BUCKET > price
        ) if prices[i] + BUCKET > price else 0.0  # fmt: skip
        assert lv["cumulativeLongUsd"] == pytest.approx(expected_long, rel=1e-9, abs=1e-6)
        assert lv["cumulativeShortUsd"] == pytest.approx(expected_short, rel=1e-9, abs=1e-6)

    # intensity: relative to the largest bucket of the response
    totals = snap.long_usd.astype(np.float64) + snap.short_usd
    np.testing.assert_allclose([lv["intensity"] for lv in levels], totals / totals.max())
    assert max(lv["intensity"] for lv in levels) == 1.0
    assert data["maxUsd"] == pytest.approx(totals.max())

    # max pain: the farthest-reaching cumulative maximum; the lowest long level with notional
    long_below = [i for i in range(len(levels)) if prices[i] <= price and snap.long_usd[i] > 0]
    assert data["maxPainLong"]["price"] == pytest.approx(prices[min(long_below)])
    assert data["maxPainLong"]["cumulativeUsd"] == pytest.approx(
        sum(float(snap.long_usd[i]) for i in long_below), rel=1e-9
    )
    short_above = [i for i in range(len(levels)) if prices[i] + BUCKET > price
                   and snap.short_usd[i] > 0]  # fmt: skip
    assert data["maxPainShort"]["price"] == pytest.approx(prices[max(short_above)])

    # walls, found by walking the vectors
    expected = [("LONG", *w) for w in brute_force_walls(snap.long_usd.astype(np.float64))] + [
        ("SHORT", *w) for w in brute_force_walls(snap.short_usd.astype(np.float64))
    ]
    expected.sort(key=lambda w: -w[3])
    got = data["clusters"]
    assert len(got) == min(50, len(expected))
    for wall, (side, start, stop, notional) in zip(got, expected, strict=False):
        assert wall["side"] == side
        assert wall["priceLow"] == pytest.approx(prices[start])
        assert wall["priceHigh"] == pytest.approx(prices[start] + BUCKET * (stop - start))
        assert wall["notionalUsd"] == pytest.approx(notional, rel=1e-6)

    assert data["model"]["version"] == "fixture-1"
    assumptions = data["model"]["assumptions"]
    assert assumptions["leverage"] == [10.0, 25.0, 50.0, 100.0]
    assert assumptions["perExchange"]["bybit"]["tier_table"] == "fixture tiers for bybit"
    coverage = data["coverage"]
    assert coverage["exchanges"] == ["binanceusdm", "bybit"]
    assert coverage["lastBar"] == data["at"]
    assert coverage["staleness"] > 0
    assert "bybit:candles" in coverage["missingDatasets"]
    assert "binanceusdm:tiers" in coverage["missingDatasets"]
    assert "binanceusdm:candles" not in coverage["missingDatasets"]


async def test_two_exchanges_sum_to_the_aggregate_and_at_picks_the_bar(
    gql: GraphQLClient, seeded: Seeded
) -> None:
    snap = stored(seeded, "binanceusdm", 100)
    at = (snap.ts + timedelta(minutes=7)).isoformat()  # 2 min after that bar closed
    both = await gql.data(LEVELS, symbol=SYMBOL, exchanges=["binanceusdm", "bybit"], at=at)
    total = (await gql.data(LEVELS, symbol=SYMBOL, at=at))["liquidationLevels"]
    both = both["liquidationLevels"]
    assert both["at"] == total["at"] == (snap.ts + timedelta(minutes=5)).isoformat()
    assert both["priceMin"] == total["priceMin"]
    np.testing.assert_allclose(
        [lv["longUsd"] for lv in both["levels"]], [lv["longUsd"] for lv in total["levels"]],
        rtol=1e-6,
    )  # fmt: skip
    one = (await gql.data(LEVELS, symbol=SYMBOL, exchanges=["bybit"], at=at))["liquidationLevels"]
    expected = stored(seeded, "bybit", 100)
    np.testing.assert_array_equal([lv["shortUsd"] for lv in one["levels"]], expected.short_usd)
    assert one["exchanges"] == ["bybit"]


async def test_window_and_rebucketing_keep_the_sums(gql: GraphQLClient, seeded: Seeded) -> None:
    snap = stored(seeded, "binanceusdm")
    low, high = 70_030.0, 80_000.0  # 70_030 falls inside the bucket starting at 70_000
    data = (
        await gql.data(
            LEVELS,
            symbol=SYMBOL,
            exchanges=["binanceusdm"],
            priceMin=low,
            priceMax=high,
            bucketSize=250.0,
        )
    )["liquidationLevels"]
    assert data["bucketSize"] == 250.0
    assert data["priceMin"] == 70_000.0 and data["priceMax"] == 80_000.0
    assert len(data["levels"]) == 40
    edges = snap.bucket_origin + BUCKET * np.arange(snap.long_usd.size)
    for lv in data["levels"]:
        inside = (edges >= lv["price"]) & (edges < lv["priceHigh"])
        assert lv["longUsd"] == pytest.approx(float(snap.long_usd[inside].sum(dtype=np.float64)))
        assert lv["shortUsd"] == pytest.approx(float(snap.short_usd[inside].sum(dtype=np.float64)))


@pytest.mark.parametrize(
    ("variables", "code", "fragment"),
    [
        ({"symbol": "BTC/USDT"}, "NOT_FOUND", "BTC/USDT:USDT"),
        ({"symbol": SYMBOL, "exchanges": ["binanceusd"]}, "NOT_FOUND", "binanceusdm"),
        ({"symbol": SYMBOL, "bucketSize": 75.0}, "BAD_USER_INPUT", "multiple"),
        ({"symbol": SYMBOL, "bucketSize": -50.0}, "BAD_USER_INPUT", "positive"),
        ({"symbol": SYMBOL, "priceMin": -1.0}, "BAD_USER_INPUT", "priceMin"),
        ({"symbol": SYMBOL, "priceMin": 9e4, "priceMax": 8e4}, "BAD_USER_INPUT", "greater"),
        ({"symbol": SYMBOL, "priceMin": 0.0, "priceMax": 1e7}, "RANGE_TOO_LARGE", "levels"),
        ({"symbol": SYMBOL, "at": "yesterday"}, "BAD_USER_INPUT", "DateTime"),
    ],
)
async def test_errors_carry_stable_codes(
    gql: GraphQLClient, seeded: Seeded, variables: dict, code: str, fragment: str
) -> None:
    body = await gql(LEVELS, **variables)
    assert body["errors"][0]["extensions"]["code"] == code
    assert fragment in body["errors"][0]["message"]


async def test_an_instant_before_any_snapshot_is_null(gql: GraphQLClient, seeded: Seeded) -> None:
    body = await gql.data(LEVELS, symbol=SYMBOL, at="2020-01-01T00:00:00Z")
    assert body["liquidationLevels"] is None
