"""Subscriptions: heatmapUpdated (each new snapshot column) and clusterAlert."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import Annotated

import numpy as np
import strawberry

from api import auth, selection
from api.context import ApiContext
from api.errors import BadUserInput, Unauthenticated
from api.resolvers.bands import band_filter, band_labels, only_bands
from api.resolvers.maps import Exchanges, Symbol
from api.selection import SeriesSet
from api.subscriptions import KeyRevoked, Resync
from api.timerange import timeframe_seconds
from api.types.alerts import ClusterAlert
from api.types.heatmap import HeatmapColumn, encode_matrix
from api.types.maps import Cluster
from api.types.scalars import LeverageBand, MatrixEncoding, Side
from maps import levels
from maps.request import check_alert
from models import heatmap_store
from models.heatmap_store import Snapshot

REVOKED = "the API key of this subscription has been revoked"
RESYNC_PAGE = 500  # snapshots read at a time when catching up after a listener outage
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


async def _single_series(
    info: strawberry.Info[ApiContext, None], symbol: str, exchanges: list[str] | None
) -> SeriesSet:
    async with info.context.session() as session:
        found = await selection.resolve(session, symbol, exchanges)
    if len(found.series_ids) != 1:
        raise BadUserInput("subscribe to one exchange or to the cross-exchange total")
    return found


async def _new_snapshots(
    info: strawberry.Info[ApiContext, None], found: SeriesSet
) -> AsyncGenerator[Snapshot, None]:
    """Each snapshot of the series committed after the subscription started, once per bar."""
    ctx = info.context
    sid = found.series_ids[0]
    async with ctx.subscription_slot(), ctx.hub.subscribe() as queue:
        async with ctx.session() as session:
            newest = await heatmap_store.last_snapshot_ts(session, found.series_ids, ctx.timeframe)
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
            if isinstance(event, Resync):
                # the listener was lost and is back: what was written meanwhile was never
                # announced, so read it (every bar after the last one delivered, base resolution)
                async with ctx.session() as session:
                    if key is not None and not await auth.key_is_active(session, key.id):
                        raise Unauthenticated(REVOKED)
                while True:
                    async with ctx.session() as session:
                        snaps = await heatmap_store.snapshot_page(
                            session,
                            sid,
                            ctx.timeframe,
                            delivered,
                            FAR_FUTURE,
                            delivered,
                            RESYNC_PAGE,
                        )
                    for snap in snaps:
                        delivered = snap.ts
                        yield snap
                    if len(snaps) < RESYNC_PAGE:
                        break
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
                snaps = await heatmap_store.snapshot_page(
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
    info: strawberry.Info[ApiContext, None],
    symbol: Symbol,
    exchanges: Exchanges = None,
    encoding: Annotated[
        MatrixEncoding, strawberry.argument(description="Encoding of the column vectors.")
    ] = MatrixEncoding.FLOAT32_BASE64,
    leverage: Annotated[
        list[LeverageBand] | None,
        strawberry.argument(
            description="Only these leverage bands, summed (as heatmap's leverage); every band "
            "if omitted."
        ),
    ] = None,
) -> AsyncGenerator[HeatmapColumn, None]:
    """Each new snapshot column as the materializer commits it (one exchange or the total)."""
    mask = band_filter(leverage)
    found = await _single_series(info, symbol, exchanges)
    step = timeframe_seconds(info.context.timeframe)
    labels = band_labels(mask)
    async for snap in _new_snapshots(info, found):
        vector = only_bands(snap, mask).vector
        long_usd, short_usd = vector.long_usd, vector.short_usd
        yield HeatmapColumn(
            symbol=found.symbol,
            exchanges=found.exchanges,
            at=snap.ts + timedelta(seconds=step),
            price=snap.price,
            price_min=vector.first * snap.bucket_size,
            price_step=snap.bucket_size,
            rows=int(long_usd.size),
            encoding=encoding,
            leverage_bands=labels,
            long=encode_matrix(long_usd.astype(np.float32).reshape(-1, 1), encoding),
            short=encode_matrix(short_usd.astype(np.float32).reshape(-1, 1), encoding),
        )


async def cluster_alert(
    info: strawberry.Info[ApiContext, None],
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
    check_alert(within_pct, min_usd)
    found = await _single_series(info, symbol, exchanges)
    step = timeframe_seconds(info.context.timeframe)
    near: set[tuple[Side, float, float]] = set()
    async for snap in _new_snapshots(info, found):
        walls = [
            Cluster.of(w)
            for w in levels.walls_near(
                snap.vector, snap.price, snap.bucket_size, within_pct=within_pct, min_usd=min_usd
            )
        ]
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
