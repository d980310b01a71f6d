"""The price grid: bucket vectors, windows, re-bucketing and heatmap matrices (pure numpy).

Every stored vector sits on a fixed grid: bucket ``k`` covers ``[k·size, (k+1)·size)``. A vector is
kept as the index of its first bucket plus its values, so windows and sums are slice arithmetic.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_HEADER = struct.Struct(">iii")  # ndim, has-nulls flag, element type oid
_DIM = struct.Struct(">ii")  # length, lower bound
_FLOAT4_OID = 700
_ELEMENT = np.dtype([("length", ">i4"), ("value", ">f4")])


def decode_float4_array(buffer: bytes) -> np.ndarray:
    """Decode PostgreSQL's binary ``real[]`` format (``array_send``) into float32, no Python loop.

    NULL elements become NaN.
    """
    ndim, _flags, oid = _HEADER.unpack_from(buffer, 0)
    if ndim == 0:
        return np.zeros(0, np.float32)
    if ndim != 1 or oid != _FLOAT4_OID:
        raise ValueError(f"expected a 1-d real[] (got ndim={ndim}, oid={oid})")
    length, _lower = _DIM.unpack_from(buffer, _HEADER.size)
    body = memoryview(buffer)[_HEADER.size + _DIM.size :]
    if len(body) == length * _ELEMENT.itemsize:  # no NULLs: fixed-width records
        elements = np.frombuffer(body, dtype=_ELEMENT, count=length)
        return elements["value"].astype(np.float32)
    out = np.full(length, np.nan, np.float32)  # NULLs present: walk the variable records
    offset = 0
    for i in range(length):
        (size,) = struct.unpack_from(">i", body, offset)
        offset += 4
        if size >= 0:
            (out[i],) = struct.unpack_from(">f", body, offset)
            offset += size
    return out


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


def add(vectors: Sequence[BucketVector]) -> BucketVector:
    """Sum vectors on the same grid (their windows may differ)."""
    if not vectors:
        return BucketVector(0, np.zeros(0), np.zeros(0))
    first = min(v.first for v in vectors)
    end = max(v.end for v in vectors)
    total = window(vectors[0], first, end)
    for v in vectors[1:]:
        part = window(v, first, end)
        total.long_usd[:] += part.long_usd
        total.short_usd[:] += part.short_usd
    return total


def rebucket(vector: BucketVector, factor: int) -> BucketVector:
    """Merge every ``factor`` grid buckets into one, aligned so new bucket ``k`` = old
    ``[k·factor, (k+1)·factor)``. Sums are preserved."""
    if factor == 1:
        return vector
    first = (vector.first // factor) * factor
    end = -((-vector.end) // factor) * factor
    padded = window(vector, first, end)
    return BucketVector(
        first // factor,
        padded.long_usd.reshape(-1, factor).sum(axis=1),
        padded.short_usd.reshape(-1, factor).sum(axis=1),
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
    """Merge every ``factor`` rows (grid-aligned) of a matrix; returns it and its first row."""
    if factor == 1:
        return matrix, first_row
    first = (first_row // factor) * factor
    rows = matrix.shape[0]
    end = -((-(first_row + rows)) // factor) * factor
    padded = np.zeros((end - first, matrix.shape[1]), np.float32)
    padded[first_row - first : first_row - first + rows] = matrix
    merged = padded.reshape(-1, factor, matrix.shape[1]).sum(axis=1, dtype=np.float32)
    return merged, first // factor
