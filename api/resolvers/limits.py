"""limits: what the API accepts, published so that clients offer only accepted requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from api import selection
from api.context import ApiContext
from api.timerange import timeframe_seconds
from api.types.limits import IntervalLimit, Limits
from api.types.scalars import Interval
from models import heatmap_store

HOUR = 3600


def limits(info: strawberry.Info[ApiContext, None]) -> Limits:
    """What the API accepts: the limits every request is checked against and the rules a
    heatmap's interval must meet."""
    ctx = info.context
    ctx.cache.mark(False)  # settings and retention change without a NOTIFY
    api = ctx.limits
    base_s = timeframe_seconds(ctx.timeframe)
    return Limits(
        max_span_days=api.max_span_days,
        max_heatmap_columns=api.max_heatmap_columns,
        max_matrix_cells=api.max_matrix_cells,
        max_levels=api.max_levels,
        max_page_size=api.max_page_size,
        max_series_points=api.max_series_points,
        base_interval_seconds=base_s,
        recent_days=ctx.settings.recent_days,
        intervals=[
            IntervalLimit(
                interval=interval,
                seconds=interval.seconds,
                needs_base_snapshots=interval.seconds % HOUR != 0,
            )
            for interval in sorted(Interval, key=lambda i: i.seconds)
            if interval.seconds >= base_s
        ],
        lookup=fine_resolution_from,
    )


async def fine_resolution_from(
    ctx: Any, symbol: str, exchanges: list[str] | None
) -> datetime | None:
    """The oldest base-resolution snapshot of the selection: what api.resolvers.heatmap checks
    a sub-hour interval's start against."""
    async with ctx.session() as session:
        found = await selection.resolve(session, symbol, exchanges)
        return await heatmap_store.first_snapshot_ts(session, found.series_ids, ctx.timeframe)
