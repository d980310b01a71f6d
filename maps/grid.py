"""The price grid that liquidation levels live on, and the arithmetic on level vectors.

Bucket ``k`` covers prices ``[origin + k·bucket_size, origin + (k+1)·bucket_size)``. Indices are
absolute (not relative to a window), so vectors of different exchanges, times or windows of the
same symbol line up by index alone: a vector is the index of its first bucket plus its values,
and windows and sums are slice arithmetic. Pure numpy; the engine accumulates on this grid and
the API, the PNG render and the export read it.
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


@dataclass(frozen=True, slots=True)
class BucketVector:
    """Long and short USD per bucket, starting at grid bucket ``first`` (index, not price)."""

    first: int
    long_usd: np.ndarray
    short_usd: np.ndarray

    @property
    def end(self) -> int:
        return self.first + int(self.long_usd.size)


def origin_index(origin_price: float, bucket_size: float) -> int:
    """Grid index of a bucket whose lower edge is ``origin_price`` (origins are grid multiples)."""
    return round(origin_price / bucket_size)


def window(vector: BucketVector, first: int, end: int) -> BucketVector:
    """The buckets ``[first, end)`` of ``vector``; buckets it does not cover are zero."""
    long_usd = np.zeros(end - first, np.float64)
    short_usd = np.zeros(end - first, np.float64)
    lo, hi = max(first, vector.first), min(end, vector.end)
    if hi > lo:
        long_usd[lo - first : hi - first] = vector.long_usd[lo - vector.first : hi - vector.first]
        short_usd[lo - first : hi - first] = vector.short_usd[lo - vector.first : hi - vector.first]
    return BucketVector(first, long_usd, short_usd)


def add_vectors(
    vectors: Sequence[BucketVector], usd_per_unit: Sequence[float] | None = None
) -> BucketVector:
    """Sum vectors on the same grid; the result spans the union of their windows.

    ``usd_per_unit`` converts each vector to USD first (1.0 when it is already in USD, e.g. a
    linear contract whose open interest was given in USD; an inverse venue reporting coin
    notional would pass the coin's USD price).
    """
    if not vectors:
        return BucketVector(0, np.zeros(0), np.zeros(0))
    factors = [1.0] * len(vectors) if usd_per_unit is None else list(usd_per_unit)
    if len(factors) != len(vectors):
        raise ValueError("one usd_per_unit factor per vector is needed")
    first = min(v.first for v in vectors)
    end = max(v.end for v in vectors)
    long_usd = np.zeros(end - first, np.float64)
    short_usd = np.zeros(end - first, np.float64)
    for v, factor in zip(vectors, factors, strict=True):
        offset = v.first - first
        long_usd[offset : offset + v.long_usd.size] += v.long_usd * factor
        short_usd[offset : offset + v.short_usd.size] += v.short_usd * factor
    return BucketVector(first, long_usd, short_usd)


def rebucket(vector: BucketVector, factor: int) -> BucketVector:
    """Merge every ``factor`` grid buckets into one, aligned so new bucket ``k`` = old
    ``[k·factor, (k+1)·factor)``. Sums are preserved.

    Memory is proportional to the vector, whatever ``factor`` is: each bucket is added into its
    merged bucket directly (no padding to a multiple of ``factor``, which for a huge bucket size
    meant allocating ``factor`` zeros)."""
    if factor == 1:
        return vector
    first = vector.first // factor
    count = -((-vector.end) // factor) - first
    n = int(vector.long_usd.size)
    if n == 0:
        return BucketVector(first, np.zeros(count, np.float64), np.zeros(count, np.float64))
    merged = (vector.first + np.arange(n, dtype=np.int64)) // factor - first
    return BucketVector(
        first,
        np.bincount(merged, weights=vector.long_usd, minlength=count),
        np.bincount(merged, weights=vector.short_usd, minlength=count),
    )


def place_columns(
    rows: int,
    columns: int,
    first_row: int,
    placements: Sequence[tuple[int, int, np.ndarray]],
) -> np.ndarray:
    """A ``rows × columns`` float32 matrix from ``(column, first bucket, values)`` placements.

    Row ``i`` is grid bucket ``first_row + i`` (prices ascend with the row index); cells no
    snapshot covers are zero. Values outside the row range are clipped away.
    """
    matrix = np.zeros((rows, columns), np.float32)
    for column, first, values in placements:
        lo, hi = max(first, first_row), min(first + values.size, first_row + rows)
        if hi > lo:
            matrix[lo - first_row : hi - first_row, column] = values[lo - first : hi - first]
    return matrix


def rebucket_rows(matrix: np.ndarray, first_row: int, factor: int) -> tuple[np.ndarray, int]:
    """Merge every ``factor`` rows (grid-aligned) of a matrix; returns it and its first row.
    Memory is proportional to the matrix, whatever ``factor`` is."""
    if factor == 1:
        return matrix, first_row
    first = first_row // factor
    rows = matrix.shape[0]
    count = -((-(first_row + rows)) // factor) - first
    merged = np.zeros((count, matrix.shape[1]), np.float32)
    if rows:
        group = (first_row + np.arange(rows, dtype=np.int64)) // factor - first
        starts = np.flatnonzero(np.diff(group, prepend=-1))  # rows are grouped contiguously
        merged[group[starts]] = np.add.reduceat(matrix, starts, axis=0, dtype=np.float32)
    return merged, first
