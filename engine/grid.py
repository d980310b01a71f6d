"""Fixed per-symbol price grid that heatmap levels are accumulated on, and cross-exchange sums.

Bucket ``k`` covers prices ``[origin + k·bucket_size, origin + (k+1)·bucket_size)``. Indices are
absolute (not relative to a window), so snapshots of different exchanges, times or windows of the
same symbol line up by index alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class PriceGrid:
    """Price buckets of width ``bucket_size`` starting at ``origin`` (a price in quote units)."""

    bucket_size: float
    origin: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.bucket_size) and self.bucket_size > 0):
            raise ValueError(f"bucket_size must be a positive number, got {self.bucket_size!r}")
        if not math.isfinite(self.origin):
            raise ValueError(f"origin must be finite, got {self.origin!r}")

    def index_of(self, price: npt.ArrayLike) -> IntArray:
        """Absolute bucket index holding each price (floor)."""
        p = np.asarray(price, dtype=np.float64)
        return np.floor((p - self.origin) / self.bucket_size).astype(np.int64)

    def index_of_scalar(self, price: float) -> int:
        return math.floor((price - self.origin) / self.bucket_size)

    def lower_price(self, index: npt.ArrayLike) -> FloatArray:
        """Lower edge of each bucket."""
        return self.origin + np.asarray(index, dtype=np.float64) * self.bucket_size

    def center_price(self, index: npt.ArrayLike) -> FloatArray:
        return self.origin + (np.asarray(index, dtype=np.float64) + 0.5) * self.bucket_size

    def window(self, price: float, half_width_fraction: float) -> tuple[int, int]:
        """Inclusive-exclusive index range ``[lo, hi)`` covering ``price·(1 ± fraction)``."""
        lo = self.index_of_scalar(price * (1.0 - half_width_fraction))
        hi = self.index_of_scalar(price * (1.0 + half_width_fraction)) + 1
        return lo, hi


@dataclass(frozen=True)
class GridLevels:
    """Long and short notional (USD) per bucket from absolute index ``origin_index`` onwards."""

    origin_index: int
    long: FloatArray
    short: FloatArray

    def __post_init__(self) -> None:
        if self.long.shape != self.short.shape or self.long.ndim != 1:
            raise ValueError("long and short must be 1-d arrays of the same length")


def aggregate_levels(
    parts: Sequence[GridLevels], usd_per_unit: Sequence[float] | None = None
) -> GridLevels:
    """Sum several exchanges' levels (all on the same ``PriceGrid``) onto one array.

    ``usd_per_unit`` converts each part to USD first (1.0 when the part is already in USD, e.g. a
    linear contract whose open interest was given in USD; an inverse venue reporting coin
    notional would pass the coin's USD price). The result spans the union of the parts' ranges;
    buckets a part does not cover count as zero for that part.
    """
    if not parts:
        raise ValueError("nothing to aggregate")
    factors = [1.0] * len(parts) if usd_per_unit is None else list(usd_per_unit)
    if len(factors) != len(parts):
        raise ValueError("one usd_per_unit factor per part is needed")
    first = min(p.origin_index for p in parts)
    last = max(p.origin_index + len(p.long) for p in parts)
    long = np.zeros(last - first, dtype=np.float64)
    short = np.zeros(last - first, dtype=np.float64)
    for part, factor in zip(parts, factors, strict=True):
        offset = part.origin_index - first
        long[offset : offset + len(part.long)] += part.long * factor
        short[offset : offset + len(part.short)] += part.short * factor
    return GridLevels(first, long, short)
