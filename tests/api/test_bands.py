"""Leverage bands through the API, on the real materialized data: the levels' band fields sum
to the levels, the band filter of heatmap, and its error on maps stored without bands."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from maps import compact
from tests.api.conftest import GraphQLClient
from tests.api.pipeline import Stored, band_rows
from tests.api.test_heatmap import decode

LABELS = ["1-10", "11-25", "26-50", "51-100", "101+"]
ALL = ["UP_TO_10X", "FROM_10X_TO_25X", "FROM_25X_TO_50X", "FROM_50X_TO_100X", "ABOVE_100X"]

# Stored values are float32: a level's total and each band are roundings of float64 sums of the
# same engine units, so |Σ bands − total| ≤ 2⁻²⁴·(Σ bands + total) ≈ 1.2e-7 relative per level
# (summing exchanges and re-bucketing add only float64 noise). 3e-7 leaves room for that.
FLOAT32_RTOL = 3e-7

MAP = """
query ($at: DateTime, $lo: Float, $hi: Float) {
  liquidationLevels(symbol: "BTC/USDT:USDT", at: $at, priceMin: $lo, priceMax: $hi) {
    at price modelVersion leverageBands totalLongUsd totalShortUsd
    levels { price longUsd shortUsd longUsdByLeverage shortUsdByLeverage }
  }
}
"""

HEATMAP = """
query ($start: DateTime!, $end: DateTime, $lo: Float, $hi: Float, $leverage: [LeverageBand!]) {
  heatmap(symbol: "BTC/USDT:USDT", start: $start, end: $end, interval: FIVE_MINUTES,
          priceMin: $lo, priceMax: $hi, leverage: $leverage) {
    start end columns rows priceMin priceStep maxUsd filledColumns leverageBands long short
  }
}
"""


async def test_level_bands_sum_to_the_levels_and_match_the_stored_blob(
    gql: GraphQLClient, stored: Stored
) -> None:
    data = (await gql.data(MAP))["liquidationLevels"]
    assert data["modelVersion"] == "oi-delta-cohorts-v3"
    assert data["leverageBands"] == LABELS
    levels = data["levels"]
    longs = np.array([lv["longUsd"] for lv in levels])
    shorts = np.array([lv["shortUsd"] for lv in levels])
    long_by = np.array([lv["longUsdByLeverage"] for lv in levels])
    short_by = np.array([lv["shortUsdByLeverage"] for lv in levels])
    assert long_by.shape == (len(levels), 5)
    np.testing.assert_allclose(long_by.sum(axis=1), longs, rtol=FLOAT32_RTOL, atol=1e-9)
    np.testing.assert_allclose(short_by.sum(axis=1), shorts, rtol=FLOAT32_RTOL, atol=1e-9)
    assert long_by.sum() == pytest.approx(data["totalLongUsd"], rel=FLOAT32_RTOL)
    assert (long_by.sum(axis=0) > 0).all() and (short_by.sum(axis=0) > 0).all()
    # the same numbers from the stored row: its blob decoded field by field, spread like the
    # totals over each stored bucket's grid buckets
    snap = stored.latest("all")
    blob, fine, center, q0, size = stored.one(
        "SELECT band_usd, fine_buckets, center_index, compact_first, cardinality(long_usd) "
        "FROM heatmap_snapshots WHERE series_id = %s AND resolution = %s AND ts = %s",
        (stored.series_id("all"), snap.resolution, snap.ts),
    )
    rows = band_rows(bytes(blob), size).astype(np.float64)
    for band in range(5):
        for side, got in ((0, long_by[:, band]), (5, short_by[:, band])):
            grid = compact.decode(
                compact.CompactVector(center, fine, q0, rows[side + band], rows[side + band])
            )
            assert grid.first == snap.first
            np.testing.assert_allclose(got, grid.long_usd, rtol=1e-12, atol=0)


async def test_a_heatmap_of_every_band_is_the_unfiltered_one(
    gql: GraphQLClient, stored: Stored
) -> None:
    end = stored.latest("all").at.replace(minute=0)
    start = end - timedelta(hours=6)
    window = {"start": start.isoformat(), "end": end.isoformat()}
    plain = (await gql.data(HEATMAP, **window))["heatmap"]
    every = (await gql.data(HEATMAP, **window, leverage=ALL))["heatmap"]
    assert plain["leverageBands"] == every["leverageBands"] == LABELS
    assert every == plain  # byte for byte: the totals path
    # and the five single-band heatmaps add up to it, cell by cell (float32 sums)
    shape = (plain["rows"], plain["columns"])
    total_long = decode(plain["long"], *shape).astype(np.float64)
    summed = np.zeros(shape)
    for band, label in zip(ALL, LABELS, strict=True):
        one = (await gql.data(HEATMAP, **window, leverage=[band]))["heatmap"]
        assert one["leverageBands"] == [label]
        assert (one["rows"], one["columns"], one["priceMin"]) == (*shape, plain["priceMin"])
        summed += decode(one["long"], *shape)
    assert total_long.sum() > 0
    # per cell: float32 band sums vs the float32 total, plus the float32 rounding of each band
    np.testing.assert_allclose(summed, total_long, rtol=6e-7, atol=1e-3)


async def test_a_high_leverage_heatmap_equals_the_levels_bands(
    gql: GraphQLClient, stored: Stored
) -> None:
    end = stored.latest("all").at.replace(minute=0)
    start = end - timedelta(hours=2)
    price = stored.latest("all", end).price
    lo, hi = 50.0 * (price * 0.9 // 50), 50.0 * (price * 1.1 // 50)
    high = (
        await gql.data(
            HEATMAP,
            start=start.isoformat(),
            end=end.isoformat(),
            lo=lo,
            hi=hi,
            leverage=["FROM_50X_TO_100X", "ABOVE_100X"],
        )
    )["heatmap"]
    assert high["leverageBands"] == ["51-100", "101+"]
    shape = (high["rows"], high["columns"])
    long_m, short_m = decode(high["long"], *shape), decode(high["short"], *shape)
    # column j holds the map at the close of its interval: compare a few columns with the map
    for j in (0, shape[1] // 2, shape[1] - 1):
        at = start + timedelta(seconds=300 * (j + 1))
        top = high["priceMin"] + shape[0] * high["priceStep"]  # the rows' upper edge
        found = await gql.data(MAP, at=at.isoformat(), lo=high["priceMin"], hi=top)
        levels = found["liquidationLevels"]["levels"]
        assert len(levels) == shape[0] and levels[0]["price"] == high["priceMin"]
        want_long = np.array([sum(lv["longUsdByLeverage"][3:]) for lv in levels])
        want_short = np.array([sum(lv["shortUsdByLeverage"][3:]) for lv in levels])
        assert want_long.sum() > 0 and want_short.sum() > 0
        # the heatmap sends float32 of the same float64 sums
        np.testing.assert_allclose(long_m[:, j], want_long, rtol=1.2e-7, atol=1e-6)
        np.testing.assert_allclose(short_m[:, j], want_short, rtol=1.2e-7, atol=1e-6)
    # near the price the high bands hold less than the whole map but a real share of it
    plain = (await gql.data(HEATMAP, start=start.isoformat(), end=end.isoformat(), lo=lo, hi=hi))[
        "heatmap"
    ]
    whole = decode(plain["long"], *shape)
    assert 0 < long_m.sum() < whole.sum()


FILTERED = """
query ($at: DateTime, $leverage: [LeverageBand!]) {
  liquidationMap(symbol: "BTC/USDT:USDT", at: $at, leverage: $leverage) {
    at price bucketSize leverageBands totalLongUsd totalShortUsd
    levels { price priceHigh longUsd shortUsd longUsdByLeverage shortUsdByLeverage }
    maxPainLong { price cumulativeUsd usdPerPct }
    maxPainShort { price cumulativeUsd usdPerPct }
  }
}
"""
SNAPSHOTS = """
query ($start: DateTime!, $leverage: [LeverageBand!]) {
  snapshots(symbol: "BTC/USDT:USDT", start: $start, first: 3, leverage: $leverage) {
    edges { node { at leverageBands totalLongUsd totalShortUsd } }
  }
}
"""


def brute_max_pain(levels: list[dict], price: float, side: str) -> tuple[float, float]:
    """(far edge, USD per percent) of the side's max pain from the levels alone: every level
    at or beyond the price's, the USD from the price's level out to it over the distance to its
    far edge, the largest ratio (the nearest level on a tie); a level less than one bucket
    away does not count."""
    bucket = levels[0]["priceHigh"] - levels[0]["price"]
    best: tuple[float, float] | None = None
    here = next(i for i, lv in enumerate(levels) if lv["price"] <= price < lv["priceHigh"])
    reach = range(here, -1, -1) if side == "long" else range(here, len(levels))
    cumulative = 0.0
    for i in reach:
        cumulative += levels[i][f"{side}Usd"]
        edge = levels[i]["price"] if side == "long" else levels[i]["priceHigh"]
        distance = abs(edge - price) / price
        if distance * price < bucket * (1 - 1e-9) or cumulative <= 0:
            continue
        ratio = cumulative / (100 * distance)
        if best is None or ratio > best[1] * (1 + 1e-9):
            best = (edge, ratio)
    assert best is not None
    return best


async def test_a_map_of_some_leverage_bands_is_the_map_of_those_bands_alone(
    gql: GraphQLClient, stored: Stored
) -> None:
    """liquidationMap(leverage:) is the map of those bands: each level the sum of those bands of
    the whole map's level, the totals their sums, max pain found on them by brute force; every
    band is the whole map, byte for byte."""
    whole = (await gql.data(FILTERED))["liquidationMap"]
    two = (await gql.data(FILTERED, leverage=["UP_TO_10X", "FROM_50X_TO_100X"]))["liquidationMap"]
    assert two["leverageBands"] == ["1-10", "51-100"]
    assert (two["at"], two["price"], two["bucketSize"]) == (
        whole["at"],
        whole["price"],
        whole["bucketSize"],
    )
    by_price = {lv["price"]: lv for lv in whole["levels"]}
    for lv in two["levels"]:
        w = by_price[lv["price"]]
        for side in ("long", "short"):
            bands = w[f"{side}UsdByLeverage"]
            assert lv[f"{side}UsdByLeverage"] == pytest.approx([bands[0], bands[3]], rel=1e-12)
            assert lv[f"{side}Usd"] == pytest.approx(bands[0] + bands[3], rel=1e-12, abs=1e-9)
    for side in ("Long", "Short"):
        total = sum(lv[f"{side.lower()}Usd"] for lv in two["levels"])
        assert two[f"total{side}Usd"] == pytest.approx(total, rel=1e-9)
        assert 0 < two[f"total{side}Usd"] < whole[f"total{side}Usd"]
        at, per_pct = brute_max_pain(two["levels"], two["price"], side.lower())
        pain = two[f"maxPain{side}"]
        assert pain["price"] == at and pain["usdPerPct"] == pytest.approx(per_pct, rel=1e-9)
    # the low band's max pain is not the whole map's: the filter moves it
    assert (two["maxPainLong"], two["maxPainShort"]) != (
        whole["maxPainLong"],
        whole["maxPainShort"],
    )
    assert (await gql.data(FILTERED, leverage=ALL))["liquidationMap"] == whole
    # the same filter over history
    start = (stored.latest("all").at - timedelta(hours=3)).isoformat()
    plain = (await gql.data(SNAPSHOTS, start=start))["snapshots"]["edges"]
    high = (await gql.data(SNAPSHOTS, start=start, leverage=["ABOVE_100X"]))["snapshots"]["edges"]
    assert [e["node"]["at"] for e in high] == [e["node"]["at"] for e in plain]
    for p, h in zip(plain, high, strict=True):
        assert h["node"]["leverageBands"] == ["101+"]
        assert 0 < h["node"]["totalLongUsd"] < p["node"]["totalLongUsd"]
    empty = await gql(FILTERED, leverage=[])
    assert empty["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_band_filter_on_maps_without_bands_is_refused(
    gql: GraphQLClient, stored: Stored
) -> None:
    """A v2 snapshot (no band blob) in the range: NO_LEVERAGE_BANDS; unfiltered reads still
    work and its map says it has no bands."""
    snap = stored.latest("all")
    sid = stored.series_id("all")
    key = (sid, snap.resolution, snap.ts)
    (blob,) = stored.rows(
        "SELECT band_usd FROM heatmap_snapshots WHERE series_id = %s AND resolution = %s "
        "AND ts = %s",
        key,
    )[0]
    window = {
        "start": (snap.at - timedelta(minutes=30)).isoformat(),
        "end": (snap.at + timedelta(minutes=5)).isoformat(),
    }
    try:
        stored.execute(
            "UPDATE heatmap_snapshots SET band_usd = NULL, model_version = 'oi-delta-cohorts-v2' "
            "WHERE series_id = %s AND resolution = %s AND ts = %s",
            key,
        )
        body = await gql(HEATMAP, **window, leverage=["ABOVE_100X"])
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "NO_LEVERAGE_BANDS"
        assert "model v1/v2" in error["message"]
        assert body["data"] is None
        assert (await gql.data(HEATMAP, **window))["heatmap"]["filledColumns"] > 0
        assert (await gql.data(HEATMAP, **window, leverage=ALL))["heatmap"]["filledColumns"] > 0
        old = (await gql.data(MAP, at=snap.at.isoformat()))["liquidationLevels"]
        assert old["modelVersion"] == "oi-delta-cohorts-v2" and old["leverageBands"] == []
        assert all(lv["longUsdByLeverage"] is None for lv in old["levels"])
        refused = await gql(FILTERED, at=snap.at.isoformat(), leverage=["ABOVE_100X"])
        assert refused["errors"][0]["extensions"]["code"] == "NO_LEVERAGE_BANDS"
        empty = await gql(HEATMAP, **window, leverage=[])
        assert empty["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    finally:
        stored.execute(
            "UPDATE heatmap_snapshots SET band_usd = %s, model_version = %s "
            "WHERE series_id = %s AND resolution = %s AND ts = %s",
            (blob, snap.model_version, *key),
        )


async def test_band_fields_asked_for_through_fragments(gql: GraphQLClient, stored: Stored) -> None:
    plain = (await gql.data(MAP))["liquidationLevels"]["levels"]
    query = """
    fragment Bands on LiquidationLevel { longUsdByLeverage }
    query { liquidationLevels(symbol: "BTC/USDT:USDT") {
      levels { price ...Bands ... on LiquidationLevel { shortUsdByLeverage } } } }
    """
    levels = (await gql.data(query))["liquidationLevels"]["levels"]
    assert [lv["longUsdByLeverage"] for lv in levels] == [lv["longUsdByLeverage"] for lv in plain]
    assert [lv["shortUsdByLeverage"] for lv in levels] == [lv["shortUsdByLeverage"] for lv in plain]
