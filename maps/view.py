"""A liquidation map as a client asked for it: exchanges summed, re-bucketed, cut to a window.

:func:`map_view` builds it from the stored vectors of one instant (one per exchange, on the
shared grid); :class:`MapView` reads it (levels, walls, max pain) in prices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from maps import grid
from maps import levels as lv
from maps.errors import TooManyLevels
from maps.grid import BucketVector
from maps.request import rebucket_factor


@dataclass(frozen=True, slots=True)
class LevelTable:
    """Every bucket of a map, ascending by price, as parallel arrays."""

    price: np.ndarray  # lower edges
    price_high: np.ndarray  # upper edges
    long_usd: np.ndarray
    short_usd: np.ndarray
    cumulative_long_usd: np.ndarray  # from the price downward (0 above it)
    cumulative_short_usd: np.ndarray  # from the price upward (0 below it)
    intensity: np.ndarray  # (long + short) / the largest such bucket, 0–1
    # per bucket, long and short USD per leverage band (buckets × BANDS); None without bands
    long_by_band: np.ndarray | None = None
    short_by_band: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class PricedMaxPain:
    """See :class:`maps.levels.MaxPain`."""

    price: float  # the far edge of the max pain bucket: the price to reach
    cumulative_usd: float  # the side's USD liquidated on the way
    distance_pct: float  # from the price to ``price``, % of the price
    usd_per_pct: float  # cumulative_usd / distance_pct


@dataclass(frozen=True, slots=True)
class MapView:
    """Long and short USD per bucket of width ``bucket_size`` around ``price``; the vector is
    already summed over exchanges, re-bucketed and cut to the requested window."""

    vector: BucketVector
    bucket_size: float
    price: float
    # per leverage band (maps.bands), the band's vector over the same buckets; None when a
    # summed snapshot was stored without bands
    bands: tuple[BucketVector, ...] | None = None

    @property
    def price_min(self) -> float:
        """Lower edge of the first bucket."""
        return self.vector.first * self.bucket_size

    @property
    def price_max(self) -> float:
        """Upper edge of the last bucket."""
        return self.vector.end * self.bucket_size

    @property
    def total_long_usd(self) -> float:
        return float(self.vector.long_usd.sum())

    @property
    def total_short_usd(self) -> float:
        return float(self.vector.short_usd.sum())

    @property
    def max_usd(self) -> float:
        """The largest (long + short) of one bucket (0 for an empty window)."""
        total = self.vector.long_usd + self.vector.short_usd
        return float(total.max()) if total.size else 0.0

    def levels(self) -> LevelTable:
        v = self.vector
        cum_long, cum_short = lv.cumulative_outward(v, self.price, self.bucket_size)
        lows = (v.first + np.arange(v.long_usd.size)) * self.bucket_size
        return LevelTable(
            price=lows,
            price_high=lows + self.bucket_size,
            long_usd=v.long_usd,
            short_usd=v.short_usd,
            cumulative_long_usd=cum_long,
            cumulative_short_usd=cum_short,
            intensity=lv.intensity(v),
            long_by_band=None if self.bands is None else _by_band(self.bands, "long_usd"),
            short_by_band=None if self.bands is None else _by_band(self.bands, "short_usd"),
        )

    def clusters(self, *, min_usd: float, limit: int) -> list[lv.PricedWall]:
        """The largest walls of both sides (at most 1000), biggest first."""
        return lv.priced_walls(
            self.vector, self.price, self.bucket_size, min_usd=min_usd, limit=min(limit, 1000)
        )

    def max_pain_long(self) -> PricedMaxPain | None:
        """The reach below the price that liquidates the most long USD per percent of move."""
        v = self.vector
        found = lv.max_pain(v.long_usd, v.first, self.price, self.bucket_size, downward=True)
        return self._priced(found, downward=True)

    def max_pain_short(self) -> PricedMaxPain | None:
        """The reach above the price that liquidates the most short USD per percent of move."""
        v = self.vector
        found = lv.max_pain(v.short_usd, v.first, self.price, self.bucket_size, downward=False)
        return self._priced(found, downward=False)

    def _priced(self, found: lv.MaxPain | None, *, downward: bool) -> PricedMaxPain | None:
        if found is None:
            return None
        lower = (self.vector.first + found.index) * self.bucket_size
        price = lower if downward else lower + self.bucket_size
        return PricedMaxPain(price, found.cumulative_usd, 100.0 * found.distance, found.usd_per_pct)


def _by_band(bands: tuple[BucketVector, ...], side: str) -> np.ndarray:
    return np.stack([getattr(b, side) for b in bands], axis=1)


def level_window(
    vector: BucketVector,
    bucket_size: float,
    price_min: float | None,
    price_max: float | None,
    max_levels: int,
) -> tuple[int, int]:
    """Grid indices ``[first, end)`` of the buckets covering ``[price_min, price_max]`` (the
    vector's own extent where a bound is omitted); more than ``max_levels`` is refused."""
    first = vector.first if price_min is None else math.floor(price_min / bucket_size + 1e-9)
    end = vector.end if price_max is None else math.ceil(price_max / bucket_size - 1e-9)
    end = max(end, first)
    if end - first > max_levels:
        raise TooManyLevels(
            f"{end - first} price levels exceed the maximum of {max_levels}; narrow "
            "priceMin/priceMax or use a larger bucketSize",
            max_levels,
        )
    return first, end


def map_view(
    vectors: Sequence[BucketVector],
    prices: Sequence[float],
    grid_size: float,
    *,
    bucket_size: float | None,
    price_min: float | None,
    price_max: float | None,
    max_levels: int,
    bands: Sequence[tuple[BucketVector, ...] | None] | None = None,
) -> MapView:
    """One map from the vectors of one instant (summed on the shared grid of step
    ``grid_size``), re-bucketed to ``bucket_size`` and cut to the price window; its price is
    the mean of ``prices``. ``bands`` (per vector, its per-band vectors over the same buckets)
    are summed, re-bucketed and cut alike when every vector has them."""
    factor = rebucket_factor(bucket_size, grid_size)
    size = grid_size * factor
    vector = grid.rebucket(grid.add_vectors(vectors), factor)
    first, end = level_window(vector, size, price_min, price_max, max_levels)
    banded = None
    if bands and all(b is not None for b in bands):
        banded = tuple(
            grid.window(
                grid.rebucket(grid.add_vectors([b[k] for b in bands if b is not None]), factor),
                first,
                end,
            )
            for k in range(len(bands[0] or ()))
        )
    return MapView(grid.window(vector, first, end), size, float(np.mean(prices)), banded)
