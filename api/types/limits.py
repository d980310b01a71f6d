"""What the API accepts: its request limits and the rules a heatmap request must meet."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from api.types.base import described, field, resolver
from api.types.scalars import Interval

# (context, symbol, exchanges) → the oldest base-resolution snapshot; given by the resolver
FineResolutionFrom = Callable[[Any, str, list[str] | None], Awaitable[datetime | None]]


@described
class IntervalLimit:
    """One column width the heatmap accepts, and what it needs."""

    interval: Interval = field("The value to pass as heatmap(interval:).")
    seconds: int = field("Column width in seconds.")
    needs_base_snapshots: bool = field(
        "True for sub-hour columns: they read base-resolution snapshots, which are kept for the "
        "most recent days only, so the range must start at or after fineResolutionFrom."
    )


@described
class Limits:
    """The API's limits, for clients to offer only requests it accepts. A heatmap is refused
    when its span exceeds maxSpanDays, its columns (the range widened to whole intervals)
    exceed maxHeatmapColumns, rows × columns exceed maxMatrixCells, or a sub-hour interval
    starts before fineResolutionFrom; an omitted interval is the finest that passes."""

    max_span_days: float = field("Longest time range of any request (days).")
    max_heatmap_columns: int = field("Most time columns of one heatmap.")
    max_matrix_cells: int = field("Most cells (rows × columns) of one heatmap.")
    max_levels: int = field("Most price buckets of one liquidation map.")
    max_page_size: int = field("Most snapshots per page of snapshots.")
    max_series_points: int = field("Most rows of one time series (candles, swept levels…).")
    base_interval_seconds: int = field("The base bar in seconds; no interval is shorter.")
    recent_days: int = field(
        "Base-resolution snapshots are kept for about this many days before the newest bar."
    )
    intervals: list[IntervalLimit] = field("The heatmap's intervals, shortest first.")
    lookup: strawberry.Private[FineResolutionFrom]

    @resolver
    async def fine_resolution_from(
        self,
        info: Info,
        symbol: Annotated[
            str, strawberry.argument(description="Unified symbol, e.g. BTC/USDT:USDT.")
        ],
        exchanges: Annotated[
            list[str] | None,
            strawberry.argument(
                description="ccxt exchange ids; omitted or empty = cross-exchange total."
            ),
        ] = None,
    ) -> datetime | None:
        """The earliest start a heatmap of this symbol and exchanges may have with a sub-hour
        interval: its oldest stored base-resolution snapshot (null when none is stored)."""
        return await self.lookup(info.context, symbol, exchanges)
