"""longShortSplit: long vs short notional within ±N % of price, now or as a series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import strawberry

from api import selection
from api.context import ApiContext
from api.resolvers.maps import Exchanges, Symbol
from api.selection import SeriesSet
from api.timerange import timeframe_seconds, utc
from api.types.scalars import SnapshotResolution
from api.types.split import ExchangeSplit, LongShortSplit
from maps import levels
from maps.request import check_within_pct
from models import heatmap_store
from models.heatmap_store import Snapshot

WithinPct = Annotated[
    float, strawberry.argument(description="Half-width of the window around price, percent.")
]


def split_of(
    found: SeriesSet, parts: list[Snapshot], within_pct: float, step_s: int
) -> LongShortSplit:
    """The split at one instant: each exchange measured around its own price."""
    split = levels.long_short_split([(p.vector, p.price, p.bucket_size) for p in parts], within_pct)
    return LongShortSplit(
        at=min(p.ts for p in parts) + timedelta(seconds=step_s),
        price=split.price,
        within_pct=within_pct,
        long_usd=split.total.long_usd,
        short_usd=split.total.short_usd,
        ratio=split.total.ratio,
        per_exchange=[
            ExchangeSplit(
                exchange=scope, long_usd=side.long_usd, short_usd=side.short_usd, ratio=side.ratio
            )
            for scope, side in zip(found.scopes, split.parts, strict=True)
        ],
    )


async def long_short_split(
    info: strawberry.Info[ApiContext, None],
    symbol: Symbol,
    exchanges: Exchanges = None,
    at: Annotated[
        datetime | None, strawberry.argument(description="Instant; latest if omitted.")
    ] = None,
    within_pct: WithinPct = 5.0,
) -> LongShortSplit | None:
    """Long vs short notional at risk within ±withinPct of price, per exchange and in total.
    With exchanges omitted, perExchange lists every exchange and the totals are their sum."""
    ctx = info.context
    check_within_pct(within_pct)
    step = timeframe_seconds(ctx.timeframe)
    async with ctx.session() as session:
        found = await selection.resolve(session, symbol, exchanges)
        if not found.member_scopes:  # no selected venue has a map (e.g. none has OI)
            ctx.cache.mark(False, found.series_ids)
            return None
        if found.scopes == (selection.AGGREGATE,) or found.excluded_scopes:
            # the members one by one (venues without maps are left out, as in the total)
            found = await selection.resolve(session, symbol, list(found.member_scopes))
        at_bar = (
            datetime(9999, 1, 1, tzinfo=UTC) if at is None else utc(at) - timedelta(seconds=step)
        )
        parts = await heatmap_store.snapshots_at(session, found.series_ids, at_bar, ctx.timeframe)
    ctx.cache.mark(False, found.series_ids)
    if len(parts) != len(found.series_ids):
        return None
    return split_of(found, parts, within_pct, step)


async def long_short_series(
    info: strawberry.Info[ApiContext, None],
    symbol: Symbol,
    start: Annotated[datetime, strawberry.argument(description="Start of the range.")],
    end: Annotated[
        datetime | None,
        strawberry.argument(
            description="End of the range; now if omitted. At most {limit:max_span_days} days "
            "after start (LIQMAP_API_MAX_SPAN_DAYS; RANGE_TOO_LARGE above); at most the oldest "
            "{limit:max_series_points} snapshots per exchange are read "
            "(LIQMAP_API_MAX_SERIES_POINTS)."
        ),
    ] = None,
    exchanges: Exchanges = None,
    within_pct: WithinPct = 5.0,
    resolution: Annotated[
        SnapshotResolution, strawberry.argument(description="Stored resolution to read.")
    ] = SnapshotResolution.ONE_HOUR,
) -> list[LongShortSplit]:
    """longShortSplit at every stored snapshot of a range, oldest first."""
    ctx = info.context
    check_within_pct(within_pct)
    start, end = await ctx.snapshot_range(start, end)
    step = timeframe_seconds(ctx.timeframe)
    delta = timedelta(seconds=step)
    async with ctx.session() as session:
        found = await selection.resolve(session, symbol, exchanges)
        if not found.member_scopes:  # no selected venue has a map (e.g. none has OI)
            ctx.cache.mark(False, found.series_ids)
            return []
        if found.scopes == (selection.AGGREGATE,) or found.excluded_scopes:
            found = await selection.resolve(session, symbol, list(found.member_scopes))
        pages = [
            await heatmap_store.snapshot_page(
                session,
                sid,
                str(resolution.value),
                start - delta,
                end - delta,
                datetime(1970, 1, 1, tzinfo=UTC),
                ctx.limits.max_series_points,
            )
            for sid in found.series_ids
        ]
        final = await heatmap_store.complete_until(session, found.series_ids, ctx.timeframe)
    ctx.cache.mark(final is not None and end <= final, found.series_ids, end)
    by_ts: dict[datetime, dict[int, Snapshot]] = {}
    for page in pages:
        for snap in page:
            by_ts.setdefault(snap.ts, {})[snap.series_id] = snap
    out = []
    for ts in sorted(by_ts):
        present = by_ts[ts]
        if len(present) == len(found.series_ids):  # only instants every exchange has
            parts = [present[sid] for sid in found.series_ids]
            out.append(split_of(found, parts, within_pct, step))
    return out
