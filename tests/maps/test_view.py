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


def test_max_pain_is_where_the_cumulative_curve_first_peaks_moving_away() -> None:
    # long: 10 is reached at bucket 2 going down (and stays 10 at 1 and 0)
    long = HAND.max_pain_long()
    assert long is not None and (long.price, long.cumulative_usd) == (20.0, 10.0)
    # short: 7 is reached at bucket 6 going up (and stays 7 at 7)
    short = HAND.max_pain_short()
    assert short is not None and (short.price, short.cumulative_usd) == (60.0, 7.0)
    empty = MapView(vec(0, [0.0, 0.0]), 10.0, 5.0)
    assert empty.max_pain_long() is None and empty.max_pain_short() is None


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
