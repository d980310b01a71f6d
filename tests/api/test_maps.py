"""liquidationLevels: the map at an instant, checked against the stored snapshots by brute force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.api.brute import brute_force_walls
from tests.api.conftest import GraphQLClient
from tests.api.pipeline import BAR, ETH, MID_WINDOW, SYMBOL, WITHOUT_OI, Stored

VENUES = ["binanceusdm", *WITHOUT_OI]  # tracked for BTC/USDT:USDT; only Binance recorded OI

LEVELS = """
query ($symbol: String!, $exchanges: [String!], $at: DateTime, $priceMin: Float,
       $priceMax: Float, $bucketSize: Float) {
  liquidationLevels(symbol: $symbol, exchanges: $exchanges, at: $at, priceMin: $priceMin,
                    priceMax: $priceMax, bucketSize: $bucketSize) {
    symbol exchanges at price bucketSize priceMin priceMax totalLongUsd totalShortUsd maxUsd
    levels { price priceHigh longUsd shortUsd cumulativeLongUsd cumulativeShortUsd intensity }
    maxPainLong { side price cumulativeUsd distancePct usdPerPct }
    maxPainShort { side price cumulativeUsd distancePct usdPerPct }
    clusters(minUsd: 0, limit: 50) { side priceLow priceHigh peakPrice notionalUsd distancePct }
    model { version assumptions }
    coverage {
      exchanges lastBar staleness missingDatasets
      unavailableDatasets { exchange dataset reason }
      excludedExchanges { exchange reason }
    }
  }
}
"""


def expected_unavailable(stored: Stored, exchanges: list[str]) -> list[dict[str, str]]:
    """Per exchange and dataset, the reasons the ingest recorded (job_runs, plain SQL)."""
    return [
        {"exchange": e, "dataset": d, "reason": reason}
        for e in sorted(exchanges)
        for d, reason in sorted(stored.unavailable(e).items())
    ]


def assert_excluded_for_lack_of_open_interest(stored: Stored, coverage: dict) -> None:
    """Bybit and OKX are named, each with the reason its open interest is unavailable."""
    excluded = {x["exchange"]: x["reason"] for x in coverage["excludedExchanges"]}
    assert sorted(excluded) == sorted(WITHOUT_OI)
    for exchange, reason in excluded.items():
        recorded = stored.unavailable(exchange)["open_interest"]
        assert "no open_interest of BTC/USDT:USDT was recorded" in recorded
        assert reason == f"no open interest, so no model positions: {recorded}"


async def test_latest_aggregate_map_matches_stored_snapshot(
    gql: GraphQLClient, stored: Stored
) -> None:
    data = (await gql.data(LEVELS, symbol=SYMBOL))["liquidationLevels"]
    snap = stored.latest("all")
    bucket = snap.bucket_size
    assert data["exchanges"] == ["binanceusdm"]  # the one venue with recorded open interest
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

    # max pain: of the levels at least a bucket away on the adverse side, the one whose far
    # edge liquidates the most USD per percent of move (ties: the nearest), walked one by one
    def best(candidates: list[tuple[float, float]]) -> tuple[float, float]:
        top = max(
            cum / dist for _, cum, dist in ((e, c, abs(e - price) / price) for e, c in candidates)
        )
        for edge, cum in candidates:  # ordered nearest first
            if cum / (abs(edge - price) / price) >= top * (1 - 1e-9):
                return edge, cum
        raise AssertionError

    long_cands = []
    for i in sorted(range(len(levels)), key=lambda i: -prices[i]):
        if prices[i] <= price - bucket * (1 - 1e-9):
            cum = sum(float(snap.long_usd[j]) for j in range(i, len(levels)) if prices[j] <= price)
            if cum > 0:
                long_cands.append((prices[i], cum))
    edge, cum = best(long_cands)
    assert data["maxPainLong"]["price"] == pytest.approx(edge)
    assert data["maxPainLong"]["cumulativeUsd"] == pytest.approx(cum, rel=1e-9)
    assert data["maxPainLong"]["distancePct"] == pytest.approx(100 * (price - edge) / price)
    short_cands = []
    for i in range(len(levels)):
        if prices[i] + bucket >= price + bucket * (1 - 1e-9):
            cum = sum(
                float(snap.short_usd[j]) for j in range(0, i + 1) if prices[j] + bucket > price
            )
            if cum > 0:
                short_cands.append((prices[i] + bucket, cum))
    edge, cum = best(short_cands)
    assert data["maxPainShort"]["price"] == pytest.approx(edge)
    assert data["maxPainShort"]["cumulativeUsd"] == pytest.approx(cum, rel=1e-9)

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

    # the model: the engine state the materializer saved for the one venue it ran on, and which
    # venues contribute (the others have no engine state: they never placed a position)
    states = stored.model_states()
    assert sorted(states) == ["binanceusdm"]
    assert data["model"]["version"] == states["binanceusdm"][0]
    assumptions = dict(data["model"]["assumptions"])
    venues = assumptions.pop("venues")
    assert assumptions == states["binanceusdm"][1]  # one venue: nothing under perExchange
    assert venues["contributing"] == ["binanceusdm"]
    assert "none is estimated" in venues["openInterest"]
    coverage = data["coverage"]
    assert_excluded_for_lack_of_open_interest(stored, coverage)
    assert venues["excluded"] == {x["exchange"]: x["reason"] for x in coverage["excludedExchanges"]}
    assert coverage["exchanges"] == ["binanceusdm"]
    assert coverage["lastBar"] == data["at"]
    staleness = (datetime.now(UTC) - snap.at).total_seconds()
    assert coverage["staleness"] == pytest.approx(staleness, abs=60)
    missing = stored.missing_datasets(VENUES)
    assert coverage["missingDatasets"] == missing
    assert missing == ["bybit:open_interest", "bybit:tiers", "okx:open_interest", "okx:tiers"]
    unavailable = expected_unavailable(stored, VENUES)
    assert coverage["unavailableDatasets"] == unavailable
    assert {(u["exchange"], u["dataset"]) for u in unavailable} == {
        (e, d) for e in WITHOUT_OI for d in ("open_interest", "tiers")
    }


async def test_the_aggregate_is_the_sum_of_the_venues_with_real_open_interest(
    gql: GraphQLClient, stored: Stored
) -> None:
    """Three venues are tracked; only Binance recorded open interest. The stored total and a
    map over all three named explicitly both equal Binance's map: nothing counted twice, and
    nothing invented for the venues without data (the arithmetic of summing several venues is
    tested on hand-built vectors in tests/maps/test_view.py)."""
    ts = MID_WINDOW + timedelta(hours=6)
    b = stored.snapshot("binanceusdm", "5m", ts)
    total = stored.snapshot("all", "5m", ts)
    for scope in WITHOUT_OI:
        assert stored.snapshots(scope, "5m") == stored.snapshots(scope, "1h") == ()
    # the stored total is the sum over the venues with open interest: Binance's vectors
    assert (total.price, total.first) == (b.price, b.first)
    np.testing.assert_array_equal(total.long_usd, b.long_usd)
    np.testing.assert_array_equal(total.short_usd, b.short_usd)
    at = (ts + BAR + timedelta(minutes=2)).isoformat()  # 2 min after that bar closed
    named = (await gql.data(LEVELS, symbol=SYMBOL, exchanges=VENUES, at=at))["liquidationLevels"]
    aggregate = (await gql.data(LEVELS, symbol=SYMBOL, at=at))["liquidationLevels"]
    assert named["at"] == aggregate["at"] == (ts + BAR).isoformat()
    for data in (named, aggregate):
        assert data["exchanges"] == data["coverage"]["exchanges"] == ["binanceusdm"]
        assert data["priceMin"] == b.first * b.bucket_size
        assert data["price"] == pytest.approx(b.price)  # no phantom venue in the mean price
        np.testing.assert_array_equal([lv["longUsd"] for lv in data["levels"]], b.long_usd)
        np.testing.assert_array_equal([lv["shortUsd"] for lv in data["levels"]], b.short_usd)
        assert data["totalLongUsd"] == pytest.approx(float(b.long_usd.sum(dtype=np.float64)))
        assert_excluded_for_lack_of_open_interest(stored, data["coverage"])
    # a venue without open interest has no map at all
    for scope in WITHOUT_OI:
        one = await gql.data(LEVELS, symbol=SYMBOL, exchanges=[scope], at=at)
        assert one["liquidationLevels"] is None


async def test_an_hourly_instant_picks_its_bar_and_a_venue_without_oi_stays_empty(
    gql: GraphQLClient, stored: Stored
) -> None:
    """At an hourly bar's close the total holds Binance's hourly map; Bybit alone has
    nothing to show there either."""
    ts = MID_WINDOW - timedelta(hours=1, minutes=5)  # an hourly bar (closes on the hour)
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


WITHIN = """
query ($w: Float, $lo: Float) {
  liquidationMap(symbol: "BTC/USDT:USDT", withinPct: $w, priceMin: $lo) {
    price priceMin priceMax totalLongUsd totalShortUsd modelVersion
    maxPainLong { price distancePct } maxPainShort { price distancePct }
  }
}
"""


async def test_the_default_map_is_the_full_v2_span_and_within_pct_narrows_it(
    gql: GraphQLClient, stored: Stored
) -> None:
    snap = stored.latest("all")
    full = (await gql.data(WITHIN))["liquidationMap"]
    assert full["modelVersion"] == snap.model_version == "oi-delta-cohorts-v3"
    price = full["price"]
    # the stored span reaches at least 30 % each side (v1 stopped at 10 %)
    assert full["priceMin"] <= price * 0.70 and full["priceMax"] >= price * 1.30
    assert full["totalLongUsd"] == pytest.approx(float(snap.long_usd.sum(dtype=np.float64)))
    # max pain sits inside the map, not on its edge
    for pain in (full["maxPainLong"], full["maxPainShort"]):
        assert 0 < pain["distancePct"] < 0.9 * 30
    near = (await gql.data(WITHIN, w=5.0))["liquidationMap"]
    lo, hi = price * 0.95, price * 1.05
    assert near["priceMin"] == 50.0 * (lo // 50) and near["priceMax"] == 50.0 * -(-hi // 50)
    inside = (snap.prices >= near["priceMin"]) & (snap.prices < near["priceMax"])
    assert near["totalLongUsd"] == pytest.approx(float(snap.long_usd[inside].sum(dtype=np.float64)))
    assert near["totalLongUsd"] < full["totalLongUsd"]
    # an explicit bound wins on its side
    lower = (await gql.data(WITHIN, w=5.0, lo=price * 0.9))["liquidationMap"]
    assert lower["priceMin"] == 50.0 * (price * 0.9 // 50)
    assert lower["priceMax"] == near["priceMax"]
    bad = await gql(WITHIN, w=0.0)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "withinPct" in bad["errors"][0]["message"]


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


async def test_a_market_without_open_interest_has_no_map(
    gql: GraphQLClient, stored: Stored
) -> None:
    """ETH/USDT:USDT has Binance candles and funding (January) but no open interest anywhere:
    the materializer made its series and stored nothing in them."""
    assert stored.unavailable("binanceusdm", ETH).keys() == {"open_interest"}
    assert (
        stored.one(
            "SELECT count(*) FROM candles WHERE market_id = %s",
            (stored.market_id("binanceusdm", ETH),),
        )
        > 0
    )
    assert (
        stored.one(
            "SELECT count(*) FROM heatmap_snapshots h JOIN heatmap_series s ON s.id = h.series_id "
            "WHERE s.symbol = %s",
            (ETH,),
        )
        == 0
    )
    assert (await gql.data(LEVELS, symbol=ETH))["liquidationLevels"] is None
