"""Market time series: candles, open interest, funding, realized and swept liquidations."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from api import selection
from api.context import ApiContext
from api.errors import BadUserInput, RangeTooLarge, not_found
from api.resolvers.maps import Exchanges, Symbol
from api.timerange import floor_to, timeframe_seconds
from api.types.market_data import (
    Candle,
    FundingRatePoint,
    OpenInterestPoint,
    RealizedLiquidationBar,
    SweptBar,
)
from api.types.scalars import Interval
from models import heatmap_store, jobs_store, liquidations_store, market_data_store, market_store
from models.liquidations_store import RealizedBar

Exchange = Annotated[str, strawberry.argument(description="ccxt exchange id, e.g. binanceusdm.")]
Start = Annotated[datetime, strawberry.argument(description="Start of the range (inclusive).")]
PointsEnd = Annotated[
    datetime | None,
    strawberry.argument(
        description="End of the range (exclusive); now if omitted. At most "
        "{limit:max_span_days} days after start (LIQMAP_API_MAX_SPAN_DAYS) and at most "
        "{limit:max_series_points} bars of the interval (LIQMAP_API_MAX_SERIES_POINTS); "
        "RANGE_TOO_LARGE above."
    ),
]
RowsEnd = Annotated[
    datetime | None,
    strawberry.argument(
        description="End of the range (exclusive); now if omitted. At most "
        "{limit:max_span_days} days after start (LIQMAP_API_MAX_SPAN_DAYS) and holding at "
        "most {limit:max_series_points} rows (LIQMAP_API_MAX_SERIES_POINTS); RANGE_TOO_LARGE "
        "above either, never a silently cut list."
    ),
]
T = TypeVar("T")
LABELS = {300: "5m", 900: "15m", 1800: "30m", 3600: "1h", 14_400: "4h", 86_400: "1d"}


async def _closed(ctx: ApiContext, end: datetime) -> bool:
    """For sources without a watermark (realized-liquidation imports): a day in the past."""
    return end < await ctx.now() - timedelta(days=1)


async def _stored_through(
    session: AsyncSession, market_id: int, dataset: str, end: datetime
) -> bool:
    """Whether the ingest watermark has passed ``end`` (the range cannot gain rows)."""
    mark = await jobs_store.watermark(session, market_id, dataset)
    return mark is not None and end <= mark


def _check_rows(ctx: ApiContext, rows: list[T]) -> list[T]:
    """Rows read with one more than the limit: more than the limit is refused, not cut."""
    limit = ctx.limits.max_series_points
    if len(rows) > limit:
        raise RangeTooLarge(
            f"the range holds more than the maximum of {limit} rows per series; use a shorter "
            "range (or narrow exchanges or timeframe)",
            max_points=limit,
        )
    return rows


def _check_points(ctx: ApiContext, start: datetime, end: datetime, step_s: int) -> None:
    points = (end - start).total_seconds() / step_s
    if points > ctx.limits.max_series_points:
        raise RangeTooLarge(
            f"about {points:.0f} points exceed the maximum of {ctx.limits.max_series_points} "
            "per series; use a longer interval or a shorter range",
            max_points=ctx.limits.max_series_points,
        )


async def candles(
    info: strawberry.Info[ApiContext, None],
    symbol: Symbol,
    exchange: Exchange,
    start: Start,
    end: PointsEnd = None,
    interval: Annotated[
        Interval | None, strawberry.argument(description="Bar width; the base bar if omitted.")
    ] = None,
) -> list[Candle]:
    """OHLCV bars of one market."""
    ctx = info.context
    start, end = await ctx.checked_range(start, end)
    base_s = timeframe_seconds(ctx.timeframe)
    step = interval.seconds if interval else base_s
    if step < base_s:
        raise BadUserInput(f"interval must be at least the base bar ({ctx.timeframe})")
    _check_points(ctx, start, end, step)
    start = floor_to(start, step)
    async with ctx.session() as session:
        market = await selection.market(session, symbol, exchange)
        bars = await market_data_store.candle_buckets(
            session, market.id, ctx.timeframe, start, end, step, ctx.limits.max_series_points
        )
        ctx.cache.mark(await _stored_through(session, market.id, "candles", end))
    return [Candle.of(b) for b in bars]


async def open_interest(
    info: strawberry.Info[ApiContext, None],
    symbol: Symbol,
    exchange: Exchange,
    start: Start,
    end: PointsEnd = None,
) -> list[OpenInterestPoint]:
    """Open interest of one market per base bar."""
    ctx = info.context
    start, end = await ctx.checked_range(start, end)
    _check_points(ctx, start, end, timeframe_seconds(ctx.timeframe))
    async with ctx.session() as session:
        market = await selection.market(session, symbol, exchange)
        bars = await market_data_store.open_interest(
            session, market.id, ctx.timeframe, start, end, ctx.limits.max_series_points
        )
        ctx.cache.mark(await _stored_through(session, market.id, "open_interest", end))
    return [OpenInterestPoint.of(b) for b in bars]


async def funding_rates(
    info: strawberry.Info[ApiContext, None],
    symbol: Symbol,
    exchange: Exchange,
    start: Start,
    end: RowsEnd = None,
) -> list[FundingRatePoint]:
    """Settled funding rates of one market."""
    ctx = info.context
    start, end = await ctx.checked_range(start, end)
    async with ctx.session() as session:
        market = await selection.market(session, symbol, exchange)
        points = _check_rows(
            ctx,
            await market_data_store.funding_rates(
                session, market.id, start, end, ctx.limits.max_series_points + 1
            ),
        )
        ctx.cache.mark(await _stored_through(session, market.id, "funding", end))
    return [FundingRatePoint.of(p) for p in points]


async def realized_liquidations(
    info: strawberry.Info[ApiContext, None],
    symbol: Symbol,
    start: Start,
    end: RowsEnd = None,
    exchanges: Annotated[
        list[str] | None,
        strawberry.argument(description="ccxt ids or * (multi-venue totals); all if omitted."),
    ] = None,
    timeframe: Annotated[
        str | None, strawberry.argument(description="Only bars of this length, e.g. 30m.")
    ] = None,
) -> list[RealizedLiquidationBar]:
    """Realized liquidations stored for the symbol's base asset, per bar and source."""
    ctx = info.context
    start, end = await ctx.checked_range(start, end)
    async with ctx.session() as session:
        known = await market_store.known_symbols(session)
        if symbol not in known:
            raise not_found("symbol", symbol, known)
        bars = _check_rows(
            ctx,
            await liquidations_store.realized_bars(
                session,
                symbol.split("/", 1)[0],
                exchanges or None,
                timeframe,
                start,
                end,
                ctx.limits.max_series_points + 1,
            ),
        )
    ctx.cache.mark(await _closed(ctx, end))
    return [RealizedLiquidationBar.of(b) for b in bars]


