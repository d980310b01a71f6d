"""liquidationLevels: the map at an instant, checked against the stored snapshots by brute force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.api.brute import brute_force_walls
from tests.api.conftest import GraphQLClient
from tests.api.pipeline import BAR, BYBIT_SINCE, ETH, SYMBOL, Stored

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


async def test_latest_aggregate_map_matches_stored_snapshot(
    gql: GraphQLClient, stored: Stored
) -> None:
    data = (await gql.data(LEVELS, symbol=SYMBOL))["liquidationLevels"]
    snap = stored.latest("all")
    bucket = snap.bucket_size
    assert data["exchanges"] == ["binanceusdm", "bybit"]
    assert data["at"] == snap.at.isoformat()
    assert data["price"] == pytest.approx(snap.price)
    assert data["bucketSize"] == bucket == 50.0
    assert data["priceMin"] == pytest.approx(snap.bucket_origin)
    levels = data["levels"]
    assert len(levels) == snap.long_usd.size
    np.testing.assert_array_equal([lv["longUsd"] for lv in levels], snap.long_usd)
    np.testing.assert_array_equal([lv["shortUsd"] for lv in levels], snap.short_usd)
    prices = np.array([lv["price"] for lv in levels])
    np.testing.assert_allclose(prices, snap.bucket_origin + bucket * np.arange(len(levels)))
    assert data["totalLongUsd"] == pytest.approx(float(snap.long_usd.sum(dtype=np.float64)))

    # cumulative curves, summed outward from the price one bucket at a time
    price = snap.price
    for i, lv in enumerate(levels):
        expected_long = (
            sum(float(snap.long_usd[j]) for j in range(i, len(levels)) if prices[j] <= price)
            if prices[i] <= price
            else 0.0
        )
        expected_short = (
            sum(float(snap.short_usd[j]) for j in range(0, i + 1) if prices[j] + bucket > price)
            if prices[i] + bucket > price
            else 0.0
        )
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
    short_above = [
        i for i in range(len(levels)) if prices[i] + bucket > price and snap.short_usd[i] > 0
    ]
    assert data["maxPainShort"]["price"] == pytest.approx(prices[max(short_above)])

    # walls, found by walking the vectors
    expected = [("LONG", *w) for w in brute_force_walls(snap.long_usd.astype(np.float64))] + [
        ("SHORT", *w) for w in brute_force_walls(snap.short_usd.astype(np.float64))
    ]
    expected.sort(key=lambda w: -w[3])
    got = data["clusters"]
    assert len(got) == min(50, len(expected)) > 0
    for wall, (side, start, stop, notional) in zip(got, expected, strict=False):
        assert wall["side"] == side
        assert wall["priceLow"] == pytest.approx(prices[start])
        assert wall["priceHigh"] == pytest.approx(prices[start] + bucket * (stop - start))
        assert wall["notionalUsd"] == pytest.approx(notional, rel=1e-6)

    # the model: the engine states the materializer saved, per exchange
    states = stored.model_states()
    assert data["model"]["version"] == ", ".join(sorted({v for v, _ in states.values()}))
    assumptions = data["model"]["assumptions"]
    binance, bybit = states["binanceusdm"][1], states["bybit"][1]
    for key in binance.keys() | bybit.keys():
        if binance.get(key) == bybit.get(key):
            assert assumptions[key] == binance[key], key
        else:  # Bybit ran on the shipped fallback tier table (its own was never fetched)
            assert key not in assumptions
            assert assumptions["perExchange"]["binanceusdm"][key] == binance.get(key)
            assert assumptions["perExchange"]["bybit"][key] == bybit.get(key)
    assert binance["tier_tables"] != bybit["tier_tables"]
    coverage = data["coverage"]
    assert coverage["exchanges"] == ["binanceusdm", "bybit"]
    assert coverage["lastBar"] == data["at"]
    staleness = (datetime.now(UTC) - snap.at).total_seconds()
    assert coverage["staleness"] == pytest.approx(staleness, abs=60)
    missing = stored.missing_datasets(["binanceusdm", "bybit"])
    assert coverage["missingDatasets"] == missing == ["bybit:tiers"]


def differing_bar(stored: Stored) -> datetime:
    """A 5m bar soon after Bybit's history starts, where the two exchanges' books differ."""
    ts = BYBIT_SINCE + timedelta(hours=6)
    b = stored.snapshot("binanceusdm", "5m", ts)
    y = stored.snapshot("bybit", "5m", ts)
    assert b.long_usd.sum() != y.long_usd.sum()
    return ts


async def test_two_exchanges_sum_to_the_aggregate_and_at_picks_the_bar(
    gql: GraphQLClient, stored: Stored
) -> None:
    ts = differing_bar(stored)
    b = stored.snapshot("binanceusdm", "5m", ts)
    y = stored.snapshot("bybit", "5m", ts)
    total = stored.snapshot("all", "5m", ts)
    at = (ts + BAR + timedelta(minutes=2)).isoformat()  # 2 min after that bar closed
    both = await gql.data(LEVELS, symbol=SYMBOL, exchanges=["binanceusdm", "bybit"], at=at)
    both = both["liquidationLevels"]
    aggregate = (await gql.data(LEVELS, symbol=SYMBOL, at=at))["liquidationLevels"]
    assert both["at"] == aggregate["at"] == (ts + BAR).isoformat()
    first = min(b.first, y.first)
    assert both["priceMin"] == aggregate["priceMin"] == first * b.bucket_size
    # the sum, bucket by bucket on the shared grid, of the two stored vectors
    end = max(b.first + b.long_usd.size, y.first + y.long_usd.size)
    summed = np.zeros(end - first)
    for snap in (b, y):
        summed[snap.first - first : snap.first - first + snap.long_usd.size] += snap.long_usd
    np.testing.assert_allclose([lv["longUsd"] for lv in both["levels"]], summed, rtol=1e-6)
    np.testing.assert_array_equal([lv["longUsd"] for lv in aggregate["levels"]], total.long_usd)
    np.testing.assert_allclose(total.long_usd, summed, rtol=1e-6)
    assert both["price"] == pytest.approx((b.price + y.price) / 2)
    one = (await gql.data(LEVELS, symbol=SYMBOL, exchanges=["bybit"], at=at))["liquidationLevels"]
    np.testing.assert_array_equal([lv["shortUsd"] for lv in one["levels"]], y.short_usd)
    assert one["exchanges"] == ["bybit"]
    assert one["coverage"]["missingDatasets"] == stored.missing_datasets(["bybit"])


async def test_before_an_exchanges_history_the_aggregate_is_the_other_one(
    gql: GraphQLClient, stored: Stored
) -> None:
    """Bybit's series starts at BYBIT_SINCE: earlier maps of the total hold Binance alone,
    and Bybit alone has nothing to show."""
    ts = BYBIT_SINCE - timedelta(hours=1, minutes=5)  # an hourly bar (closes on the hour)
    at = (ts + BAR).isoformat()
    b = stored.snapshot("binanceusdm", "1h", ts)
    total = (await gql.data(LEVELS, symbol=SYMBOL, at=at))["liquidationLevels"]
    np.testing.assert_array_equal([lv["longUsd"] for lv in total["levels"]], b.long_usd)
    assert total["at"] == at
    assert (await gql.data(LEVELS, symbol=SYMBOL, exchanges=["bybit"], at=at))[
        "liquidationLevels"
    ] is None


async def test_window_and_rebucketing_keep_the_sums(gql: GraphQLClient, stored: Stored) -> None:
    snap = stored.latest("binanceusdm")
    low = float(snap.prices[20]) + 30.0  # inside a stored bucket, not on a 250 edge
    high = float(snap.prices[-20])
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
    expected_min, expected_max = 250.0 * (low // 250), 250.0 * -(-high // 250)
    assert data["priceMin"] == expected_min and data["priceMax"] == expected_max
    assert len(data["levels"]) == (expected_max - expected_min) / 250
    edges = snap.prices
    for lv in data["levels"]:
        inside = (edges >= lv["price"]) & (edges < lv["priceHigh"])
        assert lv["longUsd"] == pytest.approx(float(snap.long_usd[inside].sum(dtype=np.float64)))
        assert lv["shortUsd"] == pytest.approx(float(snap.short_usd[inside].sum(dtype=np.float64)))
    assert sum(lv["longUsd"] for lv in data["levels"]) > 0


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
    gql: GraphQLClient, stored: Stored, variables: dict, code: str, fragment: str
) -> None:
    body = await gql(LEVELS, **variables)
    assert body["errors"][0]["extensions"]["code"] == code
    assert fragment in body["errors"][0]["message"]


async def test_an_instant_before_any_snapshot_is_null(gql: GraphQLClient, stored: Stored) -> None:
    body = await gql.data(LEVELS, symbol=SYMBOL, at="2020-01-01T00:00:00Z")
    assert body["liquidationLevels"] is None


async def test_a_market_whose_ingest_failed_has_no_map(gql: GraphQLClient, stored: Stored) -> None:
    """ETH/USDT:USDT is configured but the replay has no ETH series: the materializer made its
    series and stored nothing in them."""
    assert (
        stored.one(
            "SELECT count(*) FROM heatmap_snapshots h JOIN heatmap_series s ON s.id = h.series_id "
            "WHERE s.symbol = %s",
            (ETH,),
        )
        == 0
    )
    assert (await gql.data(LEVELS, symbol=ETH))["liquidationLevels"] is None
