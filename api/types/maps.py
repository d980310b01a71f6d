"""The liquidation map at one instant, with its levels, walls, max pain, model and coverage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import numpy as np
import strawberry
from strawberry.types import Info

from api.types.base import described, field, resolver
from api.types.scalars import JSON, Side
from maps import levels as lv
from maps.grid import BucketVector

if TYPE_CHECKING:
    from api.selection import SeriesSet


@described
class LiquidationLevel:
    """One price bucket of a liquidation map: USD notional that would be force-liquidated if
    price traded into the bucket."""

    price: float = field("Lower edge of the bucket (USD).")
    price_high: float = field("Upper edge of the bucket (USD).")
    long_usd: float = field("Long positions liquidated in this bucket (USD).")
    short_usd: float = field("Short positions liquidated in this bucket (USD).")
    cumulative_long_usd: float = field(
        "Long USD liquidated if price fell from the current price down to this bucket "
        "(summed outward from the price; 0 above the price)."
    )
    cumulative_short_usd: float = field(
        "Short USD liquidated if price rose from the current price up to this bucket "
        "(summed outward; 0 below the price)."
    )
    intensity: float = field(
        "(long + short) of this bucket divided by the largest such value in the response (0–1)."
    )


@described
class Cluster:
    """A liquidation wall: adjacent buckets on one side that each hold at least the side's
    average non-empty bucket within the response window."""

    side: Side = field("Which positions the wall would liquidate.")
    price_low: float = field("Lower edge of the wall (USD).")
    price_high: float = field("Upper edge of the wall (USD).")
    peak_price: float = field("Lower edge of the wall's largest bucket (USD).")
    notional_usd: float = field("USD notional in the wall.")
    distance_pct: float = field(
        "Distance from the current price to the wall's nearest edge, percent of price "
        "(0 when the price is inside the wall)."
    )


@described
class MaxPain:
    """Where one side's cumulative liquidations within the window reach their maximum."""

    side: Side = field("LONG (below price) or SHORT (above price).")
    price: float = field(
        "Lower edge of the bucket where the cumulative curve first reaches its maximum, "
        "moving away from the price."
    )
    cumulative_usd: float = field("The cumulative USD reached there.")


@described
class ModelInfo:
    """The model that produced the numbers: its version and the assumptions it ran with."""

    version: str = field("Model version string written by the engine.")
    assumptions: JSON = field(
        "Model parameters (leverage distribution, side split, entry price, decay, tier table "
        "dates…). Parameters that differ between exchanges are listed under perExchange."
    )


@described
class Coverage:
    """What data a response is built from and how fresh it is."""

    exchanges: list[str] = field("Exchanges included.")
    last_bar: datetime | None = field("Close time of the newest materialized bar of these series.")
    staleness: float | None = field("Seconds from lastBar to now.")
    missing_datasets: list[str] = field(
        "exchange:dataset pairs with no stored data (e.g. binanceusdm:tiers)."
    )


@dataclass
class MapData:
    """Everything a liquidation map is computed from (server side only)."""

    series: SeriesSet
    at: datetime
    price: float
    bucket_size: float
    vector: BucketVector  # already windowed and re-bucketed


def _edge(data: MapData, position: int) -> float:
    return (data.vector.first + position) * data.bucket_size


@described
class LiquidationMap:
    """The liquidation map of a symbol at one instant: USD at risk per price bucket."""

    symbol: str = field("Unified symbol, e.g. BTC/USDT:USDT.")
    exchanges: list[str] = field("Exchanges included (all of them for the aggregate).")
    at: datetime = field("The instant the map describes (close of its bar).")
    price: float = field("Price at that instant (bar close; mean over exchanges).")
    bucket_size: float = field("Width of each level (USD).")
    price_min: float = field("Lower edge of the first level.")
    price_max: float = field("Upper edge of the last level.")
    total_long_usd: float = field("Sum of longUsd over the levels.")
    total_short_usd: float = field("Sum of shortUsd over the levels.")
    max_usd: float = field("Largest (long + short) of one level; intensity 1 means this.")
    data: strawberry.Private[MapData]

    @resolver
    def levels(self) -> list[LiquidationLevel]:
        """Every bucket from priceMin to priceMax, ascending by price."""
        d = self.data
        v = d.vector
        cum_long, cum_short = lv.cumulative_outward(v, d.price, d.bucket_size)
        heat = lv.intensity(v)
        lows = (v.first + np.arange(v.long_usd.size)) * d.bucket_size
        return [
            LiquidationLevel(
                price=p,
                price_high=p + d.bucket_size,
                long_usd=lo,
                short_usd=sh,
                cumulative_long_usd=cl,
                cumulative_short_usd=cs,
                intensity=h,
            )
            for p, lo, sh, cl, cs, h in zip(
                lows.tolist(),
                v.long_usd.tolist(),
                v.short_usd.tolist(),
                cum_long.tolist(),
                cum_short.tolist(),
                heat.tolist(),
                strict=True,
            )
        ]

    @resolver
    def clusters(
        self,
        min_usd: Annotated[
            float, strawberry.argument(description="Smallest wall to report (USD).")
        ] = 0.0,
        limit: Annotated[int, strawberry.argument(description="At most this many walls.")] = 10,
    ) -> list[Cluster]:
        """The largest liquidation walls of both sides, biggest first."""
        from api.errors import BadUserInput

        if min_usd < 0 or limit < 0:
            raise BadUserInput("minUsd and limit must not be negative")
        d = self.data
        out = []
        for wall in lv.clusters(d.vector, min_usd=min_usd, limit=min(limit, 1000)):
            low, high = _edge(d, wall.start), _edge(d, wall.stop)
            gap = max(low - d.price, d.price - high, 0.0)
            out.append(
                Cluster(
                    side=Side(wall.side),
                    price_low=low,
                    price_high=high,
                    peak_price=_edge(d, wall.peak),
                    notional_usd=wall.notional_usd,
                    distance_pct=100 * gap / d.price,
                )
            )
        return out

    @resolver
    def max_pain_long(self) -> MaxPain | None:
        """Long max pain: the price below which the most long notional is liquidated."""
        d = self.data
        cum_long, _ = lv.cumulative_outward(d.vector, d.price, d.bucket_size)
        found = lv.max_pain(cum_long, downward=True)
        if found is None:
            return None
        return MaxPain(
            side=Side.LONG, price=_edge(d, found.index), cumulative_usd=found.cumulative_usd
        )

    @resolver
    def max_pain_short(self) -> MaxPain | None:
        """Short max pain: the price above which the most short notional is liquidated."""
        d = self.data
        _, cum_short = lv.cumulative_outward(d.vector, d.price, d.bucket_size)
        found = lv.max_pain(cum_short, downward=False)
        if found is None:
            return None
        return MaxPain(
            side=Side.SHORT, price=_edge(d, found.index), cumulative_usd=found.cumulative_usd
        )

    @resolver
    async def model(self, info: Info) -> ModelInfo:
        """The model version and assumptions behind this map."""
        return await info.context.loaders.model.load(self.data.series)

    @resolver
    async def coverage(self, info: Info) -> Coverage:
        """Which exchanges and data this map covers, and how fresh it is."""
        info.context.cache.mark_unannounced()
        return await info.context.loaders.coverage.load(self.data.series)