def realized_for(
    rows: list[RealizedBar], scopes: tuple[str, ...], aggregate: bool
) -> dict[datetime, tuple[float, float, str, bool]]:
    """Per bar, the realized figures comparable to the model's series: for the cross-exchange
    total a multi-venue (*) source if stored, else the sum of every requested exchange."""
    by_ts: dict[datetime, dict[str, RealizedBar]] = {}
    for r in rows:  # first source (alphabetical) per exchange and bar
        by_ts.setdefault(r.ts, {}).setdefault(r.exchange, r)
    out = {}
    for ts, per_exchange in by_ts.items():
        if aggregate and "*" in per_exchange:
            r = per_exchange["*"]
            out[ts] = (r.long_usd, r.short_usd, f"{r.source}/*", r.lower_bound)
        elif all(s in per_exchange for s in scopes):
            chosen = [per_exchange[s] for s in scopes]
            out[ts] = (
                sum(r.long_usd for r in chosen),
                sum(r.short_usd for r in chosen),
                ",".join(f"{r.source}/{r.exchange}" for r in chosen),
                any(r.lower_bound for r in chosen),
            )
    return out


async def swept_levels(
    info: strawberry.Info[ApiContext, None],
    symbol: Symbol,
    start: Start,
    end: PointsEnd = None,
    exchanges: Exchanges = None,
    interval: Annotated[
        Interval | None,
        strawberry.argument(
            description="Bar width; the base bar if omitted (30m matches CoinGlass totals)."
        ),
    ] = None,
) -> list[SweptBar]:
    """Per bar, the notional the model says was liquidated beside the realized liquidations
    stored for the same bar and exchanges (realized fields are null where no source covers
    the bar at this interval)."""
    ctx = info.context
    start, end = await ctx.checked_range(start, end)
    base_s = timeframe_seconds(ctx.timeframe)
    step = interval.seconds if interval else base_s
    if step < base_s:
        raise BadUserInput(f"interval must be at least the base bar ({ctx.timeframe})")
    _check_points(ctx, start, end, step)
    start = floor_to(start, step)
    async with ctx.session() as session:
        found = await selection.resolve(session, symbol, exchanges)
        rows = await heatmap_store.swept_buckets(
            session, found.series_ids, start, end, step, ctx.limits.max_series_points
        )
        aggregate = found.scopes == (selection.AGGREGATE,)
        realized_rows = await liquidations_store.realized_bars(
            session,
            symbol.split("/", 1)[0],
            [*found.member_scopes, "*"] if aggregate else list(found.member_scopes),
            LABELS[step],
            start,
            end,
            ctx.limits.max_series_points * 4,
        )
        final = await heatmap_store.complete_until(session, found.series_ids, ctx.timeframe)
    # the model's side is final once materialized; realized totals are revised for about a day
    ctx.cache.mark(final is not None and end <= final and await _closed(ctx, end))
    realized = realized_for(realized_rows, found.member_scopes, aggregate)
    out = []
    for r in rows:
        real = realized.get(r.ts)
        out.append(
            SweptBar(
                start=r.ts,
                ts=r.ts,
                bars=r.bars,
                predicted_long_usd=r.long_usd,
                predicted_short_usd=r.short_usd,
                realized_long_usd=real[0] if real else None,
                realized_short_usd=real[1] if real else None,
                realized_source=real[2] if real else None,
                realized_lower_bound=real[3] if real else None,
            )
        )
    return out
