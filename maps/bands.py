"""Leverage bands of the model's maps: which band a leverage falls in, and band vectors.

A model map's levels split into five bands by the leverage of the positions behind them:
≤ 10x, 10–25x, 25–50x, 50–100x and > 100x. A leverage up to and including a band's upper bound
is in that band (10x is in the first, 10.5x in the second), the rule the known positions'
bands follow (``maps.known``), and the labels read the same way (``1-10``, ``11-25``, …).
Pure numpy.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

LEVERAGE_BANDS = ("1-10", "11-25", "26-50", "51-100", "101+")
BAND_UPPER = (10.0, 25.0, 50.0, 100.0)  # a leverage up to and including this is in the band
BANDS = len(LEVERAGE_BANDS)
ALL_BANDS = tuple(range(BANDS))


def leverage_band(leverage: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Index in :data:`LEVERAGE_BANDS` of each leverage (finite leverages ≥ 1)."""
    lev = np.asarray(leverage, dtype=np.float64)
    if not np.isfinite(lev).all():
        raise ValueError("a leverage band needs a finite leverage")
    return np.searchsorted(np.asarray(BAND_UPPER), lev, side="left").astype(np.int8)


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
