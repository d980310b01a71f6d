"""Building liquidation maps from stored snapshots: sum exchanges, re-bucket, cut the window."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

import numpy as np

from api.errors import BadUserInput, RangeTooLarge
from api.selection import SeriesSet
from api.storage import Snapshot
from api.types.maps import LiquidationMap, MapData
from maps import grid


def rebucket_factor(requested: float | None, grid_size: float) -> int:
    """How many grid buckets make one requested bucket (must be a whole multiple)."""
    if requested is None:
        return 1
    if not math.isfinite(requested) or requested <= 0:
        raise BadUserInput("bucketSize must be a positive number")
    factor = requested / grid_size
    whole = round(factor)
    if whole < 1 or abs(factor - whole) > 1e-9 * max(1.0, factor):
        raise BadUserInput(
            f"bucketSize must be a multiple of the stored grid step {grid_size:g} "
            f"(e.g. {grid_size:g}, {2 * grid_size:g}, {5 * grid_size:g})"
        )
    return whole


def check_price_window(price_min: float | None, price_max: float | None) -> None:
    for name, value in (("priceMin", price_min), ("priceMax", price_max)):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise BadUserInput(f"{name} must be a non-negative number")
    if price_min is not None and price_max is not None and price_max <= price_min:
        raise BadUserInput("priceMax must be greater than priceMin")


def build_map(
    series: SeriesSet,
    parts: Sequence[Snapshot],
    *,
    timeframe_s: int,
    price_min: float | None,
    price_max: float | None,
    bucket_size: float | None,
    max_levels: int,
) -> LiquidationMap:
    """One map from each series' snapshot (several series are summed on the shared grid)."""
    factor = rebucket_factor(bucket_size, series.bucket_size)
    size = series.bucket_size * factor
    vector = grid.rebucket(grid.add_vectors([p.vector for p in parts]), factor)
    first = vector.first if price_min is None else math.floor(price_min / size + 1e-9)
    end = vector.end if price_max is None else math.ceil(price_max / size - 1e-9)
    end = max(end, first)
    if end - first > max_levels:
        raise RangeTooLarge(
            f"{end - first} price levels exceed the maximum of {max_levels}; narrow "
            "priceMin/priceMax or use a larger bucketSize",
            max_levels=max_levels,
        )
    vector = grid.window(vector, first, end)
    at = min(p.ts for p in parts) + timedelta(seconds=timeframe_s)
    price = float(np.mean([p.price for p in parts]))
    data = MapData(series=series, at=at, price=price, bucket_size=size, vector=vector)
    total = vector.long_usd + vector.short_usd
    return LiquidationMap(
        symbol=series.symbol,
        exchanges=series.exchanges,
        at=at,
        price=price,
        bucket_size=size,
        price_min=first * size,
        price_max=end * size,
        total_long_usd=float(vector.long_usd.sum()),
        total_short_usd=float(vector.short_usd.sum()),
        max_usd=float(total.max()) if total.size else 0.0,
        data=data,
    )
