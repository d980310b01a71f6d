"""heatmap: the time × price matrices of a range, assembled by numpy from stored vectors."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from typing import Annotated, Any

import numpy as np
import strawberry
from strawberry.types import Info

from api import selection, storage
from api.errors import BadUserInput, RangeTooLarge
from api.maps import check_price_window, rebucket_factor
from api.resolvers.maps import BucketSize, Exchanges, PriceMax, PriceMin, Symbol
from api.timerange import ceil_to, floor_to, timeframe_seconds
from api.types.heatmap import Heatmap, HeatmapData
from api.types.scalars import Interval, MatrixEncoding
from maps import grid

HOUR = 3600


def pick_interval(
    span_s: float, max_columns: int, base_s: int, fine_from: datetime | None, start: datetime
) -> Interval:
    """The finest interval that fits ``max_columns`` and has stored data at ``start``."""
    for interval in sorted(Interval, key=lambda i: i.seconds):
        if interval.seconds < base_s:
            continue
        if interval.seconds % HOUR and (fine_from is None or start < fine_from):
            continue  # sub-hour columns need base-resolution snapshots, kept for recent days only
        if math.ceil(span_s / interval.seconds) <= max_columns:
            return interval
    return Interval.ONE_DAY


PARALLEL_CHUNK = 150  # snapshots per query when a heatmap reads many from PostgreSQL


def _chunk_args(
    chunk: tuple[int, list[storage.ColumnRef]], resolution: str
) -> tuple[int, str, list[datetime]]:
    sid, refs = chunk
    return sid, resolution, [r.ts for r in refs]


async def read_columns(
    ctx: Any, resolution: str, index: list[storage.ColumnRef]
) -> dict[storage.ColumnRef, storage.Column]:
    """The vectors of the indexed snapshots: from the column cache where present (while the
    snapshot listener runs), the rest from PostgreSQL in one query per chunk of a series.

    Every query takes a pooled connection of its own and gives it back when done: a request
    never holds a connection while it waits for another, so any number of concurrent heatmaps
    cannot deadlock the pool (each would hold one and wait for a second until the pool timeout).
    """
    cache = ctx.columns if await ctx.hub.ensure_listening() else None
    out: dict[storage.ColumnRef, storage.Column] = {}
    missing: dict[int, list[storage.ColumnRef]] = {}
    for ref in index:
        column = cache.get((ref.series_id, resolution, ref.ts)) if cache is not None else None
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

    async def fetch(chunk: tuple[int, list[storage.ColumnRef]]) -> Any:
        async with ctx.session() as own:
            return await storage.snapshot_columns(own, *_chunk_args(chunk, resolution))

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
                    cache.put((sid, resolution, ref.ts), out[ref])
    return out


async def heatmap(
    info: Info,
    symbol: Symbol,
    start: Annotated[datetime, strawberry.argument(description="Start of the range.")],
    end: Annotated[
        datetime | None, strawberry.argument(description="End of the range; now if omitted.")
    ] = None,
    exchanges: Exchanges = None,
    interval: Annotated[
        Interval | None,
        strawberry.argument(description="Column width; the finest that fits if omitted."),
    ] = None,
    price_min: PriceMin = None,
    price_max: PriceMax = None,
    bucket_size: BucketSize = None,
    encoding: Annotated[
        MatrixEncoding, strawberry.argument(description="Matrix encoding.")
    ] = MatrixEncoding.FLOAT32_BASE64,
) -> Heatmap:
    """The heatmap over time: long and short USD at risk per price row and time column, with
    the candles of the same columns. Without priceMin/priceMax the price axis spans the traded
    range widened by a margin."""
    ctx = info.context
    limits = ctx.limits
    check_price_window(price_min, price_max)
    start, end = ctx.snapshot_range(start, end)
    base_s = timeframe_seconds(ctx.timeframe)
    async with ctx.session() as session:
        found = await selection.resolve(session, symbol, exchanges)
        factor = rebucket_factor(bucket_size, found.bucket_size)
        fine_from = None
        if interval is None or interval.seconds % HOUR:
            fine_from = await storage.first_snapshot_ts(session, found.series_ids, ctx.timeframe)
        if interval is None:
            interval = pick_interval(
                (end - start).total_seconds(), limits.max_heatmap_columns, base_s, fine_from, start
            )
        elif interval.seconds % HOUR and fine_from is not None and start < fine_from:
            raise BadUserInput(
                f"{ctx.timeframe} snapshots are kept from {fine_from.isoformat()} on; use "
                "interval ONE_HOUR or longer for older ranges"
            )
        step = interval.seconds
        if step < base_s:
            raise BadUserInput(f"interval must be at least the base bar ({ctx.timeframe})")
        resolution = "1h" if step % HOUR == 0 else ctx.timeframe
        t0, t1 = floor_to(start, step), ceil_to(end, step)
        columns = int((t1 - t0).total_seconds()) // step
        if columns > limits.max_heatmap_columns:
            raise RangeTooLarge(
                f"{columns} columns exceed the maximum of {limits.max_heatmap_columns}; use a "
                "longer interval or a shorter range",
                max_columns=limits.max_heatmap_columns,
            )
        size = found.bucket_size * factor
        low, high = price_min, price_max
        if low is None or high is None:
            traded_low, traded_high = await storage.price_range(
                session, found.series_ids, resolution, t0, t1
            )
            margin = limits.default_price_margin_pct / 100
            if traded_low is not None and traded_high is not None:
                low = traded_low * (1 - margin) if low is None else low
                high = traded_high * (1 + margin) if high is None else high
        if low is None or high is None or high <= low:
            low, high = 0.0, 0.0
        first_row = math.floor(low / size + 1e-9)
        end_row = max(math.ceil(high / size - 1e-9), first_row)
        rows = end_row - first_row
        if rows * columns > limits.max_matrix_cells:
            raise RangeTooLarge(
                f"{rows} rows × {columns} columns = {rows * columns} cells exceed the maximum of "
                f"{limits.max_matrix_cells}; narrow the price range, coarsen bucketSize or the "
                "interval, or shorten the range",
                max_cells=limits.max_matrix_cells,
            )
        index = await storage.heatmap_column_index(
            session, found.series_ids, resolution, t0, t1, step
        )
    # the first session is closed: the reads below never wait for a connection while holding one

    async def freshness() -> tuple[Any, list[storage.MarketRow]]:
        async with ctx.session() as own:  # concurrent with the column read: its own session
            final = await storage.complete_until(own, found.series_ids, ctx.timeframe)
            return final, await selection.market_ids(own, found)

    columns_by_ref, (final, markets) = await asyncio.gather(
        read_columns(ctx, resolution, index), freshness()
    )
    long_m = np.zeros((rows * factor, columns), np.float32)
    short_m = np.zeros((rows * factor, columns), np.float32)
    for sid in found.series_ids:
        mine = [
            (ref.column, columns_by_ref[ref])
            for ref in index
            if ref.series_id == sid and ref in columns_by_ref  # a snapshot may vanish mid-read
        ]
        long_m += grid.place_columns(
            rows * factor, columns, first_row * factor, [(j, c.first, c.long_usd) for j, c in mine]
        )
        short_m += grid.place_columns(
            rows * factor,
            columns,
            first_row * factor,
            [(j, c.first, c.short_usd) for j, c in mine],
        )
    filled = {ref.column for ref in index}
    long_m, _ = grid.rebucket_rows(long_m, first_row * factor, factor)
    short_m, _ = grid.rebucket_rows(short_m, first_row * factor, factor)
    ctx.cache.mark(final is not None and t1 <= final, found.series_ids, t1)
    peak = float(max(long_m.max(initial=0.0), short_m.max(initial=0.0)))
    return Heatmap(
        symbol=found.symbol,
        exchanges=found.exchanges,
        start=t0,
        end=t1,
        step_seconds=step,
        columns=columns,
        resolution=resolution,
        price_min=first_row * size,
        price_step=size,
        rows=rows,
        encoding=encoding,
        max_usd=peak,
        filled_columns=len(filled),
        data=HeatmapData(
            series=found,
            long_usd=long_m,
            short_usd=short_m,
            candle_market_id=markets[0].id if markets else None,
            timeframe=ctx.timeframe,
        ),
    )
