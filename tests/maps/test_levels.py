"""Walls near the price and the long/short split, in prices, on hand-built vectors."""

from __future__ import annotations

import numpy as np
import pytest

from maps.grid import BucketVector
from maps.levels import long_short_split, ratio, walls_near

# grid step 10, price 55 (bucket 5): long walls at buckets 2 and 5, a short wall at bucket 6
VECTOR = BucketVector(
    0,
    np.array([0, 0, 3, 1, 2, 4, 0, 0], np.float64),
    np.array([0, 0, 0, 0, 0, 1, 6, 0], np.float64),
)


def test_walls_near_the_price() -> None:
    # distances: short [60, 70) 5/55 = 9.09 %, long [50, 60) 0 %, long [20, 30) 25/55 = 45.5 %
    near = walls_near(VECTOR, 55.0, 10.0, within_pct=10.0, min_usd=0.0)
    assert [(w.side, w.price_low) for w in near] == [("SHORT", 60.0), ("LONG", 50.0)]
    assert [w.side for w in walls_near(VECTOR, 55.0, 10.0, within_pct=50.0, min_usd=5.0)] == [
        "SHORT"
    ]
    assert walls_near(VECTOR, 55.0, 10.0, within_pct=5.0, min_usd=5.0) == []


def test_long_short_split_per_exchange_and_in_total() -> None:
    # ±10 % of 55 is [49.5, 60.5]: half a tenth of bucket 4 ([40, 50)), all of bucket 5, half a
    # tenth of bucket 6 → long 2·0.05 + 4 = 4.1, short 1 + 6·0.05 = 1.3
    other = BucketVector(10, np.array([10.0]), np.array([0.0]))  # [100, 110) around 105: all in
    split = long_short_split([(VECTOR, 55.0, 10.0), (other, 105.0, 10.0)], 10.0)
    first, second = split.parts
    assert (first.long_usd, first.short_usd) == pytest.approx((4.1, 1.3))
    assert first.ratio == pytest.approx(4.1 / 1.3)
    assert (second.long_usd, second.short_usd, second.ratio) == (10.0, 0.0, None)
    assert (split.total.long_usd, split.total.short_usd) == pytest.approx((14.1, 1.3))
    assert split.total.ratio == pytest.approx(14.1 / 1.3)
    assert split.price == 80.0  # the mean of 55 and 105


def test_ratio_without_shorts_is_none() -> None:
    assert ratio(3.0, 0.0) is None
    assert ratio(3.0, 2.0) == 1.5
