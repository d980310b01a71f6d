"""Reading one liquidation map: cumulative curves, max pain, walls, intensity, long/short split.

Pure numpy over a :class:`maps.grid.BucketVector`. Long positions are liquidated when price falls,
so long levels count *below* the price and their cumulative curve is summed outward (downward)
from the price; shorts mirror that above. The bucket holding the price counts on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maps.grid import BucketVector


def price_bucket(price: float, bucket_size: float) -> int:
    """Grid index of the bucket containing ``price``."""
    return int(np.floor(price / bucket_size))


def cumulative_outward(
    vector: BucketVector, price: float, bucket_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative long (from the price downward) and short (from the price upward) per bucket.

    Buckets on the other side of the price get zero.
    """
    k = price_bucket(price, bucket_size) - vector.first  # may fall outside the window
    n = vector.long_usd.size
    cum_long = np.zeros(n, np.float64)
    cum_short = np.zeros(n, np.float64)
    below = min(k, n - 1)
    if below >= 0:
        cum_long[: below + 1] = np.cumsum(vector.long_usd[below::-1])[::-1]
    above = max(k, 0)
    if above < n:
        cum_short[above:] = np.cumsum(vector.short_usd[above:])
    return cum_long, cum_short


@dataclass(frozen=True, slots=True)
class MaxPain:
    """A side's max pain: the reach that liquidates the most of the side per percent of move.

    For every bucket on the adverse side (below the price for longs, above for shorts) at least
    one bucket width away, the price must trade to the bucket's *far* edge to liquidate all of
    it: the move is ``distance`` (a fraction of the price) and the side's USD liquidated on the
    way (the cumulative curve, the price's own bucket included) is ``cumulative_usd``. Max pain
    is the bucket with the largest ``cumulative_usd / (100·distance)`` (USD per percent of
    adverse move); ties (within a relative 1e-9) go to the nearest. A single wall is its own far
    edge; of two walls the farther wins only if reaching it pays more per percent; on a flat map
    every reach pays the same and the nearest is reported. Unlike the largest cumulative value,
    which is always the window's far end, this ratio peaks inside the map wherever a wall pays
    off the move to reach it.
    """

    index: int  # position in the window of the bucket whose far edge is reached
    cumulative_usd: float
    distance: float  # from the price to the far edge, fraction of the price
    usd_per_pct: float


TIE_TOLERANCE = 1e-9


def max_pain(
    values: np.ndarray, first: int, price: float, bucket_size: float, *, downward: bool
) -> MaxPain | None:
    """The max pain of one side's per-bucket USD ``values`` (window starting at grid bucket
    ``first``), for longs with ``downward`` (see :class:`MaxPain`); None when the side holds
    nothing within reach."""
    n = values.size
    if n == 0 or price <= 0:
        return None
    k = price_bucket(price, bucket_size) - first  # the price's bucket, may be outside
    positions = np.arange(n)
    lower = (first + positions) * bucket_size
    if downward:
        adverse = positions <= k
        far_edge = lower
        # cumulative from the price's bucket down to each bucket
        order = slice(None, None, -1)
    else:
        adverse = positions >= k
        far_edge = lower + bucket_size
        order = slice(None)
    side = np.where(adverse, values, 0.0)
    cumulative = np.cumsum(side[order])[order]
    distance = np.abs(far_edge - price) / price
    candidate = adverse & (distance * price >= bucket_size * (1 - 1e-9)) & (cumulative > 0)
    if not candidate.any():
        return None
    ratio = np.where(candidate, cumulative / np.where(candidate, distance, 1.0), -np.inf)
    best = float(ratio.max())
    near = np.flatnonzero(candidate & (ratio >= best * (1 - TIE_TOLERANCE)))
    index = int(near[-1] if downward else near[0])  # the nearest to the price
    return MaxPain(
        index,
        float(cumulative[index]),
        float(distance[index]),
        float(cumulative[index] / (100.0 * distance[index])),
    )


def intensity(vector: BucketVector) -> np.ndarray:
    """(long + short) per bucket scaled to 0–1 by the largest bucket in the window."""
    total = vector.long_usd + vector.short_usd
    peak = float(total.max()) if total.size else 0.0
    return total / peak if peak > 0 else np.zeros_like(total)


@dataclass(frozen=True, slots=True)
class Wall:
    """A run of adjacent buckets ``[start, stop)`` (window positions) on one side."""

    side: str  # "LONG" | "SHORT"
    start: int
    stop: int
    notional_usd: float
    peak: int  # position of the largest bucket in the run


