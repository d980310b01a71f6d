"""liquidationMap (the map at an instant) and snapshots (the same over history, paged).

Argument descriptions name the limits that bound them as ``{limit:<name>}``: the schema fills in
the configured value (:func:`api.schema.describe_limits`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

import strawberry

from api import selection
from api.context import ApiContext
from api.errors import BadUserInput
from api.resolvers.bands import band_filter, band_labels, only_bands
from api.selection import SeriesSet
from api.timerange import timeframe_seconds, utc
from api.types.connection import PageInfo, SnapshotConnection, SnapshotEdge
from api.types.maps import LiquidationMap
from api.types.scalars import EARLIEST, LATEST, LeverageBand, SnapshotResolution
from maps.request import check_price_window, check_within_pct, rebucket_factor
from maps.view import map_view
from models import heatmap_store
from models.heatmap_store import Snapshot

Symbol = Annotated[str, strawberry.argument(description="Unified symbol, e.g. BTC/USDT:USDT.")]
Exchanges = Annotated[
    list[str] | None,
    strawberry.argument(description="ccxt exchange ids; omitted or empty = cross-exchange total."),
]
PriceMin = Annotated[
    float | None,
    strawberry.argument(
        description="Lowest price to include (USD). A map has at most {limit:max_levels} "
        "price levels (LIQMAP_API_MAX_LEVELS; RANGE_TOO_LARGE above)."
    ),
]
PriceMax = Annotated[
    float | None,
    strawberry.argument(
        description="Highest price to include (USD). A map has at most {limit:max_levels} "
        "price levels (LIQMAP_API_MAX_LEVELS; RANGE_TOO_LARGE above)."
    ),
]
WithinPct = Annotated[
    float | None,
    strawberry.argument(
        description="Only levels within ±withinPct % of the map's price (0 < withinPct ≤ 100); "
        "priceMin/priceMax, when given, win on their side. Omitted: the full map (maps of "
        "model v2 and later span at least ±30 %)."
    ),
]
BucketSize = Annotated[
    float | None,
    strawberry.argument(
        description="Re-bucket to this width (a multiple of the stored grid). A map has at most "
        "{limit:max_levels} price levels (LIQMAP_API_MAX_LEVELS; RANGE_TOO_LARGE above)."
    ),
]
Leverage = Annotated[
    list[LeverageBand] | None,
    strawberry.argument(
        description="Only positions of these leverage bands (e.g. [UP_TO_10X]): the map of "
        "those bands alone — levels, totals, clusters and max pain — with leverageBands naming "
        "them. Omitted (or every band): the whole map, the same answer as without the filter. "
        "Maps stored without bands (model v1/v2 snapshots): NO_LEVERAGE_BANDS."
    ),
]
SPAN = "at most {limit:max_span_days} days after start (LIQMAP_API_MAX_SPAN_DAYS)"


def build_map(
    series: SeriesSet,
    parts: Sequence[Snapshot],
    *,
    timeframe_s: int,
    price_min: float | None,
    price_max: float | None,
    bucket_size: float | None,
    max_levels: int,
    mask: int = 0,
) -> LiquidationMap:
    """One map from each series' snapshot of one instant (several series are summed), of the
    leverage bands in ``mask`` only when it is not 0."""
    parts = [only_bands(p, mask) for p in parts]
    view = map_view(
        [p.vector for p in parts],
        [p.price for p in parts],
        series.bucket_size,
        bucket_size=bucket_size,
        price_min=price_min,
        price_max=price_max,
        max_levels=max_levels,
        bands=[p.bands for p in parts],
    )
    at = min(p.ts for p in parts) + timedelta(seconds=timeframe_s)  # the bar's close
    versions = ", ".join(sorted({p.model_version for p in parts}))
    return LiquidationMap.of(series, at, view, versions, band_labels(mask))


async def liquidation_map(
    info: strawberry.Info[ApiContext, None],
    symbol: Symbol,
    exchanges: Exchanges = None,
    at: Annotated[
        datetime | None, strawberry.argument(description="Instant to show; latest if omitted.")
    ] = None,
    price_min: PriceMin = None,
    price_max: PriceMax = None,
    bucket_size: BucketSize = None,
    within_pct: WithinPct = None,
    leverage: Leverage = None,
) -> LiquidationMap | None:
    """The liquidation map at an instant: USD at risk per price bucket, walls and max pain.
    The full map by default; priceMin/priceMax or withinPct narrow it. Null when nothing was
    materialized at or before that instant."""
    ctx = info.context
    check_price_window(price_min, price_max)
    if within_pct is not None:
        check_within_pct(within_pct)
    mask = band_filter(leverage)
    step = timeframe_seconds(ctx.timeframe)
    async with ctx.session() as session:
        found = await selection.resolve(session, symbol, exchanges)
        rebucket_factor(bucket_size, found.bucket_size)
        at_bar = (
            datetime(9999, 1, 1, tzinfo=UTC) if at is None else utc(at) - timedelta(seconds=step)
        )
        parts = await heatmap_store.snapshots_at(session, found.series_ids, at_bar, ctx.timeframe)
        final = (
            await heatmap_store.complete_until(session, found.series_ids, ctx.timeframe)
            if at is not None
            else None
        )
    # an explicit instant up to which every series has materialized will not change
    ctx.cache.mark(
        at is not None and final is not None and utc(at) <= final,
        found.series_ids,
        None if at is None else utc(at),
    )
    if not parts:
        return None
    if within_pct is not None:
        price = sum(p.price for p in parts) / len(parts)  # the map's price (map_view's mean)
        if price_min is None:
            price_min = price * (1 - within_pct / 100)
        if price_max is None:
            price_max = price * (1 + within_pct / 100)
    return build_map(
        found,
        parts,
        timeframe_s=step,
        price_min=price_min,
        price_max=price_max,
        bucket_size=bucket_size,
        max_levels=ctx.limits.max_levels,
        mask=mask,
    )


def encode_cursor(ts: datetime) -> str:
    return base64.urlsafe_b64encode(f"ts:{round(ts.timestamp() * 1000)}".encode()).decode()


def decode_cursor(cursor: str) -> datetime:
    """The instant an ``endCursor`` names; anything else (garbage, a number out of range, an
    instant outside the DateTime range) is ``BAD_USER_INPUT``."""
    try:
        if len(cursor) > 64:  # a cursor this API made is ~24 characters
            raise ValueError("too long")
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        kind, ms = text.split(":", 1)
        if kind != "ts":
            raise ValueError(kind)
        moment = datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
        if not EARLIEST <= moment < LATEST:
            raise ValueError(ms)
        return moment
    except (ValueError, UnicodeError, OverflowError, OSError):
        raise BadUserInput(f"invalid cursor {cursor[:64]!r}") from None


async def snapshots(
    info: strawberry.Info[ApiContext, None],
    symbol: Symbol,
    start: Annotated[datetime, strawberry.argument(description="First instant (inclusive).")],
    end: Annotated[
        datetime | None,
        strawberry.argument(
            description=f"Last instant (exclusive); now if omitted. {SPAN[0].upper()}{SPAN[1:]}; "
            "RANGE_TOO_LARGE above."
        ),
    ] = None,
    exchanges: Exchanges = None,
    resolution: Annotated[
        SnapshotResolution, strawberry.argument(description="Stored resolution to page through.")
    ] = SnapshotResolution.ONE_HOUR,
    first: Annotated[
        int,
        strawberry.argument(
            description="Page size: 0 to {limit:max_page_size} snapshots "
            "(LIQMAP_API_MAX_PAGE_SIZE; BAD_USER_INPUT above)."
        ),
    ] = 24,
    after: Annotated[
        str | None, strawberry.argument(description="endCursor of the previous page.")
    ] = None,
    price_min: PriceMin = None,
    price_max: PriceMax = None,
    bucket_size: BucketSize = None,
    exchange: Annotated[
        str | None,
        strawberry.argument(
            description="One exchange; omitted = cross-exchange total.",
            deprecation_reason="Use exchanges, a list as in every other field: exchanges: "
            '["binanceusdm"] is the same.',
        ),
    ] = None,
    leverage: Leverage = None,
) -> SnapshotConnection:
    """Historical liquidation maps, oldest first, paged with keyset (time) cursors. Times are
    the instants the maps describe (bar closes)."""
    ctx = info.context
    limits = ctx.limits
    if first < 0:
        raise BadUserInput("first must not be negative")
    if first > limits.max_page_size:
        raise BadUserInput(
            f"first must be at most {limits.max_page_size} (the page size limit); page on "
            "with after",
            max_page_size=limits.max_page_size,
        )
    if exchange is not None and exchanges is not None:
        raise BadUserInput("give exchanges or the deprecated exchange, not both")
    mask = band_filter(leverage)
    if exchange:
        exchanges = [exchange]
    check_price_window(price_min, price_max)
    start, end = await ctx.snapshot_range(start, end)
    step = timedelta(seconds=timeframe_seconds(ctx.timeframe))
    after_bar = decode_cursor(after) - step if after else datetime(1970, 1, 1, tzinfo=UTC)
    async with ctx.session() as session:
        found = await selection.resolve(session, symbol, exchanges)
        rebucket_factor(bucket_size, found.bucket_size)
        # bars whose close lies in [start, end): open in [start - step, end - step)
        pages = [
            await heatmap_store.snapshot_page(
                session, sid, str(resolution.value), start - step, end - step, after_bar, first + 1
            )
            for sid in found.series_ids
        ]
        final = await heatmap_store.complete_until(session, found.series_ids, ctx.timeframe)
    by_ts: dict[datetime, list[Snapshot]] = {}
    for page in pages:
        for snap in page:
            by_ts.setdefault(snap.ts, []).append(snap)
    stamps = sorted(by_ts)
    # final when the range is, and also when a bar after the page is materialized in every
    # series: new bars land after it, so neither the page nor hasNextPage can change
    through = end
    if len(stamps) > first and final is not None and stamps[first] + step <= final:
        through = min(end, stamps[first] + step)
    ctx.cache.mark(final is not None and through <= final, found.series_ids, through)
    edges = []
    for ts in stamps[:first]:
        node = build_map(
            found,
            by_ts[ts],
            timeframe_s=int(step.total_seconds()),
            price_min=price_min,
            price_max=price_max,
            bucket_size=bucket_size,
            max_levels=limits.max_levels,
            mask=mask,
        )
        edges.append(SnapshotEdge(cursor=encode_cursor(node.at), node=node))
    return SnapshotConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(stamps) > first,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
