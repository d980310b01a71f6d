"""The liquidation map at one instant, with its levels, walls, max pain, model and coverage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import strawberry

from api import loaders
from api.context import ApiContext
from api.loaders import CoverageSummary, ModelSummary
from api.selection import SeriesSet
from api.types.base import described, field, resolver
from api.types.scalars import JSON, Side
from maps.bands import LEVERAGE_BANDS
from maps.levels import PricedWall
from maps.request import check_wall_filter
from maps.view import MapView, PricedMaxPain


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
    long_usd_by_leverage: list[float] | None = field(
        "longUsd split by leverage band (the bands of the map's leverageBands, in that order: "
        "the leverage of the positions behind the USD). Sums to longUsd up to float32 storage "
        "rounding. Null when the map's snapshots were stored without bands (model v1/v2)."
    )
    short_usd_by_leverage: list[float] | None = field(
        "shortUsd split by leverage band (as longUsdByLeverage)."
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

    @classmethod
    def of(cls, wall: PricedWall) -> Cluster:
        return cls(
            side=Side(wall.side),
            price_low=wall.price_low,
            price_high=wall.price_high,
            peak_price=wall.peak_price,
            notional_usd=wall.notional_usd,
            distance_pct=wall.distance_pct,
        )


@described
class MaxPain:
    """A side's max pain: the price whose reach liquidates the most of that side's notional
    per percent of adverse move. For every level on the adverse side (below the price for
    longs, above for shorts) at least one bucket away, the move is the distance from the price
    to the level's far edge and the pay-off is the side's USD liquidated on the way (the
    cumulative curve); max pain is the level with the largest pay-off per percent (ties: the
    nearest). A lone wall is its own max pain, a farther wall wins only if it pays more per
    percent of the longer move, and a flat map gives the nearest level. Computed over the
    levels of the response (priceMin/priceMax/withinPct narrow it)."""

    side: Side = field("LONG (below price) or SHORT (above price).")
    price: float = field(
        "The price to reach: the far edge of the max pain level (its lower edge for longs, "
        "its upper edge for shorts)."
    )
    cumulative_usd: float = field("The side's USD liquidated on the way from the price to there.")
    distance_pct: float = field("Distance from the map's price to price, % of the map's price.")
    usd_per_pct: float = field(
        "cumulativeUsd / distancePct: USD liquidated per percent of adverse move (the maximum)."
    )


@described
class ModelInfo:
    """The model that produced the numbers: its version and the assumptions it ran with."""

    version: str = field("Model version string written by the engine.")
    assumptions: JSON = field(
        "Model parameters (leverage distribution, side split, entry price, decay, tier table "
        "dates…). Parameters that differ between exchanges are listed under perExchange. "
        "venues says which exchanges contribute (contributing), which selected ones do not and "
        "why (excluded: e.g. no open interest recorded), and what open interest is used."
    )

    @classmethod
    def of(cls, summary: ModelSummary) -> ModelInfo:
        return cls(version=summary.version, assumptions=JSON(summary.assumptions))


@described
class UnavailableDataset:
    """A dataset a venue cannot serve at all (for example open interest it never recorded)."""

    exchange: str = field("ccxt exchange id.")
    dataset: str = field("candles, open_interest, funding or tiers.")
    reason: str = field("Why, as the ingest recorded it.")

    @classmethod
    def of(cls, row: loaders.UnavailableDataset) -> UnavailableDataset:
        return cls(exchange=row.exchange, dataset=row.dataset, reason=row.reason)


@described
class ExcludedExchange:
    """A selected exchange whose numbers are not in the response."""

    exchange: str = field("ccxt exchange id.")
    reason: str = field("Why (e.g. no open interest recorded, so the model places no positions).")

    @classmethod
    def of(cls, row: loaders.ExcludedVenue) -> ExcludedExchange:
        return cls(exchange=row.exchange, reason=row.reason)


@described
class Coverage:
    """What data a response is built from and how fresh it is."""

    exchanges: list[str] = field(
        "Exchanges whose numbers are included: those with model maps, i.e. with their own open "
        "interest (for the cross-exchange total: the venues it sums)."
    )
    last_bar: datetime | None = field("Close time of the newest materialized bar of these series.")
    staleness: float | None = field("Seconds from lastBar to now.")
    missing_datasets: list[str] = field(
        "exchange:dataset pairs with no stored data (e.g. binanceusdm:tiers), over every "
        "selected exchange."
    )
    unavailable_datasets: list[UnavailableDataset] = field(
        "Datasets a selected exchange cannot serve at all, with the reason."
    )
    excluded_exchanges: list[ExcludedExchange] = field(
        "Selected exchanges (every tracked one, for the cross-exchange total) that contribute "
        "nothing, with the reason; never counted in the numbers."
    )

    @classmethod
    def of(cls, summary: CoverageSummary) -> Coverage:
        return cls(
            exchanges=summary.exchanges,
            last_bar=summary.last_bar,
            staleness=summary.staleness,
            missing_datasets=summary.missing_datasets,
            unavailable_datasets=[UnavailableDataset.of(u) for u in summary.unavailable],
            excluded_exchanges=[ExcludedExchange.of(e) for e in summary.excluded],
        )


BAND_FIELDS = frozenset({"longUsdByLeverage", "shortUsdByLeverage"})


def _selects(selections: Sequence[Any], names: frozenset[str]) -> bool:
    """Whether a selection (fragments followed) asks for any of the fields ``names``."""
    for item in selections:
        if getattr(item, "name", None) in names:
            return True
        if _selects(getattr(item, "selections", None) or [], names):
            return True
    return False


@dataclass
class MapData:
    """Everything a liquidation map is computed from (server side only)."""

    series: SeriesSet
    view: MapView  # windowed and re-bucketed


def _max_pain(side: Side, found: PricedMaxPain | None) -> MaxPain | None:
    if found is None:
        return None
    return MaxPain(
        side=side,
        price=found.price,
        cumulative_usd=found.cumulative_usd,
        distance_pct=found.distance_pct,
        usd_per_pct=found.usd_per_pct,
    )


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
    model_version: str = field(
        "The model version that wrote this map's stored snapshots (e.g. oi-delta-cohorts-v3; "
        "several, comma-separated, if the summed exchanges' snapshots differ). v1 maps were cut "
        "at ±10 % of the price; v2 maps span the whole book (at least ±30 %); v3 maps add "
        "leverage bands."
    )
    leverage_bands: list[str] = field(
        "Labels of the leverage bands the levels are split by (longUsdByLeverage, "
        "shortUsdByLeverage), lowest leverage first: 1-10 (≤ 10x), 11-25 (10–25x), 26-50 "
        "(25–50x), 51-100 (50–100x), 101+ (> 100x); a leverage on a bound is in the band below "
        "it. The model gives every position a leverage (its leverage distribution), so a band "
        "is the USD it places at that leverage. Only the bands the leverage argument kept, when "
        "given. Empty when the map has no bands (model v1/v2)."
    )
    data: strawberry.Private[MapData]

    @classmethod
    def of(
        cls,
        series: SeriesSet,
        at: datetime,
        view: MapView,
        model_version: str,
        band_labels: Sequence[str] = LEVERAGE_BANDS,
    ) -> LiquidationMap:
        return cls(
            symbol=series.symbol,
            exchanges=series.exchanges,
            at=at,
            price=view.price,
            bucket_size=view.bucket_size,
            price_min=view.price_min,
            price_max=view.price_max,
            total_long_usd=view.total_long_usd,
            total_short_usd=view.total_short_usd,
            max_usd=view.max_usd,
            model_version=model_version,
            leverage_bands=list(band_labels) if view.bands is not None else [],
            data=MapData(series=series, view=view),
        )

    @resolver
    def levels(self, info: strawberry.Info[ApiContext, None]) -> list[LiquidationLevel]:
        """Every bucket from priceMin to priceMax, ascending by price."""
        t = self.data.view.levels()
        n = t.price.size
        # the per-band lists are built only when asked for (they are most of a level's cost)
        wanted = _selects(info.selected_fields, BAND_FIELDS)
        long_by = t.long_by_band.tolist() if wanted and t.long_by_band is not None else [None] * n
        short_by = (
            t.short_by_band.tolist() if wanted and t.short_by_band is not None else [None] * n
        )
        return [
            LiquidationLevel(
                price=p,
                price_high=ph,
                long_usd=lo,
                short_usd=sh,
                cumulative_long_usd=cl,
                cumulative_short_usd=cs,
                intensity=h,
                long_usd_by_leverage=lb,
                short_usd_by_leverage=sb,
            )
            for p, ph, lo, sh, cl, cs, h, lb, sb in zip(
                t.price.tolist(),
                t.price_high.tolist(),
                t.long_usd.tolist(),
                t.short_usd.tolist(),
                t.cumulative_long_usd.tolist(),
                t.cumulative_short_usd.tolist(),
                t.intensity.tolist(),
                long_by,
                short_by,
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
        check_wall_filter(min_usd, limit)
        return [Cluster.of(w) for w in self.data.view.clusters(min_usd=min_usd, limit=limit)]

    @resolver
    def max_pain_long(self) -> MaxPain | None:
        """Long max pain: the price below the map's price whose reach liquidates the most long
        USD per percent of move (see MaxPain)."""
        return _max_pain(Side.LONG, self.data.view.max_pain_long())

    @resolver
    def max_pain_short(self) -> MaxPain | None:
        """Short max pain: the price above the map's price whose reach liquidates the most short
        USD per percent of move (see MaxPain)."""
        return _max_pain(Side.SHORT, self.data.view.max_pain_short())

    @resolver
    async def model(self, info: strawberry.Info[ApiContext, None]) -> ModelInfo:
        """The model version and assumptions behind this map."""
        return ModelInfo.of(await info.context.loaders.model.load(self.data.series))

    @resolver
    async def coverage(self, info: strawberry.Info[ApiContext, None]) -> Coverage:
        """Which exchanges and data this map covers, and how fresh it is."""
        info.context.cache.mark_unannounced()
        return Coverage.of(await info.context.loaders.coverage.load(self.data.series))
