"""Subscriptions: heatmapUpdated (each new snapshot column) and clusterAlert."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import Annotated

import numpy as np
import strawberry
from strawberry.types import Info

from api import auth, selection, storage
from api.errors import BadUserInput, Unauthenticated
from api.resolvers.maps import Exchanges, Symbol
from api.selection import SeriesSet
from api.subscriptions import KeyRevoked
from api.timerange import timeframe_seconds
from api.types.alerts import ClusterAlert
from api.types.heatmap import HeatmapColumn, encode_matrix
from api.types.maps import Cluster
from api.types.scalars import MatrixEncoding, Side
from maps import grid, levels

REVOKED = "the API key of this subscription has been revoked"


async def _single_series(info: Info, symbol: str, exchanges: list[str] | None) -> SeriesSet:
    async with info.context.session() as session:
        found = await selection.resolve(session, symbol, exchanges)
    if len(found.series_ids) != 1:
        raise BadUserInput("subscribe to one exchange or to the cross-exchange total")
    return found


async def _new_snapshots(info: Info, found: SeriesSet) -> AsyncGenerator[storage.Snapshot, None]:
    """Each snapshot of the series committed after the subscription started, once per bar."""
    ctx = info.context
    sid = found.series_ids[0]
    async with ctx.hub.subscribe() as queue:
        async with ctx.session() as session:
            newest = await storage.last_snapshot_ts(session, found.series_ids, ctx.timeframe)
        delivered = newest or datetime(1970, 1, 1, tzinfo=UTC)
        key = ctx.api_key
        while True:
            event = await queue.get()
            if isinstance(event, KeyRevoked):
                # a key revoked while its subscription runs gets nothing more: the subscription
                # ends with UNAUTHENTICATED as the revocation is announced
                if key is not None and event.prefix == key.prefix:
                    raise Unauthenticated(REVOKED)
                continue
            if event.series_id != sid or event.ts <= delivered:
                continue
            # the bars of this write that are newer than the last one delivered (a recompute
            # rewrites the old ones too: those were delivered already)
            async with ctx.session() as session:
                # and, should the announcement have been missed (listener reconnecting), at the
                # next write
                if key is not None and not await auth.key_is_active(session, key.id):
                    raise Unauthenticated(REVOKED)
                snaps = await storage.snapshot_page(
                    session,
                    sid,
                    event.resolution,
                    event.first,
                    event.ts + timedelta(microseconds=1),
                    delivered,
                    event.count,
                )
            for snap in snaps:
                delivered = snap.ts
                yield snap


async def heatmap_updated(
    info: Info,
    symbol: Symbol,
    exchanges: Exchanges = None,
    encoding: Annotated[
        MatrixEncoding, strawberry.argument(description="Encoding of the column vectors.")
    ] = MatrixEncoding.FLOAT32_BASE64,
) -> AsyncGenerator[HeatmapColumn, None]:
    """Each new snapshot column as the materializer commits it (one exchange or the total)."""
    found = await _single_series(info, symbol, exchanges)
    step = timeframe_seconds(info.context.timeframe)
    async for snap in _new_snapshots(info, found):
        v = snap.vector
        yield HeatmapColumn(
            symbol=found.symbol,
            exchanges=found.exchanges,
            at=snap.ts + timedelta(seconds=step),
            price=snap.price,
            price_min=v.first * snap.bucket_size,
            price_step=snap.bucket_size,
            rows=int(v.long_usd.size),
            encoding=encoding,
            long=encode_matrix(v.long_usd.astype(np.float32).reshape(-1, 1), encoding),
            short=encode_matrix(v.short_usd.astype(np.float32).reshape(-1, 1), encoding),
        )


def near_walls(
    vector: grid.BucketVector, price: float, bucket_size: float, within_pct: float, min_usd: float
) -> list[Cluster]:
    """Walls of at least ``min_usd`` whose nearest edge is within ``within_pct`` of price."""
    out = []
    for wall in levels.clusters(vector, min_usd=min_usd, limit=1_000):
        low = (vector.first + wall.start) * bucket_size
        high = (vector.first + wall.stop) * bucket_size
        distance = 100 * max(low - price, price - high, 0.0) / price
        if distance <= within_pct:
            out.append(
                Cluster(
                    side=Side(wall.side),
                    price_low=low,
                    price_high=high,
                    peak_price=(vector.first + wall.peak) * bucket_size,
                    notional_usd=wall.notional_usd,
                    distance_pct=distance,
                )
            )
    return out


async def cluster_alert(
    info: Info,
    symbol: Symbol,
    within_pct: Annotated[
        float, strawberry.argument(description="Alert when price is within this percent.")
    ],
    min_usd: Annotated[float, strawberry.argument(description="Smallest wall (USD).")],
    exchanges: Exchanges = None,
) -> AsyncGenerator[ClusterAlert, None]:
    """Fires when a new snapshot puts the price within withinPct of a liquidation wall of at
    least minUsd (walls as in LiquidationMap.clusters). A wall alerts once when the price comes
    near it and again only after the price has moved away."""
    if within_pct <= 0 or min_usd < 0:
        raise BadUserInput("withinPct must be positive and minUsd not negative")
    found = await _single_series(info, symbol, exchanges)
    step = timeframe_seconds(info.context.timeframe)
    near: set[tuple[Side, float, float]] = set()
    async for snap in _new_snapshots(info, found):
        walls = near_walls(snap.vector, snap.price, snap.bucket_size, within_pct, min_usd)
        now_near = {(w.side, w.price_low, w.price_high) for w in walls}
        for wall in walls:
            if (wall.side, wall.price_low, wall.price_high) not in near:
                yield ClusterAlert(
                    symbol=found.symbol,
                    exchanges=found.exchanges,
                    at=snap.ts + timedelta(seconds=step),
                    price=snap.price,
                    cluster=wall,
                )
        near = now_near
