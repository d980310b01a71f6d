"""knownLevels (real positions' liquidation levels) and their comparison with the model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import numpy as np
import strawberry

from api import selection
from api.context import ApiContext
from api.errors import not_found
from api.resolvers.maps import Exchanges, Symbol
from api.timerange import checked_range, timeframe_seconds, utc
from api.types.known import (
    DistanceProfileSide,
    KnownLevels,
    KnownLevelsComparison,
    KnownLiquidation,
)
from maps import known
from maps.distance import vector_profile
from maps.grid import add_vectors
from models import heatmap_store
from models import known_positions_store as kps
from models.known_positions_store import KnownCoverage, KnownLevel
from models.queries import Executor

KNOWN_VENUE = "hyperliquid"  # the venue whose accounts' positions are public

KnownExchange = Annotated[
    str,
    strawberry.argument(description="The venue of the known positions (ccxt id)."),
]


async def _snapshot(
    session: Executor, exchange: str, symbol: str, at: datetime | None
) -> KnownCoverage | None:
    """The newest snapshot at or before ``at``; NOT_FOUND for a venue or market without any."""
    markets = await kps.known_markets(session)
    if exchange not in {v for v, _ in markets}:
        raise not_found("venue with known positions", exchange, [v for v, _ in markets])
    symbols = [s for v, s in markets if v == exchange]
    if symbol not in symbols:
        raise not_found(f"symbol with known positions on {exchange}", symbol, symbols)
    return await kps.known_snapshot_at(session, exchange, symbol, at)


def _arrays(levels: list[KnownLevel]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    prices = np.array([lv.price for lv in levels], dtype=np.float64)
    is_long = np.array([lv.side == "long" for lv in levels], dtype=bool)
    usd = np.array([lv.usd for lv in levels], dtype=np.float64)
    return prices, is_long, usd


def _table(
    row: KnownCoverage, levels: list[KnownLevel], bucket_size: float
) -> tuple[known.KnownTable, float, tuple[str, ...], known.DistanceProfile]:
    """The snapshot's levels as buckets (recorded bins as made, positions at ``bucket_size``)
    and their distance-from-price profile (bins over their width, positions as points)."""
    prices, is_long, usd = _arrays(levels)
    price = row.price or 0.0
    if row.bin_width is not None:  # a recorded, binned source
        width = row.bin_width
        by_band = np.array([lv.usd_by_leverage for lv in levels], dtype=np.float64)
        bands = tuple(row.leverage_bands or ())
        table = known.group_bins(prices, width, is_long, usd, by_band.reshape(usd.size, -1))
        profile = known.known_profile(prices - width / 2, width, is_long, usd, price)
        return table, width, bands, profile
    leverage = np.array(
        [np.nan if lv.leverage is None else lv.leverage for lv in levels], dtype=np.float64
    )
    table = known.bin_positions(prices, is_long, usd, leverage, bucket_size)
    profile = known.known_profile(prices, 0.0, is_long, usd, price)
    return table, bucket_size, known.LEVERAGE_BANDS, profile


async def known_levels(
    info: strawberry.Info[ApiContext, None],
    symbol: Annotated[
        str, strawberry.argument(description="Unified symbol on the venue, e.g. BTC/USDC:USDC.")
    ],
    exchange: KnownExchange = KNOWN_VENUE,
    at: Annotated[
        datetime | None,
        strawberry.argument(
            description="The newest reading taken at or before; latest if omitted."
        ),
    ] = None,
    bucket_size: Annotated[
        float | None,
        strawberry.argument(
            description="Width to bin single positions into (USD; the symbol's map grid step if "
            "omitted). Recorded snapshots keep their source's bins."
        ),
    ] = None,
) -> KnownLevels | None:
    """Real positions' liquidation levels on one venue (Hyperliquid, where every account's
    positions are public): long/short USD per price bucket, split by leverage band, with which
    accounts they are and what share of the venue's open interest they hold. A sample of
    accounts on one venue, not the market. Null when nothing was read by that instant."""
    ctx = info.context
    known.check_bucket_size(bucket_size)
    # the known-positions job writes without a NOTIFY: never final, reused only briefly
    ctx.cache.mark(False)
    ctx.cache.mark_unannounced()
    async with ctx.session() as session:
        row = await _snapshot(session, exchange, symbol, None if at is None else utc(at))
        if row is None:
            return None
        levels = await kps.known_levels(session, row.snapshot_id, symbol)
    size = bucket_size or ctx.settings.bucket_size_for(symbol, row.price)
    table, width, bands, profile = _table(row, levels, size)
    return KnownLevels.of(row, table, width, bands, profile)


def _note(
    model: DistanceProfileSide, real: DistanceProfileSide, row: KnownCoverage
) -> str:  # what the two sides are, in words
    days = (real.at - model.at).total_seconds() / 86_400
    when = (
        f"{abs(days):.1f} days {'before' if days < 0 else 'after'} the model's map"
        if abs(days) >= 1 / 24
        else "within the hour of the model's map"
    )
    venues = ", ".join(model.exchanges) or "no venue"
    return (
        f"The model's map of {model.symbol} on {venues} at {model.at.isoformat()} beside the "
        f"known levels of {row.accounts_planned} accounts on {row.venue} ({real.symbol}) read "
        f"at {real.at.isoformat()}, {when}"
        + ("" if model.exchanges == real.exchanges else ": different venues")
        + (", different times (in a replay, different recorded windows)" if abs(days) >= 1 else "")
        + ". The shares compare shapes (how far from its own price each side's USD sits), not "
        "amounts. The known side is a sample of accounts on one venue, not the market."
    )


async def known_levels_comparison(
    info: strawberry.Info[ApiContext, None],
    symbol: Symbol,
    exchanges: Exchanges = None,
    at: Annotated[
        datetime | None,
        strawberry.argument(description="The model's instant; latest if omitted."),
    ] = None,
    known_symbol: Annotated[
        str | None,
        strawberry.argument(
            description="The known positions' market; BASE/USDC:USDC of symbol if omitted."
        ),
    ] = None,
    known_exchange: KnownExchange = KNOWN_VENUE,
    known_at: Annotated[
        datetime | None,
        strawberry.argument(
            description="The known reading taken at or before this; at or before the model's "
            "instant if omitted (else the newest)."
        ),
    ] = None,
) -> KnownLevelsComparison | None:
    """The model's distance-from-price profile beside the real one (share of each side's USD
    within ±1, 2, 5, 10 and 20 % of the price), each side labelled with its venues and time.
    Null when the model has no map or the venue no known levels."""
    ctx = info.context
    step = timeframe_seconds(ctx.timeframe)
    base = symbol.split("/", 1)[0]
    known_symbol = known_symbol or f"{base}/USDC:USDC"
    async with ctx.session() as session:
        found = await selection.resolve(session, symbol, exchanges)
        at_bar = (
            datetime(9999, 1, 1, tzinfo=UTC) if at is None else utc(at) - timedelta(seconds=step)
        )
        parts = await heatmap_store.snapshots_at(session, found.series_ids, at_bar, ctx.timeframe)
        ctx.cache.mark(False, found.series_ids)
        ctx.cache.mark_unannounced()
        if not parts:
            return None
        model_at = min(p.ts for p in parts) + timedelta(seconds=step)
        wanted = utc(known_at) if known_at is not None else model_at
        row = await _snapshot(session, known_exchange, known_symbol, wanted)
        if row is None and known_at is None:
            row = await kps.known_snapshot_at(session, known_exchange, known_symbol)
        if row is None:
            return None
        levels = await kps.known_levels(session, row.snapshot_id, known_symbol)
    price = float(np.mean([p.price for p in parts]))
    model_profile = vector_profile(add_vectors([p.vector for p in parts]), found.bucket_size, price)
    _, _, _, real_profile = _table(row, levels, found.bucket_size)
    model = DistanceProfileSide.of("model", found.exchanges, symbol, model_at, price, model_profile)
    real = DistanceProfileSide.of(
        "known", [row.venue], known_symbol, row.taken_at, row.price or 0.0, real_profile
    )
    return KnownLevelsComparison(
        model=model,
        known=real,
        same_venues=model.exchanges == real.exchanges,
        seconds_apart=(real.at - model.at).total_seconds(),
        note=_note(model, real, row),
    )


async def known_liquidations(
    info: strawberry.Info[ApiContext, None],
    symbol: Annotated[
        str, strawberry.argument(description="Unified symbol on the venue, e.g. BTC/USDC:USDC.")
    ],
    start: Annotated[datetime, strawberry.argument(description="Start of the range (inclusive).")],
    end: Annotated[
        datetime | None,
        strawberry.argument(description="End of the range (exclusive); now if omitted."),
    ] = None,
    exchange: KnownExchange = KNOWN_VENUE,
) -> list[KnownLiquidation]:
    """Liquidation fills of the accounts the known-positions job reads (their own, as the
    venue reports them), oldest first: what really happened to positions of the sample."""
    ctx = info.context
    start, end = checked_range(start, end, ctx.limits.max_span_days)
    ctx.cache.mark(False)
    ctx.cache.mark_unannounced()
    async with ctx.session() as session:
        rows = await kps.account_liquidations(
            session, exchange, symbol, start, end, ctx.limits.max_series_points
        )
    return [KnownLiquidation.of(r) for r in rows]
