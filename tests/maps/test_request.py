"""What a client may ask of a map: bucket sizes, price windows and bands, with their messages."""

from __future__ import annotations

import math

import pytest

from maps.errors import MapRequestError
from maps.request import (
    check_alert,
    check_price_window,
    check_wall_filter,
    check_within_pct,
    rebucket_factor,
)


@pytest.mark.parametrize(
    ("requested", "grid_size", "factor"),
    [
        (None, 10.0, 1),  # omitted: the grid as stored
        (10.0, 10.0, 1),
        (50.0, 10.0, 5),
        (0.3, 0.1, 3),  # 0.3 / 0.1 = 2.9999999999999996 in binary: still a whole multiple
    ],
)
def test_a_bucket_size_is_a_whole_multiple_of_the_grid(
    requested: float | None, grid_size: float, factor: int
) -> None:
    assert rebucket_factor(requested, grid_size) == factor


@pytest.mark.parametrize("requested", [0.0, -10.0, math.nan, math.inf])
def test_a_bucket_size_must_be_a_positive_number(requested: float) -> None:
    with pytest.raises(MapRequestError, match=r"^bucketSize must be a positive number$"):
        rebucket_factor(requested, 10.0)


@pytest.mark.parametrize("requested", [15.0, 5.0, 10.5])
def test_other_bucket_sizes_name_the_grid_and_examples(requested: float) -> None:
    with pytest.raises(MapRequestError) as refused:
        rebucket_factor(requested, 10.0)
    assert str(refused.value) == (
        "bucketSize must be a multiple of the stored grid step 10 (e.g. 10, 20, 50)"
    )


@pytest.mark.parametrize(
    ("price_min", "price_max", "message"),
    [
        (-1.0, None, "priceMin must be a non-negative number"),
        (math.nan, None, "priceMin must be a non-negative number"),
        (None, math.inf, "priceMax must be a non-negative number"),
        (100.0, 100.0, "priceMax must be greater than priceMin"),
        (100.0, 99.0, "priceMax must be greater than priceMin"),
    ],
)
def test_price_windows_refused(
    price_min: float | None, price_max: float | None, message: str
) -> None:
    with pytest.raises(MapRequestError) as refused:
        check_price_window(price_min, price_max)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("price_min", "price_max"), [(None, None), (0.0, None), (None, 5.0), (0.0, 0.5)]
)
def test_price_windows_accepted(price_min: float | None, price_max: float | None) -> None:
    check_price_window(price_min, price_max)


@pytest.mark.parametrize("within_pct", [0.0, -1.0, 100.000001, math.nan, math.inf])
def test_a_band_is_more_than_zero_and_at_most_a_hundred_percent(within_pct: float) -> None:
    with pytest.raises(MapRequestError, match=r"^withinPct must be in \(0, 100\]$"):
        check_within_pct(within_pct)


@pytest.mark.parametrize("within_pct", [0.001, 5.0, 100.0])
def test_bands_accepted(within_pct: float) -> None:
    check_within_pct(within_pct)


def test_wall_filters_and_alerts_refuse_negatives() -> None:
    check_wall_filter(0.0, 0)
    for min_usd, limit in ((-1.0, 10), (0.0, -1)):
        with pytest.raises(MapRequestError, match=r"^minUsd and limit must not be negative$"):
            check_wall_filter(min_usd, limit)
    check_alert(0.1, 0.0)
    for within_pct, min_usd in ((0.0, 1.0), (-2.0, 1.0), (1.0, -0.5)):
        with pytest.raises(
            MapRequestError, match=r"^withinPct must be positive and minUsd not negative$"
        ):
            check_alert(within_pct, min_usd)
