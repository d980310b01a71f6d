"""A map as a client asked for it: exchanges summed, re-bucketed, windowed, read in prices.

Every expectation is worked out by hand on small vectors (grid step 10 unless said otherwise).
"""

from __future__ import annotations

import numpy as np
import pytest

from maps import grid
from maps.errors import MapRequestError, TooManyLevels
from maps.grid import BucketVector
from maps.view import MapView, level_window, map_view


def vec(first: int, long_usd: list[float], short_usd: list[float] | None = None) -> BucketVector:
    short = [0.0] * len(long_usd) if short_usd is None else short_usd
    return BucketVector(first, np.array(long_usd, np.float64), np.array(short, np.float64))


def test_rebucketing_a_known_vector_merges_grid_aligned_pairs() -> None:
    # grid buckets 3..7 hold 1..5; new bucket k = old [2k, 2k+2): 1 = [2,4) → 0+1, 2 = [4,6) →
    # 2+3, 3 = [6,8) → 4+5
    merged = grid.rebucket(vec(3, [1, 2, 3, 4, 5]), 2)
    assert merged.first == 1
    assert merged.long_usd.tolist() == [1.0, 5.0, 9.0]
    view = map_view(
        [vec(3, [1, 2, 3, 4, 5])],
        [45.0],
        10.0,
        bucket_size=20.0,
        price_min=None,
        price_max=None,
        max_levels=100,
    )
    assert (view.bucket_size, view.price_min, view.price_max) == (20.0, 20.0, 80.0)
    assert view.vector.long_usd.tolist() == [1.0, 5.0, 9.0]
    assert view.total_long_usd == 15.0  # sums are preserved


def test_exchanges_are_summed_on_the_shared_grid_at_their_mean_price() -> None:
    view = map_view(
        [vec(2, [1, 1], [0, 2]), vec(3, [2, 2], [1, 0])],
        [100.0, 102.0],
        10.0,
        bucket_size=None,
        price_min=None,
        price_max=None,
        max_levels=100,
    )
    assert view.vector.first == 2
    assert view.vector.long_usd.tolist() == [1.0, 3.0, 2.0]
    assert view.vector.short_usd.tolist() == [0.0, 3.0, 0.0]
    assert view.price == 101.0
    assert (view.total_long_usd, view.total_short_usd, view.max_usd) == (6.0, 3.0, 6.0)


@pytest.mark.parametrize(
    ("price_min", "price_max", "first", "end"),
    [
        (35.0, 61.0, 3, 7),  # the buckets holding 35 and 61: [30, 70)
        (30.0, 70.0, 3, 7),  # edges on the grid are the window's edges, not one bucket more
        (None, 45.0, 2, 5),  # an omitted bound: the vector's own extent (it starts at 2)
        (80.0, None, 8, 8),  # nothing above the vector's end (6): an empty window
    ],
)
def test_window_edges(
    price_min: float | None, price_max: float | None, first: int, end: int
) -> None:
    assert level_window(vec(2, [1, 2, 3, 4]), 10.0, price_min, price_max, 100) == (first, end)


def test_window_edges_survive_binary_fractions() -> None:
    # 0.3 / 0.1 = 2.9999999999999996 and 0.7 / 0.1 = 6.999999999999999: still buckets 3 and 7
    assert level_window(vec(0, [1.0] * 10), 0.1, 0.3, 0.7, 100) == (3, 7)


def test_a_window_wider_than_the_vector_is_zero_padded() -> None:
    view = map_view(
        [vec(4, [5, 6])],
        [45.0],
        10.0,
        bucket_size=None,
        price_min=20.0,
        price_max=80.0,
        max_levels=100,
    )
    assert view.vector.first == 2
    assert view.vector.long_usd.tolist() == [0.0, 0.0, 5.0, 6.0, 0.0, 0.0]
    assert (view.price_min, view.price_max) == (20.0, 80.0)


def test_too_many_levels_names_the_limit() -> None:
    with pytest.raises(TooManyLevels) as refused:
        level_window(vec(0, [1.0] * 10), 10.0, 0.0, 40.0, 3)
    assert str(refused.value) == (
        "4 price levels exceed the maximum of 3; narrow priceMin/priceMax or use a larger "
        "bucketSize"
    )
    assert (refused.value.limit, refused.value.maximum) == ("max_levels", 3)
    assert isinstance(refused.value, MapRequestError)


def test_a_bad_bucket_size_is_refused_before_any_arithmetic() -> None:
    with pytest.raises(MapRequestError, match="multiple of the stored grid step 10"):
        map_view(
            [vec(0, [1.0])],
            [5.0],
            10.0,
            bucket_size=15.0,
            price_min=None,
            price_max=None,
            max_levels=100,
        )


