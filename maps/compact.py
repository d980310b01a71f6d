"""Graded buckets: a map's full span stored compactly, every grid bucket near the price kept.

A snapshot spans far from the price (model v2: at least ±30 %), but detail matters near it. The
graded layout keeps the grid's own buckets within ``fine`` buckets of the price's bucket
(``center``) and merges them farther out, doubling the width every ``fine`` stored buckets:

* above (offset ``o = k − center ≥ 0``): level ``j`` holds ``fine`` buckets of width ``2**j``
  covering offsets ``[fine·(2**j − 1), fine·(2**(j+1) − 1))``;
* below, the mirror image: offset ``o < 0`` is stored like ``−1 − o`` above, at index ``−1 − q``.

So ``fine`` = 35 grid buckets (2.5 % of a 70,000 USD price on a 50 USD grid) keeps every bucket
within ±2.5 %, pairs them to ±7.5 %, fours to ±17.5 %, eights to ±37.5 %: ±30 % in about 250
stored buckets instead of 840. A stored (compact) bucket's USD is the sum of its grid buckets
(totals are conserved exactly in float64); reading it back spreads it evenly over them. Pure
numpy.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from maps.grid import BucketVector

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

FINE_FRACTION = 0.025  # grid buckets kept one by one: within this fraction of the price
MIN_FINE = 8


def fine_buckets(price: float, bucket_size: float) -> int:
    """How many grid buckets each side of the price's bucket are stored one by one."""
    return max(MIN_FINE, math.ceil(FINE_FRACTION * price / bucket_size))


def _upper_index(offset: IntArray, fine: int) -> IntArray:
    """Compact index of non-negative offsets (see the module docstring)."""
    level = np.floor(np.log2(offset / fine + 1.0)).astype(np.int64)
    # floating log2 may land one level off at exact powers: correct against the integer edges
    start = fine * ((np.int64(1) << level) - 1)
    level = np.where(offset < start, level - 1, level)
    start = fine * ((np.int64(1) << level) - 1)
    nxt = fine * ((np.int64(1) << (level + 1)) - 1)
    level = np.where(offset >= nxt, level + 1, level)
    start = fine * ((np.int64(1) << level) - 1)
    return level * fine + ((offset - start) >> level)


def compact_index(offset: npt.ArrayLike, fine: int) -> IntArray:
    """The stored bucket holding each grid offset from the center (monotonic in the offset)."""
    o = np.asarray(offset, dtype=np.int64)
    up = _upper_index(np.where(o >= 0, o, -1 - o), fine)
    return np.where(o >= 0, up, -1 - up)


def compact_edges(q: npt.ArrayLike, fine: int) -> tuple[IntArray, IntArray]:
    """(first grid offset, width in grid buckets) of each stored bucket ``q``."""
    qa = np.asarray(q, dtype=np.int64)
    up = np.where(qa >= 0, qa, -1 - qa)
    level = up // fine
    width = np.int64(1) << level
    start = fine * (width - 1) + (up - level * fine) * width
    # below the center: the mirror of [start, start + width) is [−start − width, −start)
    first = np.where(qa >= 0, start, -start - width)
    return first, width


def covered_grid(fine: int, center: int, q_first: int, size: int) -> tuple[int, int]:
    """Grid buckets ``[first, end)`` that ``size`` stored buckets from ``q_first`` cover (fine 0:
    a plain grid vector from grid bucket ``q_first``)."""
    if fine == 0:
        return q_first, q_first + size
    if size == 0:
        return center, center
    first, _ = compact_edges(np.array([q_first]), fine)
    last, width = compact_edges(np.array([q_first + size - 1]), fine)
    return center + int(first[0]), center + int(last[0]) + int(width[0])


@dataclass(frozen=True, slots=True)
class CompactVector:
    """Long and short USD per stored bucket ``q_first ..``, graded around grid bucket
    ``center`` with ``fine`` (0: a plain grid vector from grid bucket ``q_first``)."""

    center: int
    fine: int
    q_first: int
    long_usd: np.ndarray
    short_usd: np.ndarray
    # leverage bands on the same stored buckets: (2·BANDS, size), long bands then short bands
    # (maps.bands); None for maps without bands (model v1/v2)
    bands: np.ndarray | None = None

    @property
    def first_grid(self) -> int:
        """Grid index of the first grid bucket the stored buckets cover."""
        if self.fine == 0:
            return self.q_first
        first, _ = compact_edges(np.array([self.q_first]), self.fine)
        return self.center + int(first[0])


def encode(vector: BucketVector, center: int, fine: int) -> CompactVector:
    """Sum a grid vector into graded buckets around ``center`` (sums in float64)."""
    q0, rows = encode_rows(
        vector.first, np.stack([vector.long_usd, vector.short_usd]), center, fine
    )
    return CompactVector(center, fine, q0, rows[0], rows[1])


@functools.lru_cache(maxsize=4096)
def _layout(fine: int, q_first: int, size: int) -> tuple[int, IntArray]:
    """(first grid offset, widths) of stored buckets ``q_first .. q_first + size`` (a heatmap
    reads hundreds of snapshots sharing a few layouts: computed once each)."""
    first, width = compact_edges(q_first + np.arange(size, dtype=np.int64), fine)
    width.setflags(write=False)
    return int(first[0]), width


def decode(compact: CompactVector) -> BucketVector:
    """The grid vector: each stored bucket's USD spread evenly over its grid buckets."""
    first, rows = decode_rows(
        compact.center,
        compact.fine,
        compact.q_first,
        np.stack([compact.long_usd, compact.short_usd]),
    )
    return BucketVector(first, rows[0], rows[1])


def encode_rows(first: int, rows: np.ndarray, center: int, fine: int) -> tuple[int, FloatArray]:
    """Sum grid rows ``(k, n)`` starting at grid bucket ``first`` into graded buckets around
    ``center``: (first stored index, rows ``(k, size)``). Every row gets the same layout, so
    totals and their leverage bands are encoded in one pass (:func:`encode` is the two-row
    case)."""
    if fine < 1:
        raise ValueError("fine must be at least 1")
    values = np.asarray(rows, dtype=np.float64)
    n = values.shape[1]
    if n == 0:
        return 0, np.zeros((values.shape[0], 0))
    q0, starts = _row_starts(first - center, n, fine)
    return q0, np.add.reduceat(values, starts, axis=1)


@functools.lru_cache(maxsize=4096)
def _row_starts(offset: int, n: int, fine: int) -> tuple[int, IntArray]:
    """(first stored index, grid position where each stored bucket starts) of ``n`` grid
    buckets from ``offset`` (consecutive snapshots share a few such layouts)."""
    q = compact_index(offset + np.arange(n, dtype=np.int64), fine)
    starts = np.flatnonzero(np.diff(q, prepend=q[0] - 1))  # stored indices are contiguous
    starts.setflags(write=False)
    return int(q[0]), starts


def decode_rows(center: int, fine: int, q_first: int, rows: np.ndarray) -> tuple[int, FloatArray]:
    """Stored rows ``(k, size)`` back on the grid: (first grid bucket, rows ``(k, n)``), each
    stored bucket spread evenly over its grid buckets (:func:`decode` is the two-row case)."""
    values = np.asarray(rows, dtype=np.float64)
    if fine == 0:
        return q_first, values
    if values.shape[1] == 0:
        return 0, np.zeros((values.shape[0], 0))
    first, width = _layout(fine, q_first, values.shape[1])
    return center + first, np.repeat(values / width, width, axis=1)
