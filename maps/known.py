"""Known levels as a table of price buckets, and their distance-from-price profile.

Known levels are real liquidation prices (``models.known_positions``): single positions read
from a venue (each at its own liquidation price, with its leverage), or bins a recorded source
already made (a centre, a width, USD split by leverage band). Served like a map they become
long/short USD per price bucket, split by the same leverage bands: positions are binned onto a
grid of ``bucket_size``, recorded bins are kept as the source made them (liqmap does not spread
a source's bin over finer buckets it never saw). Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from maps.bands import band_index
from maps.distance import DEFAULT_BANDS, DistanceProfile, distance_profile
from maps.errors import MapRequestError

# The recorded source's bands (1-10x, 11-25x, 26-50x, 51x and above); live positions are split
# the same way so that both kinds of snapshot read alike.
LEVERAGE_BANDS = ("1-10", "11-25", "26-50", "51+")
BAND_UPPER = (10.0, 25.0, 50.0)  # a leverage up to and including this is in the band


@dataclass(frozen=True, slots=True)
class KnownTable:
    """Non-empty buckets, ascending by price, as parallel arrays."""

    price: np.ndarray  # lower edges
    price_high: np.ndarray  # upper edges
    long_usd: np.ndarray
    short_usd: np.ndarray
    long_by_band: np.ndarray  # buckets × bands
    short_by_band: np.ndarray
    positions: np.ndarray | None  # single positions per bucket; None for recorded bins

    @property
    def total_long_usd(self) -> float:
        return float(self.long_usd.sum())

    @property
    def total_short_usd(self) -> float:
        return float(self.short_usd.sum())


def check_bucket_size(bucket_size: float | None) -> None:
    if bucket_size is not None and (not math.isfinite(bucket_size) or bucket_size <= 0):
        raise MapRequestError("bucketSize must be a positive number")


def leverage_band(leverage: np.ndarray) -> np.ndarray:
    """Index in :data:`LEVERAGE_BANDS` of each leverage (-1 where it is unknown)."""
    lev = np.asarray(leverage, dtype=np.float64)
    return np.where(np.isfinite(lev), band_index(lev, BAND_UPPER), -1).astype(np.int64)


def _split(usd: np.ndarray, band: np.ndarray) -> np.ndarray:
    """usd placed in its band's column (nothing where the band is unknown)."""
    out = np.zeros((usd.size, len(LEVERAGE_BANDS)))
    known = band >= 0
    out[np.flatnonzero(known), band[known]] = usd[known]
    return out


def bin_positions(
    prices: np.ndarray,
    is_long: np.ndarray,
    usd: np.ndarray,
    leverage: np.ndarray,
    bucket_size: float,
) -> KnownTable:
    """Single positions summed into buckets ``[k·bucket_size, (k+1)·bucket_size)`` of their
    liquidation price; a position of unknown leverage counts in the totals, in no band."""
    prices = np.asarray(prices, dtype=np.float64)
    usd = np.asarray(usd, dtype=np.float64)
    is_long = np.asarray(is_long, dtype=bool)
    index = np.floor(prices / bucket_size).astype(np.int64)
    buckets, where = np.unique(index, return_inverse=True)
    split = _split(usd, leverage_band(leverage))
    n = buckets.size
    long_usd, short_usd = np.zeros(n), np.zeros(n)
    long_by, short_by = np.zeros((n, len(LEVERAGE_BANDS))), np.zeros((n, len(LEVERAGE_BANDS)))
    np.add.at(long_usd, where[is_long], usd[is_long])
    np.add.at(short_usd, where[~is_long], usd[~is_long])
    np.add.at(long_by, where[is_long], split[is_long])
    np.add.at(short_by, where[~is_long], split[~is_long])
    counts = np.bincount(where, minlength=n)
    lows = buckets * bucket_size
    return KnownTable(lows, lows + bucket_size, long_usd, short_usd, long_by, short_by, counts)


def group_bins(
    centres: np.ndarray,
    width: float,
    is_long: np.ndarray,
    usd: np.ndarray,
    usd_by_band: np.ndarray,
) -> KnownTable:
    """A recorded source's bins as buckets ``[centre - width/2, centre + width/2)``: a long
    and a short bin with the same centre share a bucket."""
    centres = np.asarray(centres, dtype=np.float64)
    usd = np.asarray(usd, dtype=np.float64)
    is_long = np.asarray(is_long, dtype=bool)
    by_band = np.asarray(usd_by_band, dtype=np.float64).reshape(usd.size, -1)
    keys, where = np.unique(np.round(centres, 6), return_inverse=True)
    n = keys.size
    bands = by_band.shape[1]
    long_usd, short_usd = np.zeros(n), np.zeros(n)
    long_by, short_by = np.zeros((n, bands)), np.zeros((n, bands))
    np.add.at(long_usd, where[is_long], usd[is_long])
    np.add.at(short_usd, where[~is_long], usd[~is_long])
    np.add.at(long_by, where[is_long], by_band[is_long])
    np.add.at(short_by, where[~is_long], by_band[~is_long])
    return KnownTable(
        keys - width / 2, keys + width / 2, long_usd, short_usd, long_by, short_by, None
    )


def known_profile(
    lower: np.ndarray,
    width: float,
    is_long: np.ndarray,
    usd: np.ndarray,
    price: float,
    bands: tuple[float, ...] = DEFAULT_BANDS,
) -> DistanceProfile:
    """The distance-from-price profile of known levels: bins from their lower edge over
    ``width``, single positions (``width`` 0) at their own liquidation price."""
    usd = np.asarray(usd, dtype=np.float64)
    is_long = np.asarray(is_long, dtype=bool)
    return distance_profile(
        np.asarray(lower, dtype=np.float64),
        width,
        np.where(is_long, usd, 0.0),
        np.where(is_long, 0.0, usd),
        price,
        bands,
    )
