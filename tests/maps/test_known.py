"""Known levels as buckets: hand-built positions and bins, summed and split by hand."""

from __future__ import annotations

import numpy as np
import pytest

from maps.distance import vector_profile
from maps.errors import MapRequestError
from maps.grid import BucketVector
from maps.known import (
    LEVERAGE_BANDS,
    bin_positions,
    check_bucket_size,
    group_bins,
    known_profile,
    leverage_band,
)


def test_leverage_bands_are_the_recorded_sources() -> None:
    assert LEVERAGE_BANDS == ("1-10", "11-25", "26-50", "51+")
    bands = leverage_band(np.array([1.0, 10.0, 10.5, 25.0, 26.0, 50.0, 51.0, 200.0, np.nan]))
    assert bands.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, -1]


def test_positions_are_summed_in_the_bucket_of_their_liquidation_price() -> None:
    # buckets of 100: [900, 1000) holds a 5x long and a 20x long; [1000, 1100) a 50x short;
    # [1200, 1300) a long of unknown leverage (in the total, in no band)
    table = bin_positions(
        prices=np.array([950.0, 999.99, 1000.0, 1250.0]),
        is_long=np.array([True, True, False, True]),
        usd=np.array([10.0, 30.0, 7.0, 2.0]),
        leverage=np.array([5.0, 20.0, 50.0, np.nan]),
        bucket_size=100.0,
    )
    assert table.price.tolist() == [900.0, 1000.0, 1200.0]
    assert table.price_high.tolist() == [1000.0, 1100.0, 1300.0]
    assert table.long_usd.tolist() == [40.0, 0.0, 2.0]
    assert table.short_usd.tolist() == [0.0, 7.0, 0.0]
    assert table.long_by_band.tolist() == [[10.0, 30.0, 0.0, 0.0], [0.0] * 4, [0.0] * 4]
    assert table.short_by_band.tolist() == [[0.0] * 4, [0.0, 0.0, 7.0, 0.0], [0.0] * 4]
    assert table.positions is not None and table.positions.tolist() == [2, 1, 1]
    assert (table.total_long_usd, table.total_short_usd) == (42.0, 7.0)


def test_recorded_bins_keep_their_width_and_share_a_bucket_by_centre() -> None:
    table = group_bins(
        centres=np.array([90.0, 110.0, 90.0]),
        width=20.0,
        is_long=np.array([True, False, False]),
        usd=np.array([5.0, 3.0, 1.0]),
        usd_by_band=np.array([[5.0, 0, 0, 0], [0, 0, 3.0, 0], [0, 1.0, 0, 0]]),
    )
    assert table.price.tolist() == [80.0, 100.0] and table.price_high.tolist() == [100.0, 120.0]
    assert table.long_usd.tolist() == [5.0, 0.0] and table.short_usd.tolist() == [1.0, 3.0]
    assert table.short_by_band.tolist() == [[0, 1.0, 0, 0], [0, 0, 3.0, 0]]
    assert table.positions is None


def test_profiles_of_points_bins_and_a_model_vector_by_hand() -> None:
    # a long 1.5 % below 100 and a short 4 % above: points
    points = known_profile(np.array([98.5, 104.0]), 0.0, np.array([True, False]), np.ones(2), 100.0)
    assert points.long_share == pytest.approx((0, 1, 1, 1, 1))
    assert points.short_share == pytest.approx((0, 0, 1, 1, 1))
    # one long bin [98, 100) of width 2: half inside ±1 %
    bins = known_profile(np.array([98.0]), 2.0, np.array([True]), np.array([4.0]), 100.0)
    assert bins.long_share[:2] == pytest.approx((0.5, 1.0)) and bins.long_usd == 4.0
    # a model vector on a grid of 1: buckets 97, 98, 99 (longs) and 101 (short)
    vector = BucketVector(97, np.array([1.0, 1.0, 2.0, 0.0, 0.0]), np.array([0, 0, 0, 0, 3.0]))
    model = vector_profile(vector, 1.0, 100.0)
    assert model.long_share == pytest.approx((0.5, 0.75, 1, 1, 1))
    assert model.short_share == pytest.approx((0, 1, 1, 1, 1))
    assert (model.long_usd, model.short_usd) == (4.0, 3.0)


@pytest.mark.parametrize("size", [0.0, -1.0, float("nan"), float("inf")])
def test_a_bucket_size_must_be_positive(size: float) -> None:
    with pytest.raises(MapRequestError, match="bucketSize"):
        check_bucket_size(size)
    check_bucket_size(None)
