"""heatmap: the time × price matrices of a range, assembled by numpy from stored vectors."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import strawberry

from api import selection
from api.context import ApiContext
from api.errors import BadUserInput
from api.resolvers.bands import band_filter, no_leverage_bands
from api.resolvers.maps import Exchanges, Symbol
from api.timerange import ceil_to, floor_to, timeframe_seconds
from api.types.heatmap import Heatmap, HeatmapData
from api.types.scalars import Interval, LeverageBand, MatrixEncoding
from maps import heatmap as layout
from maps.bands import FULL_MASK, LEVERAGE_BANDS, bands_of
from maps.request import check_price_window, check_within_pct, rebucket_factor
from models import heatmap_store
from models.heatmap_store import HOURLY, Column, ColumnRef
from models.market_store import MarketRow


def pick_interval(
    span_s: float, max_columns: int, base_s: int, fine_from: datetime | None, start: datetime
) -> Interval:
    """The finest interval that fits ``max_columns`` and has stored data at ``start``."""
    sub_hour_stored = fine_from is not None and start >= fine_from
    step = layout.finest_step(
        span_s, max_columns, base_s, [i.seconds for i in Interval], sub_hour_stored
    )
    return Interval.ONE_DAY if step is None else Interval(step)


HEATMAP_CELLS = (
    "Rows × columns is at most {limit:max_matrix_cells} cells per matrix "
    "(LIQMAP_API_MAX_MATRIX_CELLS; RANGE_TOO_LARGE above)."
)

PARALLEL_CHUNK = 150  # snapshots per query when a heatmap reads many from PostgreSQL


async def read_columns(
    ctx: ApiContext, resolution: str, index: list[ColumnRef], mask: int = 0
) -> dict[ColumnRef, Column]:
    """The vectors of the indexed snapshots: from the column cache where present (while the
    snapshot listener runs), the rest from PostgreSQL in one query per chunk of a series.
    ``mask`` 0 reads the totals; otherwise the sums of those leverage bands (``maps.bands``),
    and a snapshot stored without bands is ``NO_LEVERAGE_BANDS``.

    Every query takes a pooled connection of its own and gives it back when done: a request
    never holds a connection while it waits for another, so any number of concurrent heatmaps
    cannot deadlock the pool (each would hold one and wait for a second until the pool timeout).
    """
    cache = ctx.columns if await ctx.hub.ensure_listening() else None
    out: dict[ColumnRef, Column] = {}
    missing: dict[int, list[ColumnRef]] = {}
    for ref in index:
        column = cache.get((ref.series_id, resolution, ref.ts, mask)) if cache is not None else None
        if column is None:
            missing.setdefault(ref.series_id, []).append(ref)
        else:
            out[ref] = column
    generation = ctx.hub.generation
    chunks = [
        (sid, refs[i : i + PARALLEL_CHUNK])
        for sid, refs in missing.items()
        for i in range(0, len(refs), PARALLEL_CHUNK)
    ]

    async def fetch(chunk: tuple[int, list[ColumnRef]]) -> dict[datetime, Column]:
        sid, refs = chunk
        stamps = [r.ts for r in refs]
        async with ctx.session() as own:
            if mask == 0:
                return await heatmap_store.snapshot_columns(own, sid, resolution, stamps)
            found = await heatmap_store.snapshot_band_columns(own, sid, resolution, stamps, mask)
        bare = sorted(ts for ts, column in found.items() if column is None)
        if bare:
            raise no_leverage_bands(
                bare[0], "omit leverage, or ask for a range the current model materialized"
            )
        return {ts: column for ts, column in found.items() if column is not None}

    # large reads run on several connections at once (each in a session of its own)
    fetched = list(await asyncio.gather(*(fetch(c) for c in chunks)))
    for (_, refs), found in zip(chunks, fetched, strict=True):
        for ref in refs:
            if ref.ts in found:
                out[ref] = found[ref.ts]
    if cache is not None and ctx.hub.generation == generation:  # nothing rewritten meanwhile
        for sid, refs in missing.items():
            for ref in refs:
                if ref in out:
                    cache.put((sid, resolution, ref.ts, mask), out[ref])
    return out


async def heatmap(
    info: strawberry.Info[ApiContext, None],
    symbol: Symbol,
    start: Annotated[datetime, strawberry.argument(description="Start of the range.")],
    end: Annotated[
        datetime | None,
        strawberry.argument(
            description="End of the range; now if omitted. At most {limit:max_span_days} days "
            "after start (LIQMAP_API_MAX_SPAN_DAYS) and at most {limit:max_heatmap_columns} "
            "columns of the interval (LIQMAP_API_MAX_HEATMAP_COLUMNS); RANGE_TOO_LARGE above."
        ),
    ] = None,
    exchanges: Exchanges = None,
    interval: Annotated[
        Interval | None,
        strawberry.argument(
            description="Column width; the finest with at most {limit:max_heatmap_columns} "
            "columns (LIQMAP_API_MAX_HEATMAP_COLUMNS) if omitted."
        ),
    ] = None,
    price_min: Annotated[
        float | None,
        strawberry.argument(description="Lowest price to include (USD). " + HEATMAP_CELLS),
    ] = None,
    price_max: Annotated[
        float | None,
        strawberry.argument(description="Highest price to include (USD). " + HEATMAP_CELLS),
    ] = None,
    within_pct: Annotated[
        float | None,
        strawberry.argument(
            description="Price axis: the traded range (lowest to highest price of the range's "
            "maps) widened by withinPct % each way (0 < withinPct ≤ 100); priceMin/priceMax, "
            "when given, win on their side. Omitted: the maps' full span, every stored level "
            "(maps of model v2 and later reach at least ±30 % of their price). " + HEATMAP_CELLS
        ),
    ] = None,
    bucket_size: Annotated[
        float | None,
        strawberry.argument(
            description="Row height: a multiple of the stored grid. " + HEATMAP_CELLS
        ),
    ] = None,
    encoding: Annotated[
        MatrixEncoding, strawberry.argument(description="Matrix encoding.")
    ] = MatrixEncoding.FLOAT32_BASE64,
    leverage: Annotated[
        list[LeverageBand] | None,
        strawberry.argument(
            description="Only positions of these leverage bands (e.g. [FROM_50X_TO_100X, "
            "ABOVE_100X] for a high-leverage heatmap): each cell is the sum of those bands. "
            "Omitted (or every band): the whole map, the same answer as without the filter. "
            "Maps stored without bands (model v1/v2 snapshots) cannot be filtered: "
            "NO_LEVERAGE_BANDS."
        ),
    ] = None,
) -> Heatmap:
    """The heatmap over time: long and short USD at risk per price row and time column, with
    the candles of the same columns. Without priceMin/priceMax the price axis spans the maps'
    full span, or the traded range ± withinPct %."""
    ctx = info.context
    limits = ctx.limits
    check_price_window(price_min, price_max)
    if within_pct is not None:
        check_within_pct(within_pct)
    mask = band_filter(leverage)
    start, end = await ctx.snapshot_range(start, end)
    base_s = timeframe_seconds(ctx.timeframe)
    async with ctx.session() as session:
        found = await selection.resolve(session, symbol, exchanges)
        factor = rebucket_factor(bucket_size, found.bucket_size)
        fine_from = None
        if interval is None or interval.seconds % layout.HOUR_S:
            fine_from = await heatmap_store.first_snapshot_ts(
                session, found.series_ids, ctx.timeframe
            )
        if interval is None:
            interval = pick_interval(
                (end - start).total_seconds(), limits.max_heatmap_columns, base_s, fine_from, start
            )
        elif interval.seconds % layout.HOUR_S and fine_from is not None and start < fine_from:
            raise BadUserInput(
                f"{ctx.timeframe} snapshots are kept from {fine_from.isoformat()} on; use "
                "interval ONE_HOUR or longer for older ranges"
            )
        step = interval.seconds
        if step < base_s:
            raise BadUserInput(f"interval must be at least the base bar ({ctx.timeframe})")
        resolution = HOURLY if step % layout.HOUR_S == 0 else ctx.timeframe
        t0, t1 = floor_to(start, step), ceil_to(end, step)
        columns = int((t1 - t0).total_seconds()) // step
        layout.check_columns(columns, limits.max_heatmap_columns)
        size = found.bucket_size * factor
        stored = layout.StoredRange()
        if price_min is None or price_max is None:
            stored = await heatmap_store.price_range(session, found.series_ids, resolution, t0, t1)
        rows = layout.price_rows(price_min, price_max, stored, within_pct, size)
        layout.check_cells(rows.count, columns, limits.max_matrix_cells)
        index = await heatmap_store.heatmap_column_index(
            session, found.series_ids, resolution, t0, t1, step
        )
    # the first session is closed: the reads below never wait for a connection while holding one

    async def freshness() -> tuple[datetime | None, list[MarketRow]]:
        async with ctx.session() as own:  # concurrent with the column read: its own session
            final = await heatmap_store.complete_until(own, found.series_ids, ctx.timeframe)
            return final, await selection.market_ids(own, found)

    columns_by_ref, (final, markets) = await asyncio.gather(
        read_columns(ctx, resolution, index, mask), freshness()
    )
    placements = [
        [
            (ref.column, c.first, c.long_usd, c.short_usd)
            for ref in index
            if ref.series_id == sid and (c := columns_by_ref.get(ref)) is not None
        ]  # a snapshot may vanish mid-read
        for sid in found.series_ids
    ]
    long_m, short_m = layout.matrices(rows, columns, factor, placements)
    ctx.cache.mark(final is not None and t1 <= final, found.series_ids, t1)
    return Heatmap(
        symbol=found.symbol,
        exchanges=found.exchanges,
        start=t0,
        end=t1,
        step_seconds=step,
        columns=columns,
        resolution=resolution,
        price_min=rows.first * size,
        price_step=size,
        rows=rows.count,
        encoding=encoding,
        max_usd=layout.peak(long_m, short_m),
        filled_columns=len({ref.column for ref in index}),
        leverage_bands=[LEVERAGE_BANDS[b] for b in bands_of(mask or FULL_MASK)],
        data=HeatmapData(
            series=found,
            long_usd=long_m,
            short_usd=short_m,
            candle_market_id=markets[0].id if markets else None,
            timeframe=ctx.timeframe,
        ),
    )
