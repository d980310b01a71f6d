"""A heatmap's layout and matrices, worked out by hand on a few placed vectors."""

from __future__ import annotations

import numpy as np
import pytest

from maps.errors import MapRequestError, TooManyCells, TooManyColumns
from maps.heatmap import (
    RowWindow,
    StoredRange,
    check_cells,
    check_columns,
    finest_step,
    matrices,
    peak,
    price_rows,
)

STEPS = [300, 900, 1800, 3600, 14_400, 86_400]


def test_the_finest_step_that_fits() -> None:
    day = 86_400
    # a day in 5-minute columns is 288 ≤ 300
    assert finest_step(day, 300, 300, STEPS, sub_hour_stored=True) == 300
    # without base-resolution snapshots: whole hours only, 24 columns
    assert finest_step(day, 300, 300, STEPS, sub_hour_stored=False) == 3600
    # never finer than the base bar
    assert finest_step(day, 300, 900, STEPS, sub_hour_stored=True) == 900
    # 30 days in at most 200 columns: 4 h (180 columns); 1 h would need 720
    assert finest_step(30 * day, 200, 300, STEPS, sub_hour_stored=True) == 14_400
    # 400 days do not fit 300 daily columns
    assert finest_step(400 * day, 300, 300, STEPS, sub_hour_stored=True) is None


STORED = StoredRange(price_low=100.0, price_high=200.0, map_low=70.0, map_high=260.0)


@pytest.mark.parametrize(
    ("price_min", "price_max", "stored", "within_pct", "rows"),
    [
        (100.0, 250.0, StoredRange(), None, RowWindow(2, 3)),  # [100, 250) in rows of 50
        (110.0, 240.0, StoredRange(), None, RowWindow(2, 3)),  # partly covered rows count whole
        # the maps' full span 70..260 → rows 1..5 (50..300)
        (None, None, STORED, None, RowWindow(1, 5)),
        # the traded range 100..200 widened by 10 %: 90..220 → rows 1..4
        (None, None, STORED, 10.0, RowWindow(1, 4)),
        (None, 300.0, STORED, 10.0, RowWindow(1, 5)),  # only the omitted bound is widened
        (None, 300.0, STORED, None, RowWindow(1, 5)),  # 70..300
        (120.0, None, STORED, None, RowWindow(2, 4)),  # 120..260 → rows 2..5
        (300.0, None, STORED, 10.0, RowWindow(0, 0)),  # 300..220 is empty: no rows
        (None, None, StoredRange(), None, RowWindow(0, 0)),  # nothing stored in the range
        (None, None, StoredRange(), 10.0, RowWindow(0, 0)),
    ],
)
def test_price_rows(
    price_min: float | None,
    price_max: float | None,
    stored: StoredRange,
    within_pct: float | None,
    rows: RowWindow,
) -> None:
    assert price_rows(price_min, price_max, stored, within_pct, 50.0) == rows


def test_limits_name_themselves() -> None:
    check_columns(300, 300)
    with pytest.raises(TooManyColumns) as columns:
        check_columns(301, 300)
    assert str(columns.value) == (
        "301 columns exceed the maximum of 300; use a longer interval or a shorter range"
    )
    assert (columns.value.limit, columns.value.maximum) == ("max_columns", 300)
    check_cells(100, 10, 1000)
    with pytest.raises(TooManyCells) as cells:
        check_cells(101, 10, 1000)
    assert str(cells.value) == (
        "101 rows × 10 columns = 1010 cells exceed the maximum of 1000; narrow the price range, "
        "coarsen bucketSize or the interval, or shorten the range"
    )
    assert (cells.value.limit, cells.value.maximum) == ("max_cells", 1000)
    assert isinstance(cells.value, MapRequestError)


def f32(*values: float) -> np.ndarray:
    return np.array(values, np.float32)


def test_matrices_place_sum_and_merge_rows() -> None:
    # two output rows of two grid buckets each: grid rows 2..5; two columns
    rows = RowWindow(first=1, count=2)
    series_a = [(0, 2, f32(1, 2, 3, 4), f32(0, 0, 0, 1))]
    # series B: bucket 3 in column 0; buckets 5 and 6 in column 1 (6 lies above the window)
    series_b = [(0, 3, f32(10), f32(0)), (1, 5, f32(7, 8), f32(1, 1))]
    long_m, short_m = matrices(rows, 2, 2, [series_a, series_b])
    # grid rows (2, 3, 4, 5): column 0 long 1, 2+10, 3, 4 → rows 13, 7; column 1: 0, 0, 0, 7
    assert long_m.tolist() == [[13.0, 0.0], [7.0, 7.0]]
    assert short_m.tolist() == [[0.0, 0.0], [1.0, 1.0]]
    assert long_m.dtype == np.float32
    assert peak(long_m, short_m) == 13.0
    empty = np.zeros((0, 3), np.float32)
    assert peak(empty, empty) == 0.0
