"""How far from the price liquidations sit: the share of each side's USD within ±x %.

The comparison of the model with known positions: for a model map (buckets) and for known
levels (recorded bins, or single positions at their own liquidation price) the same profile,
per side, of the share of that side's USD whose liquidation price lies within ``x`` of the
price, for each ``x`` in ``bands`` (fractions: 0.01 is ±1 %). Longs count below the price,
shorts above (a long whose liquidation price is above the price would already be liquidated:
it counts in no band, but in the side's total).

A level with a width (a bucket, a bin) spreads its USD evenly over [lower, lower + width]; a
level of width 0 is a point. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maps.grid import BucketVector

DEFAULT_BANDS = (0.01, 0.02, 0.05, 0.10, 0.20)


@dataclass(frozen=True, slots=True)
class DistanceProfile:
    bands: tuple[float, ...]
    long_share: tuple[float, ...]  # per band: share of long USD within price × (1 - band)
    short_share: tuple[float, ...]  # per band: share of short USD within price × (1 + band)
    long_usd: float  # the side's total (the shares' denominator)
    short_usd: float


def _covered(lower: np.ndarray, width: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fraction of each level inside [lo, hi] (points: 1 or 0)."""
    upper = lower + width
    inside = np.clip(np.minimum(upper, hi) - np.maximum(lower, lo), 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        part = np.where(width > 0, inside / width, ((lower >= lo) & (lower <= hi)).astype(float))
    return np.asarray(part, dtype=np.float64)


def distance_profile(
    lower: np.ndarray,
    width: np.ndarray | float,
    long_usd: np.ndarray,
    short_usd: np.ndarray,
    price: float,
    bands: tuple[float, ...] = DEFAULT_BANDS,
) -> DistanceProfile:
    """The profile of levels starting at ``lower`` (prices), each ``width`` wide (0: points).

    For a model map: ``lower`` = bucket lower edges, ``width`` = the bucket size. For recorded
    bins: ``lower`` = centre - width / 2. For positions: ``lower`` = liquidation prices, width 0.
    """
    lower = np.asarray(lower, dtype=np.float64)
    widths = np.broadcast_to(np.asarray(width, dtype=np.float64), lower.shape)
    longs = np.asarray(long_usd, dtype=np.float64)
    shorts = np.asarray(short_usd, dtype=np.float64)
    total_long, total_short = float(longs.sum()), float(shorts.sum())
    long_share, short_share = [], []
    for band in bands:
        below = float((longs * _covered(lower, widths, price * (1 - band), price)).sum())
        above = float((shorts * _covered(lower, widths, price, price * (1 + band))).sum())
        long_share.append(below / total_long if total_long > 0 else 0.0)
        short_share.append(above / total_short if total_short > 0 else 0.0)
    return DistanceProfile(
        tuple(bands), tuple(long_share), tuple(short_share), total_long, total_short
    )


def vector_profile(
    vector: BucketVector, bucket_size: float, price: float, bands: tuple[float, ...] = DEFAULT_BANDS
) -> DistanceProfile:
    """The profile of a model map: each bucket of ``vector`` spread over its width."""
    lower = (vector.first + np.arange(vector.long_usd.size)) * bucket_size
    return distance_profile(lower, bucket_size, vector.long_usd, vector.short_usd, price, bands)
