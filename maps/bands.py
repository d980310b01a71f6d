"""Leverage bands of the model's maps: which band a leverage falls in, and band vectors.

A model map's levels split into five bands by the leverage of the positions behind them:
≤ 10x, 10–25x, 25–50x, 50–100x and > 100x. A leverage up to and including a band's upper bound
is in that band (10x is in the first, 10.5x in the second), the rule the known positions'
bands follow (``maps.known``), and the labels read the same way (``1-10``, ``11-25``, …).
Pure numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

LEVERAGE_BANDS = ("1-10", "11-25", "26-50", "51-100", "101+")
BAND_UPPER = (10.0, 25.0, 50.0, 100.0)  # a leverage up to and including this is in the band
BANDS = len(LEVERAGE_BANDS)
ALL_BANDS = tuple(range(BANDS))


def band_index(leverage: npt.ArrayLike, upper: Sequence[float]) -> npt.NDArray[np.intp]:
    """The band of each leverage given the bands' upper bounds, ascending: a leverage up to and
    including a bound is in the band it closes, one above the last bound in the last band. The
    one rule of the model's bands (here) and the known positions' (``maps.known``)."""
    bounds = np.asarray(upper, dtype=np.float64)
    return np.searchsorted(bounds, np.asarray(leverage, dtype=np.float64), side="left")


def leverage_band(leverage: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Index in :data:`LEVERAGE_BANDS` of each leverage (finite leverages ≥ 1)."""
    lev = np.asarray(leverage, dtype=np.float64)
    if not np.isfinite(lev).all():
        raise ValueError("a leverage band needs a finite leverage")
    return band_index(lev, BAND_UPPER).astype(np.int8)


def band_mask(bands: Iterable[int]) -> int:
    """A set of bands as a bit mask (bit ``b`` = band ``b``); every band = ``2**BANDS − 1``."""
    mask = 0
    for b in bands:
        if not 0 <= b < BANDS:
            raise ValueError(f"leverage band {b} is not within 0..{BANDS - 1}")
        mask |= 1 << b
    return mask


FULL_MASK = band_mask(ALL_BANDS)


def bands_of(mask: int) -> list[int]:
    """The bands in a mask, ascending."""
    return [b for b in ALL_BANDS if mask >> b & 1]


CHANNELS = 2 * BANDS  # long bands 0..4, then short bands 0..4
_HEADER = np.dtype("<i4")
_VALUE = np.dtype("<f4")


def encode_band_blob(rows: npt.ArrayLike) -> bytes:
    """Band rows ``(2·BANDS, size)`` (long bands, then short bands, on the snapshot's stored
    buckets) as one compact blob: each row trimmed to its non-zero range.

    Layout (little-endian): ``2·BANDS`` pairs of int32 (first element, length) relative to
    element 0 of the snapshot's total vectors, then every row's kept values as float32, row
    after row. High-leverage bands live near the price and low-leverage ones far out, so the
    trimmed rows together hold little more than the totals do.
    """
    values = np.asarray(rows, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != CHANNELS:
        raise ValueError(f"band rows must have shape ({CHANNELS}, size)")
    size = values.shape[1]
    if size == 0:
        return np.zeros(2 * CHANNELS, dtype=_HEADER).tobytes()
    nonzero = values != 0
    any_value = nonzero.any(axis=1)
    start = np.where(any_value, np.argmax(nonzero, axis=1), 0)
    stop = np.where(any_value, size - np.argmax(nonzero[:, ::-1], axis=1), 0)
    header = np.stack([start, stop - start], axis=1).astype(_HEADER)
    body = np.concatenate(
        [values[c, start[c] : stop[c]] for c in range(CHANNELS)] + [np.zeros(0)]
    ).astype(_VALUE)
    return header.tobytes() + body.tobytes()


def decode_band_blob(blob: bytes, size: int) -> npt.NDArray[np.float32]:
    """The dense band rows ``(2·BANDS, size)`` (float32) of :func:`encode_band_blob`."""
    head = 2 * CHANNELS * _HEADER.itemsize
    if len(blob) < head:
        raise ValueError("band blob is shorter than its header")
    header = np.frombuffer(blob, dtype=_HEADER, count=2 * CHANNELS).reshape(CHANNELS, 2)
    body = np.frombuffer(blob, dtype=_VALUE, offset=head)
    if int(header[:, 1].sum()) != body.size or (header < 0).any():
        raise ValueError("band blob lengths do not match its values")
    if (header[:, 0] + header[:, 1] > size).any():
        raise ValueError("band blob reaches past its snapshot's buckets")
    out = np.zeros((CHANNELS, size), dtype=np.float32)
    at = 0
    for c in range(CHANNELS):
        a, n = int(header[c, 0]), int(header[c, 1])
        out[c, a : a + n] = body[at : at + n]
        at += n
    return out


def select_bands(rows: npt.NDArray, mask: int) -> tuple[np.ndarray, np.ndarray]:
    """Long and short sums (float64) of the bands in ``mask`` from rows ``(2·BANDS, size)``."""
    picked = bands_of(mask)
    long_rows = rows[picked].astype(np.float64)
    short_rows = rows[[BANDS + b for b in picked]].astype(np.float64)
    return long_rows.sum(axis=0), short_rows.sum(axis=0)
