"""exchanges and markets."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.context import ApiContext
from api.errors import not_found
from api.types.markets import Exchange, Market
from models import market_store


async def exchanges(info: strawberry.Info[ApiContext, None]) -> list[Exchange]:
    """Exchanges with stored markets."""
    ctx = info.context
    ctx.cache.mark(False)
    async with ctx.session() as session:
        rows = await market_store.exchanges(session)
    return [Exchange(id=r.id, name=r.name) for r in rows]


async def markets(
    info: strawberry.Info[ApiContext, None],
    exchange: Annotated[
        str | None, strawberry.argument(description="Only this exchange (ccxt id).")
    ] = None,
) -> list[Market]:
    """Markets, optionally of one exchange, each with its data coverage."""
    ctx = info.context
    ctx.cache.mark(False)
    async with ctx.session() as session:
        if exchange is not None:
            known = [r.id for r in await market_store.exchanges(session)]
            if exchange not in known:
                raise not_found("exchange", exchange, known)
        rows = await market_store.markets(session, None if exchange is None else [exchange])
    return [Market.of(r) for r in rows]
