"""The map arithmetic (maps/levels.py, maps/grid.py) against brute-force loops over buckets,
written from the definitions in their docstrings: floor bucketing (never round), cumulative
curves summed outward from the price, max pain, walls, the split within a band, the grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maps import grid
from maps import levels as lv
from maps.grid import BucketVector, PriceGrid

FAST = settings(max_examples=150, deadline=None, database=None)


def vector(first: int, long_usd: list[float], short_usd: list[float]) -> BucketVector:
    return BucketVector(first, np.array(long_usd, np.float64), np.array(short_usd, np.float64))


def test_price_bucket_floors() -> None:
    # the upper part of a bucket still belongs to it: round() would move these up a bucket
    assert lv.price_bucket(199.9, 100.0) == 1
    assert lv.price_bucket(150.0, 100.0) == 1
    assert lv.price_bucket(100.0, 100.0) == 1  # a lower edge opens its bucket
    assert lv.price_bucket(99.999, 100.0) == 0
    assert lv.price_bucket(-0.5, 100.0) == -1  # floor, not truncation toward zero
    assert lv.price_bucket(67_249.99, 50.0) == 1344
    grid_ = PriceGrid(50.0)
    assert grid_.index_of_scalar(67_249.99) == 1344
    assert grid_.index_of([67_249.99, 67_250.0, -0.01]).tolist() == [1344, 1345, -1]
    offset = PriceGrid(10.0, origin=5.0)
    assert offset.index_of_scalar(14.99) == 0 and offset.index_of_scalar(15.0) == 1
    assert offset.index_of([4.99]).tolist() == [-1]


@FAST
@given(st.floats(-1e6, 1e6), st.sampled_from([0.5, 1.0, 2.0, 50.0, 100.0]))
def test_price_bucket_matches_math_floor(price: float, size: float) -> None:
    assert lv.price_bucket(price, size) == math.floor(price / size)
    assert PriceGrid(size).index_of_scalar(price) == math.floor(price / size)
    assert int(PriceGrid(size).index_of(price)) == math.floor(price / size)


def brute_cumulative(v: BucketVector, price: float, size: float) -> tuple[list[float], list[float]]:
    k = math.floor(price / size)
    n = v.long_usd.size
    cum_long, cum_short = [0.0] * n, [0.0] * n
    for i in range(n):
        index = v.first + i
        if index <= k:  # at or below the price's bucket: longs from here up to the price
            cum_long[i] = sum(v.long_usd[j] for j in range(i, n) if v.first + j <= k)
        if index >= k:  # at or above: shorts from the price's bucket up to here
            cum_short[i] = sum(v.short_usd[j] for j in range(0, i + 1) if v.first + j >= k)
    return cum_long, cum_short


@FAST
@given(
    st.integers(-5, 30),
    st.lists(st.tuples(st.floats(0, 1e6), st.floats(0, 1e6)), min_size=0, max_size=12),
    st.floats(-200, 3000),
)
def test_cumulative_outward_matches_a_brute_force_sum(
    first: int, values: list[tuple[float, float]], price: float
) -> None:
    v = vector(first, [a for a, _ in values], [b for _, b in values])
    cum_long, cum_short = lv.cumulative_outward(v, price, 100.0)
    want_long, want_short = brute_cumulative(v, price, 100.0)
    np.testing.assert_allclose(cum_long, want_long, rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(cum_short, want_short, rtol=1e-12, atol=1e-6)


def test_cumulative_outward_by_hand() -> None:
    # buckets 10..14 (prices 1000..1500), price 1250 in bucket 12 (which counts on both sides)
    v = vector(10, [1, 2, 3, 4, 5], [10, 20, 30, 40, 50])
    cum_long, cum_short = lv.cumulative_outward(v, 1250.0, 100.0)
    assert cum_long.tolist() == [6, 5, 3, 0, 0]
    assert cum_short.tolist() == [0, 0, 30, 70, 120]
    # price 1299.99: still bucket 12 (round would say 13)
    assert lv.cumulative_outward(v, 1299.99, 100.0)[0].tolist() == [6, 5, 3, 0, 0]
    # price below the window: no longs below it, every short above it
    below = lv.cumulative_outward(v, 500.0, 100.0)
    assert below[0].tolist() == [0] * 5 and below[1].tolist() == [10, 30, 60, 100, 150]
    above = lv.cumulative_outward(v, 9000.0, 100.0)
    assert above[0].tolist() == [15, 14, 12, 9, 5] and above[1].tolist() == [0] * 5


def test_max_pain_pays_the_most_per_percent_of_move() -> None:
    # grid step 10, price 55 (bucket 5); longs below: far edges 40, 30, 20 at moves 15, 25, 35
    # (bucket 5's edge 50 is 5 away, under a bucket: no candidate); cumulative 6, 7, 10
    # → per unit of move 6/15 = 0.4, 7/25 = 0.28, 10/35 = 0.29 → index 4
    longs = np.array([0.0, 0.0, 3.0, 1.0, 2.0, 4.0, 0.0, 0.0])
    got = lv.max_pain(longs, 0, 55.0, 10.0, downward=True)
    assert got is not None and (got.index, got.cumulative_usd) == (4, 6.0)
    assert got.distance == pytest.approx(15 / 55)
    assert got.usd_per_pct == pytest.approx(6.0 / (100 * 15 / 55))
    # shorts above: far edges 70 (move 15, cumulative 1 + 6) and 80 (25, still 7) → index 6
    shorts = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 6.0, 0.0])
    got = lv.max_pain(shorts, 0, 55.0, 10.0, downward=False)
    assert got is not None and (got.index, got.cumulative_usd) == (6, 7.0)
    # nothing to liquidate, or nothing at least a bucket away: no max pain
    assert lv.max_pain(np.zeros(3), 0, 15.0, 10.0, downward=True) is None
    assert lv.max_pain(np.zeros(0), 0, 15.0, 10.0, downward=False) is None
    # the window holds only the price's own bucket [10, 20), whose far edge is 5 away
    assert lv.max_pain(np.array([5.0]), 1, 15.0, 10.0, downward=True) is None
    # no price (0 or below): no move to measure, whatever the map holds
    for price in (0.0, -5.0):
        assert lv.max_pain(longs, 0, price, 10.0, downward=True) is None
    # half a dollar 25 below the price is still something to liquidate: index 0, a 100 % move
    got = lv.max_pain(np.array([0.5, 0.0, 0.0]), 0, 25.0, 10.0, downward=True)
    assert got is not None and (got.index, got.cumulative_usd, got.distance) == (0, 0.5, 1.0)


def test_intensity_scales_by_the_largest_bucket() -> None:
    v = vector(0, [1, 0, 3], [1, 4, 1])
    assert lv.intensity(v).tolist() == [0.5, 1.0, 1.0]
    assert lv.intensity(vector(0, [0, 0], [0, 0])).tolist() == [0.0, 0.0]
    assert lv.intensity(vector(0, [], [])).size == 0


def brute_walls(values: list[float], side: str) -> list[lv.Wall]:
    nonempty = [x for x in values if x > 0]
    if not nonempty:
        return []
    mean = sum(nonempty) / len(nonempty)
    out, i = [], 0
    while i < len(values):
        if values[i] >= mean:
            j = i
            while j < len(values) and values[j] >= mean:
                j += 1
            run = values[i:j]
            out.append(lv.Wall(side, i, j, sum(run), i + run.index(max(run))))
            i = j
        else:
            i += 1
    return sorted(out, key=lambda w: (-w.notional_usd, w.start))


@FAST
@given(st.lists(st.sampled_from([0.0, 1.0, 2.0, 5.0, 9.0]), max_size=15))
def test_walls_match_a_brute_force_scan(values: list[float]) -> None:
    found = lv.walls(np.array(values, np.float64), "LONG")
    assert found == brute_walls(values, "LONG")


def test_clusters_and_priced_walls_by_hand() -> None:
    # buckets 100..105 of 10 USD (prices 1000..1060); mean non-empty long = (4+4+1+9)/4 = 4.5
    v = vector(100, [4, 4, 0, 1, 9, 0], [0, 0, 0, 0, 0, 6])
    walls = lv.clusters(v, min_usd=0.0, limit=10)
    assert walls == [
        lv.Wall("LONG", 4, 5, 9.0, 4),
        lv.Wall("SHORT", 5, 6, 6.0, 5),
    ]
    assert lv.clusters(v, min_usd=7.0, limit=10) == [lv.Wall("LONG", 4, 5, 9.0, 4)]
    assert lv.clusters(v, min_usd=0.0, limit=1) == [lv.Wall("LONG", 4, 5, 9.0, 4)]
    priced = lv.priced_walls(v, 1025.0, 10.0, min_usd=0.0, limit=10)
    assert priced[0] == lv.PricedWall("LONG", 1040.0, 1050.0, 1040.0, 9.0, 100 * 15 / 1025)
    assert priced[1] == lv.PricedWall("SHORT", 1050.0, 1060.0, 1050.0, 6.0, 100 * 25 / 1025)
    inside = lv.priced_walls(v, 1045.0, 10.0, min_usd=0.0, limit=10)
    assert inside[0].distance_pct == 0.0  # the price inside the wall
    near = lv.walls_near(v, 1025.0, 10.0, within_pct=2.0, min_usd=0.0)
    assert [w.side for w in near] == ["LONG"]  # 1.46 % away; the short is 2.44 % away
    assert lv.walls_near(v, 1025.0, 10.0, within_pct=2.5, min_usd=0.0) == priced


def brute_split(v: BucketVector, price: float, size: float, pct: float) -> tuple[float, float]:
    low, high = price * (1 - pct / 100), price * (1 + pct / 100)
    long_usd = short_usd = 0.0
    for i in range(v.long_usd.size):
        a, b = (v.first + i) * size, (v.first + i + 1) * size
        covered = max(0.0, min(b, high) - max(a, low)) / size
        long_usd += v.long_usd[i] * covered
        short_usd += v.short_usd[i] * covered
    return long_usd, short_usd


@FAST
@given(
    st.integers(0, 40),
    st.lists(st.tuples(st.floats(0, 1e6), st.floats(0, 1e6)), min_size=1, max_size=12),
    st.floats(100, 5000),
    st.floats(0.01, 100),
)
def test_split_within_matches_a_brute_force_overlap(
    first: int, values: list[tuple[float, float]], price: float, pct: float
) -> None:
    v = vector(first, [a for a, _ in values], [b for _, b in values])
    got = lv.split_within(v, price, 100.0, pct)
    want = brute_split(v, price, 100.0, pct)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-6)


def test_split_by_hand_and_in_total() -> None:
    v = vector(9, [10, 20, 30], [1, 2, 3])  # buckets [900,1000), [1000,1100), [1100,1200)
    # ±5 % of 1000: [950, 1050] covers half of bucket 9 and half of bucket 10
    assert lv.split_within(v, 1000.0, 100.0, 5.0) == pytest.approx((15.0, 1.5))
    other = vector(0, [4], [8])  # bucket [0, 100): price 50, ±100 % covers all of it
    split = lv.long_short_split([(v, 1000.0, 100.0), (other, 50.0, 100.0)], 5.0)
    assert split.price == 525.0
    assert split.parts[1] == lv.SideTotals(pytest.approx(0.2), pytest.approx(0.4))  # ±2.5 USD
    assert split.total.long_usd == pytest.approx(15.2)
    assert split.total.short_usd == pytest.approx(1.9)
    assert split.total.ratio == pytest.approx(15.2 / 1.9)
    assert lv.ratio(3.0, 0.0) is None and lv.ratio(3.0, 2.0) == 1.5


def test_grid_edges_windows_and_origin() -> None:
    g = PriceGrid(50.0)
    assert g.lower_price([0, 3, -1]).tolist() == [0.0, 150.0, -50.0]
    assert g.center_price([0, 3]).tolist() == [25.0, 175.0]
    assert PriceGrid(10.0, origin=5.0).lower_price([2]).tolist() == [25.0]
    assert PriceGrid(10.0, origin=5.0).center_price([2]).tolist() == [30.0]
    # ±10 % of 1000 on a 50 grid: [900, 1100] → buckets 18..22 → [18, 23)
    assert g.window(1000.0, 0.10) == (18, 23)
    assert g.window(1010.0, 0.0) == (20, 21)
    assert grid.origin_index(1350.0, 50.0) == 27
    assert grid.origin_index(1349.9999999, 50.0) == 27  # origins are grid multiples: round
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="bucket_size"):
            PriceGrid(bad)
    with pytest.raises(ValueError, match="origin"):
        PriceGrid(1.0, origin=math.nan)


def test_window_and_sum_of_vectors_by_hand() -> None:
    a = vector(3, [1, 2, 3], [4, 5, 6])  # buckets 3..5
    b = vector(5, [10, 20], [30, 40])  # buckets 5..6
    cut = grid.window(a, 2, 5)
    assert (cut.first, cut.long_usd.tolist(), cut.short_usd.tolist()) == (2, [0, 1, 2], [0, 4, 5])
    assert grid.window(a, 7, 9).long_usd.tolist() == [0, 0]  # outside: zeros
    assert a.end == 6 and b.end == 7
    total = grid.add_vectors([a, b])
    assert (total.first, total.long_usd.tolist(), total.short_usd.tolist()) == (
        3,
        [1, 2, 13, 20],
        [4, 5, 36, 40],
    )
    converted = grid.add_vectors([a, b], [2.0, 0.5])
    assert converted.long_usd.tolist() == [2, 4, 11, 10]
    assert grid.add_vectors([]).long_usd.size == 0
    with pytest.raises(ValueError, match="one usd_per_unit"):
        grid.add_vectors([a, b], [1.0])


def test_place_columns_clips_to_the_rows() -> None:
    m = grid.place_columns(3, 2, 10, [(0, 9, np.array([1.0, 2, 3])), (1, 12, np.array([4.0, 5]))])
    assert m.tolist() == [[2, 0], [3, 0], [0, 4]]
    assert m.dtype == np.float32
    assert grid.place_columns(2, 1, 0, [(0, 5, np.array([1.0]))]).tolist() == [[0], [0]]


def test_small_values_and_exact_thresholds() -> None:
    """Values under 1 USD and thresholds met exactly (mutants compared against 1 or used > for
    >= and survived the tests above)."""
    assert lv.intensity(vector(0, [0.25, 0.0], [0.25, 0.5])).tolist() == [1.0, 1.0]
    assert lv.intensity(vector(0, [0.1, 0.0], [0.0, 0.4])).tolist() == [0.25, 1.0]
    assert lv.ratio(1.0, 0.5) == 2.0
    v = vector(100, [4, 4, 0, 1, 9, 0], [0, 0, 0, 0, 0, 6])
    # a wall of exactly min_usd is kept; one exactly within_pct away is near
    assert [w.notional_usd for w in lv.clusters(v, min_usd=9.0, limit=10)] == [9.0]
    near = lv.walls_near(v, 1025.0, 10.0, within_pct=100 * 15 / 1025, min_usd=0.0)
    assert [w.side for w in near] == ["LONG"]


def test_rebucket_keeps_a_single_bucket_and_exact_shapes() -> None:
    single = grid.rebucket(vector(7, [3.0], [4.0]), 5)  # bucket 7 → merged bucket 1
    assert (single.first, single.long_usd.tolist(), single.short_usd.tolist()) == (1, [3.0], [4.0])
    for first_row, rows, factor in ((1195, 40, 7), (0, 1, 3), (-9, 20, 4), (5, 10, 10**10)):
        matrix = np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)
        merged, first = grid.rebucket_rows(matrix, first_row, factor)
        groups = [(first_row + i) // factor for i in range(rows)]
        assert first == min(groups)
        assert merged.shape == (max(groups) - min(groups) + 1, 2)
        for g in set(groups):
            members = [i for i in range(rows) if groups[i] == g]
            np.testing.assert_allclose(merged[g - first], matrix[members].sum(axis=0), rtol=1e-6)


def test_sums_of_vectors_convert_both_sides_and_start_empty() -> None:
    a = vector(3, [1, 2, 3], [4, 5, 6])
    b = vector(5, [10, 20], [30, 40])
    converted = grid.add_vectors([a, b], [2.0, 0.5])
    assert converted.short_usd.tolist() == [8, 10, 27, 20]
    empty = grid.add_vectors([])
    assert empty.first == 0 and empty.long_usd.size == 0 and empty.short_usd.size == 0
