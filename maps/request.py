"""What a client may ask of a map: a price window, a bucket size, a band around the price.

Checked before anything is read; refused with :class:`maps.errors.MapRequestError`.
"""

from __future__ import annotations

import math

from maps.errors import MapRequestError

MAX_REBUCKET_FACTOR = 10**12  # a bucket of a trillion grid steps already holds any price


def rebucket_factor(requested: float | None, grid_size: float) -> int:
    """How many grid buckets make one requested bucket (must be a whole multiple, at most
    :data:`MAX_REBUCKET_FACTOR`). Checked before anything is read or allocated; the merge itself
    costs memory in proportion to the stored vectors, not to the factor."""
    if requested is None:
        return 1
    if not math.isfinite(requested) or requested <= 0:
        raise MapRequestError("bucketSize must be a positive number")
    if requested / grid_size > MAX_REBUCKET_FACTOR:
        raise MapRequestError(
            f"bucketSize must be at most {grid_size * MAX_REBUCKET_FACTOR:g} "
            f"({MAX_REBUCKET_FACTOR:g} grid steps of {grid_size:g})"
        )
    factor = requested / grid_size
    whole = round(factor)
    if whole < 1 or abs(factor - whole) > 1e-9 * max(1.0, factor):
        raise MapRequestError(
            f"bucketSize must be a multiple of the stored grid step {grid_size:g} "
            f"(e.g. {grid_size:g}, {2 * grid_size:g}, {5 * grid_size:g})"
        )
    return whole


def check_price_window(price_min: float | None, price_max: float | None) -> None:
    """Bounds are non-negative numbers, the upper above the lower (either may be omitted)."""
    for name, value in (("priceMin", price_min), ("priceMax", price_max)):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise MapRequestError(f"{name} must be a non-negative number")
    if price_min is not None and price_max is not None and price_max <= price_min:
        raise MapRequestError("priceMax must be greater than priceMin")


def check_within_pct(within_pct: float) -> None:
    """A band of ±within_pct % around the price: more than 0, at most 100."""
    if not math.isfinite(within_pct) or within_pct <= 0 or within_pct > 100:
        raise MapRequestError("withinPct must be in (0, 100]")


def check_wall_filter(min_usd: float, limit: int) -> None:
    if min_usd < 0 or limit < 0:
        raise MapRequestError("minUsd and limit must not be negative")


def check_alert(within_pct: float, min_usd: float) -> None:
    """A wall alert: walls of at least ``min_usd`` within ``within_pct`` % of the price."""
    if within_pct <= 0 or min_usd < 0:
        raise MapRequestError("withinPct must be positive and minUsd not negative")