# price 55 sits in bucket 5 ([50, 60)); longs below, shorts above
HAND = MapView(
    vec(0, [0, 0, 3, 1, 2, 4, 0, 0], [0, 0, 0, 0, 0, 1, 6, 0]), bucket_size=10.0, price=55.0
)


def test_levels_in_prices_with_cumulative_curves_and_intensity() -> None:
    t = HAND.levels()
    assert t.price.tolist() == [0, 10, 20, 30, 40, 50, 60, 70]
    assert t.price_high.tolist() == [10, 20, 30, 40, 50, 60, 70, 80]
    # longs summed from bucket 5 downward: 4, 4+2, +1, +3, +0, +0
    assert t.cumulative_long_usd.tolist() == [10, 10, 10, 7, 6, 4, 0, 0]
    # shorts summed from bucket 5 upward: 1, 1+6, +0
    assert t.cumulative_short_usd.tolist() == [0, 0, 0, 0, 0, 1, 7, 7]
    # long + short = [0, 0, 3, 1, 2, 5, 6, 0], divided by the largest (6)
    assert t.intensity.tolist() == pytest.approx([0, 0, 0.5, 1 / 6, 1 / 3, 5 / 6, 1, 0])


def test_max_pain_on_the_hand_map_is_the_best_pay_off_per_percent() -> None:
    # price 55; longs: buckets 4 (2), 3 (1), 2 (3) below, 5 (4) holds the price.
    # far edges and moves: bucket 4 → 40, 15/55; 3 → 30, 25/55; 2 → 20, 35/55 (bucket 5's
    # far edge 50 is only 5 away, less than a bucket: not a candidate).
    # cumulative: 4+2 = 6, +1 = 7, +3 = 10 → per % of move: 6/(1500/55) = 0.22,
    # 7/(2500/55) = 0.154, 10/(3500/55) = 0.157 → bucket 4, price 40
    long = HAND.max_pain_long()
    assert long is not None
    assert (long.price, long.cumulative_usd) == (40.0, 6.0)
    assert long.distance_pct == pytest.approx(100 * 15 / 55)
    assert long.usd_per_pct == pytest.approx(6.0 / (100 * 15 / 55))
    # shorts: bucket 5 (1) holds the price (far edge 60, 5 away: not a candidate), bucket 6
    # (6) far edge 70: 7 over 15/55; bucket 7 (0) far edge 80: 7 over 25/55 → bucket 6
    short = HAND.max_pain_short()
    assert short is not None and (short.price, short.cumulative_usd) == (70.0, 7.0)
    empty = MapView(vec(0, [0.0, 0.0]), 10.0, 5.0)
    assert empty.max_pain_long() is None and empty.max_pain_short() is None


def _side_map(long_by_distance: dict[int, float]) -> MapView:
    """Longs only, price 1000 on grid step 10 (bucket 100 starts at the price): bucket
    ``100 - d`` (d buckets below the price, far edge ``1000 - 10·d``) holds the given USD."""
    values = np.zeros(200)
    for d, usd in long_by_distance.items():
        values[100 - d] = usd
    shorts = values[::-1].copy()  # the mirror image above: bucket 99 + d
    return MapView(BucketVector(0, values, shorts), 10.0, 1000.0)


def test_max_pain_of_a_single_wall_is_the_wall() -> None:
    view = _side_map({30: 5e6})  # one wall 3 % below (far edge 700 → 1000 - 300)
    long = view.max_pain_long()
    assert long is not None
    assert (long.price, long.cumulative_usd, long.distance_pct) == (700.0, 5e6, 30.0)
    assert long.usd_per_pct == pytest.approx(5e6 / 30.0)
    # the mirrored wall above: bucket 129 = [1290, 1300), far edge 1300, 30 % away
    short = view.max_pain_short()
    assert short is not None and (short.price, short.cumulative_usd) == (1300.0, 5e6)


@pytest.mark.parametrize(
    ("near_usd", "far_usd", "expected_d"),
    [
        # near wall 2 buckets (2 %) away, far wall 10 buckets (10 %) away
        (1e6, 3e6, 2),  # near: 1e6/2 = 5e5 per %; far: 4e6/10 = 4e5 per % → near
        (1e6, 5e6, 10),  # far: 6e6/10 = 6e5 per % beats 5e5 → far
        (1e6, 4e6, 2),  # 5e6/10 = 5e5 per %: a tie, the nearest
    ],
)
def test_max_pain_of_two_walls_pays_the_most_per_percent(
    near_usd: float, far_usd: float, expected_d: int
) -> None:
    view = _side_map({2: near_usd, 10: far_usd})
    long = view.max_pain_long()
    assert long is not None
    assert long.price == 1000.0 - 10 * expected_d
    assert long.cumulative_usd == (near_usd if expected_d == 2 else near_usd + far_usd)