def walls(values: np.ndarray, side: str) -> list[Wall]:
    """Maximal runs of adjacent buckets each holding at least the side's mean non-empty bucket,
    largest first. The mean is taken over the response window, so walls are relative to what
    the client looks at."""
    nonempty = values[values > 0]
    if nonempty.size == 0:
        return []
    inside = values >= nonempty.mean()
    edges = np.diff(np.concatenate(([0], inside.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    out = []
    for start, stop in zip(starts, stops, strict=True):
        run = values[start:stop]
        out.append(Wall(side, int(start), int(stop), float(run.sum()), int(start + np.argmax(run))))
    out.sort(key=lambda w: (-w.notional_usd, w.start))
    return out


def clusters(vector: BucketVector, *, min_usd: float, limit: int) -> list[Wall]:
    """The largest walls of both sides with at least ``min_usd``, at most ``limit``."""
    found = walls(vector.long_usd, "LONG") + walls(vector.short_usd, "SHORT")
    found = [w for w in found if w.notional_usd >= min_usd]
    found.sort(key=lambda w: (-w.notional_usd, w.side, w.start))
    return found[:limit]


def split_within(
    vector: BucketVector, price: float, bucket_size: float, within_pct: float
) -> tuple[float, float]:
    """Long and short USD within ``price × (1 ± within_pct/100)``; partly covered buckets count
    in proportion to the covered part of their width (notional spread evenly in a bucket)."""
    low = price * (1 - within_pct / 100)
    high = price * (1 + within_pct / 100)
    edges = (vector.first + np.arange(vector.long_usd.size, dtype=np.float64)) * bucket_size
    overlap = np.clip(np.minimum(edges + bucket_size, high) - np.maximum(edges, low), 0, None)
    weight = overlap / bucket_size
    return float(vector.long_usd @ weight), float(vector.short_usd @ weight)


@dataclass(frozen=True, slots=True)
class PricedWall:
    """A wall in prices: its edges, its largest bucket and its distance from the price."""

    side: str  # "LONG" | "SHORT"
    price_low: float  # lower edge
    price_high: float  # upper edge
    peak_price: float  # lower edge of the largest bucket
    notional_usd: float
    distance_pct: float  # from the price to the nearest edge, % of price (0 inside the wall)


def priced_walls(
    vector: BucketVector, price: float, bucket_size: float, *, min_usd: float, limit: int
) -> list[PricedWall]:
    """:func:`clusters` with prices: the largest walls of both sides, biggest first."""
    out = []
    for wall in clusters(vector, min_usd=min_usd, limit=limit):
        low = (vector.first + wall.start) * bucket_size
        high = (vector.first + wall.stop) * bucket_size
        gap = max(low - price, price - high, 0.0)
        out.append(
            PricedWall(
                side=wall.side,
                price_low=low,
                price_high=high,
                peak_price=(vector.first + wall.peak) * bucket_size,
                notional_usd=wall.notional_usd,
                distance_pct=100 * gap / price,
            )
        )
    return out


def walls_near(
    vector: BucketVector, price: float, bucket_size: float, *, within_pct: float, min_usd: float
) -> list[PricedWall]:
    """Walls of at least ``min_usd`` whose nearest edge is within ``within_pct`` of price."""
    found = priced_walls(vector, price, bucket_size, min_usd=min_usd, limit=1_000)
    return [w for w in found if w.distance_pct <= within_pct]


def ratio(long_usd: float, short_usd: float) -> float | None:
    """long / short (None when there is no short notional)."""
    return long_usd / short_usd if short_usd > 0 else None


@dataclass(frozen=True, slots=True)
class SideTotals:
    long_usd: float
    short_usd: float

    @property
    def ratio(self) -> float | None:
        return ratio(self.long_usd, self.short_usd)


@dataclass(frozen=True, slots=True)
class LongShortSplit:
    """Long and short notional within a band around the price, per part and in total."""

    price: float  # mean of the parts' prices
    parts: list[SideTotals]
    total: SideTotals


def long_short_split(
    parts: list[tuple[BucketVector, float, float]], within_pct: float
) -> LongShortSplit:
    """The split of several maps ``(vector, price, bucket_size)`` (one per exchange), each
    measured within ``within_pct`` % of its own price, and their sum."""
    per = [
        SideTotals(*split_within(vector, price, bucket_size, within_pct))
        for vector, price, bucket_size in parts
    ]
    return LongShortSplit(
        price=float(np.mean([price for _, price, _ in parts])),
        parts=per,
        total=SideTotals(sum(p.long_usd for p in per), sum(p.short_usd for p in per)),
    )
