"""Naming what to read: (symbol, exchanges) → the stored heatmap series behind it.

``exchanges`` omitted or empty means the cross-exchange aggregate (scope ``all``); one exchange
means its own series; several mean the sum of their series, computed on the fly.
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
    member_scopes: tuple[str, ...]  # the exchanges the data covers

    @property
    def exchanges(self) -> list[str]:
        return list(self.member_scopes)


async def resolve(session: AsyncSession, symbol: str, exchanges: Sequence[str] | None) -> SeriesSet:
    """Find the series, or raise ``NOT_FOUND`` naming close matches."""
    rows = await heatmap_store.series_of_symbol(session, symbol)
    if not rows:
        raise not_found("symbol", symbol, await market_store.known_symbols(session))
    by_scope = {r.scope: r for r in rows}
    members = tuple(sorted(s for s in by_scope if s != AGGREGATE))
    wanted = list(dict.fromkeys(e.strip() for e in exchanges or [] if e.strip()))
    if not wanted:
        if AGGREGATE in by_scope:
            chosen = [by_scope[AGGREGATE]]
            member_scopes = members
        else:
            chosen = [by_scope[s] for s in members]
            member_scopes = members
    else:
        for exchange in wanted:
            if exchange not in by_scope or exchange == AGGREGATE:
                raise not_found(f"exchange for {symbol}", exchange, members)
        chosen = [by_scope[e] for e in wanted]
        member_scopes = tuple(wanted)
    sizes = {r.bucket_size for r in chosen}
    if len(sizes) != 1:
        raise BadUserInput(f"{symbol}: the exchanges' series use different price grids {sizes}")
    return SeriesSet(
        symbol=symbol,
        scopes=tuple(r.scope for r in chosen),
        series_ids=tuple(r.id for r in chosen),
        bucket_size=sizes.pop(),
        member_scopes=member_scopes,
    )


async def market_ids(session: AsyncSession, series: SeriesSet) -> list[MarketRow]:
    """The markets behind a series set (for candles and coverage)."""
    rows = await market_store.markets(session, series.member_scopes)
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