@pytest.mark.parametrize(
    ("near_usd", "far_usd", "expected_d"), [(1e6, 3e6, 2), (1e6, 5e6, 10), (1e6, 4e6, 2)]
)
def test_max_pain_of_two_short_walls_pays_the_most_per_percent(
    near_usd: float, far_usd: float, expected_d: int
) -> None:
    # the mirror image above the price: wall d buckets up is bucket 99 + d, far edge 1000 + 10·d;
    # the same pay-offs per percent, the tie again to the nearest
    view = _side_map({2: near_usd, 10: far_usd})
    short = view.max_pain_short()
    assert short is not None
    assert short.price == 1000.0 + 10 * expected_d
    assert short.cumulative_usd == (near_usd if expected_d == 2 else near_usd + far_usd)


def test_max_pain_away_from_grid_bucket_zero_and_below_one_dollar() -> None:
    # HAND moved up 100 buckets (price 1055 in bucket 105): the same absolute moves, so the
    # same ranking over one price → bucket 104, far edge 1040, 6 USD over 15/1055
    moved = MapView(
        vec(100, [0, 0, 3, 1, 2, 4, 0, 0], [0, 0, 0, 0, 0, 1, 6, 0]), bucket_size=10.0, price=1055.0
    )
    long, short = moved.max_pain_long(), moved.max_pain_short()
    assert long is not None and (long.price, long.cumulative_usd) == (1040.0, 6.0)
    assert long.distance_pct == pytest.approx(100 * 15 / 1055)
    assert short is not None and (short.price, short.cumulative_usd) == (1070.0, 7.0)
    # HAND scaled down 100 times (a coin worth cents): price 0.55, buckets of 0.1
    cents = MapView(
        vec(0, [0, 0, 3, 1, 2, 4, 0, 0], [0, 0, 0, 0, 0, 1, 6, 0]), bucket_size=0.1, price=0.55
    )
    long = cents.max_pain_long()
    assert long is not None and long.cumulative_usd == 6.0
    assert long.price == pytest.approx(0.4) and long.distance_pct == pytest.approx(100 * 15 / 55)


def test_max_pain_of_a_flat_map_is_the_nearest_level() -> None:
    # every bucket below the price holds the same: reaching d buckets liquidates d × 1e5 over
    # a d % move, the same per percent everywhere → the nearest, one bucket below
    view = _side_map(dict.fromkeys(range(1, 100), 1e5))
    long = view.max_pain_long()
    assert long is not None and (long.price, long.cumulative_usd) == (990.0, 1e5)
    # a flat map that only starts 5 buckets away: the pay-off per percent grows with the reach
    # (d − 4)/d, so the far end wins, and nothing nearer than the first level counts
    view = _side_map(dict.fromkeys(range(5, 100), 1e5))
    long = view.max_pain_long()
    assert long is not None and long.price == 10.0 and long.cumulative_usd == 95 * 1e5


def test_max_pain_is_not_the_window_edge_when_a_near_wall_pays_off() -> None:
    # the v1 definition (the largest cumulative value) was always the far end of the window
    # (bucket 1, far edge 10); a 1 % wall of 2e6 over a sparse tail pays more per percent
    view = _side_map({1: 2e6, **dict.fromkeys(range(2, 100), 1e4)})
    long = view.max_pain_long()
    assert long is not None and long.price == 990.0


def test_walls_in_prices_biggest_first() -> None:
    # long mean of non-empty buckets (3+1+2+4)/4 = 2.5: walls at bucket 2 (3) and 5 (4);
    # short mean (1+6)/2 = 3.5: a wall at bucket 6 (6)
    walls = HAND.clusters(min_usd=0.0, limit=10)
    assert [(w.side, w.price_low, w.price_high, w.peak_price, w.notional_usd) for w in walls] == [
        ("SHORT", 60.0, 70.0, 60.0, 6.0),
        ("LONG", 50.0, 60.0, 50.0, 4.0),
        ("LONG", 20.0, 30.0, 20.0, 3.0),
    ]
    # distances from 55: 5/55 above, inside, 25/55 below
    assert [w.distance_pct for w in walls] == pytest.approx([100 * 5 / 55, 0.0, 100 * 25 / 55])
    assert [w.notional_usd for w in HAND.clusters(min_usd=3.5, limit=10)] == [6.0, 4.0]
    assert len(HAND.clusters(min_usd=0.0, limit=1)) == 1
