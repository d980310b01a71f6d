"""Naming what to read: (symbol, exchanges) → the stored heatmap series behind it.

``exchanges`` omitted or empty means the cross-exchange aggregate (scope ``all``); one exchange
means its own series; several mean the sum of their series, computed on the fly.

A venue's series exists as soon as the materializer has seen the market, but only venues with
their own open interest get snapshots: the others are named in ``excluded_scopes``, never in
the exchanges a map says it covers (the aggregate sums only the venues that have maps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import BadUserInput, not_found
from models import heatmap_store, market_store
from models.heatmap_store import AGGREGATE_SCOPE as AGGREGATE
from models.market_store import MarketRow


@dataclass(frozen=True, slots=True)
class SeriesSet:
    symbol: str
    scopes: tuple[str, ...]  # ("all",) or exchange ids
    series_ids: tuple[int, ...]
    bucket_size: float
    member_scopes: tuple[str, ...]  # the exchanges the data covers (those with snapshots)
    # exchanges selected (every tracked one, for the aggregate) that contribute nothing: no
    # snapshot was materialized for them (a venue without open interest gets none)
    excluded_scopes: tuple[str, ...] = ()

    @property
    def selected_scopes(self) -> tuple[str, ...]:
        """Every exchange the selection names, contributing or not."""
        return tuple(sorted((*self.member_scopes, *self.excluded_scopes)))

    @property
    def exchanges(self) -> list[str]:
        return list(self.member_scopes)


async def resolve(session: AsyncSession, symbol: str, exchanges: Sequence[str] | None) -> SeriesSet:
    """Find the series, or raise ``NOT_FOUND`` naming close matches."""
    rows = await heatmap_store.series_of_symbol(session, symbol)
    if not rows:
        raise not_found("symbol", symbol, await market_store.known_symbols(session))
    by_scope = {r.scope: r for r in rows}
    venues = tuple(sorted(s for s in by_scope if s != AGGREGATE))
    wanted = list(dict.fromkeys(e.strip() for e in exchanges or [] if e.strip()))
    if not wanted:
        selected = list(venues)
        total = by_scope.get(AGGREGATE)
        chosen = [total] if total is not None else [by_scope[s] for s in venues]
    else:
        for exchange in wanted:
            if exchange not in by_scope or exchange == AGGREGATE:
                raise not_found(f"exchange for {symbol}", exchange, venues)
        chosen = [by_scope[e] for e in wanted]
        selected = wanted
    member_scopes = tuple(e for e in selected if by_scope[e].has_snapshots)
    excluded = tuple(e for e in selected if not by_scope[e].has_snapshots)
    sizes = {r.bucket_size for r in chosen}
    if len(sizes) != 1:
        raise BadUserInput(f"{symbol}: the exchanges' series use different price grids {sizes}")
    return SeriesSet(
        symbol=symbol,
        scopes=tuple(r.scope for r in chosen),
        series_ids=tuple(r.id for r in chosen),
        bucket_size=sizes.pop(),
        member_scopes=member_scopes,
        excluded_scopes=excluded,
    )


async def market_ids(
    session: AsyncSession, series: SeriesSet, *, selected: bool = False
) -> list[MarketRow]:
    """The markets behind a series set (for candles and coverage); ``selected``: also those of
    the selected exchanges that contribute nothing."""
    scopes = series.selected_scopes if selected else series.member_scopes
    rows = await market_store.markets(session, scopes)
    return [m for m in rows if m.symbol == series.symbol]


async def market(session: AsyncSession, symbol: str, exchange: str) -> MarketRow:
    """One market, or ``NOT_FOUND`` with close matches."""
    rows = await market_store.markets(session)
    for m in rows:
        if m.exchange == exchange and m.symbol == symbol:
            return m
    exchanges = {m.exchange for m in rows}
    if exchange not in exchanges:
        raise not_found("exchange", exchange, exchanges)
    raise not_found(
        f"symbol on {exchange}", symbol, [m.symbol for m in rows if m.exchange == exchange]
    )
