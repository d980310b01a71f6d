"""Realized liquidations: stream events, per-bar totals, and their reads (``queries.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from liqmap.timeframes import timeframe_name
from models.bulk import copy_upsert
from models.market_store import MarketRow
from models.queries import Executor, query
from models.records import LiquidationEvent, RealizedTotal, to_datetime

EVENT_COLUMNS = ("market_id", "ts", "side", "price", "quantity", "usd_value", "raw")
REALIZED_COLUMNS = (
    "source",
    "exchange",
    "base",
    "symbol",
    "timeframe",
    "ts",
    "long_usd",
    "short_usd",
    "events",
    "lower_bound",
    "note",
)


@dataclass(frozen=True, slots=True)
class RealizedBar:
    """Liquidations that really happened in one bar, per source and venue."""

    source: str
    exchange: str  # ccxt id, or * for a multi-venue total
    timeframe: str
    ts: datetime  # bar open
    long_usd: float
    short_usd: float
    events: int | None
    lower_bound: bool
    note: str | None


async def write_liquidation_events(
    conn: AsyncConnection, market_id: int, events: Sequence[LiquidationEvent]
) -> int:
    records = [
        (
            market_id,
            to_datetime(e.timestamp),
            e.side,
            e.price,
            e.quantity,
            e.usd_value,
            orjson.dumps(e.raw).decode() if e.raw else None,
        )
        for e in events
    ]
    return await copy_upsert(conn, "liquidation_events", EVENT_COLUMNS, records, update=False)


async def write_realized_totals(conn: AsyncConnection, rows: Sequence[RealizedTotal]) -> int:
    records = [
        (
            r.source,
            r.exchange,
            r.base,
            r.symbol,
            r.timeframe,
            to_datetime(r.timestamp),
            r.long_usd,
            r.short_usd,
            r.events,
            r.lower_bound,
            r.note,
        )
        for r in rows
    ]
    return await copy_upsert(conn, "realized_liquidations", REALIZED_COLUMNS, records)


async def refresh_realized_from_events(
    conn: AsyncConnection, market: MarketRow, timeframe_ms: int, first: datetime, last: datetime
) -> int:
    """Recompute per-bar realized totals of one market from its stored events (idempotent)."""
    params = {
        "tf": timeframe_name(timeframe_ms),
        "step": timeframe_ms,
        "market": market.id,
        "first": first,
        "last": last,
    }
    result = await conn.execute(query("refresh_realized_from_events"), params)
    return int(result.rowcount or 0)


async def realized_bars(
    conn: Executor,
    base: str,
    exchanges: Sequence[str] | None,
    timeframe: str | None,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[RealizedBar]:
    """Realized liquidations of a base asset in ``[start, end)``: one row per bar, source and
    venue (the stored total over the base's markets where there is one, else their sum);
    ``exchanges`` and ``timeframe`` None: all of them."""
    params = {
        "base": base,
        "start": start,
        "end": end,
        "limit": limit,
        "exchanges": None if exchanges is None else list(exchanges),
        "tf": timeframe,
    }
    return [RealizedBar(*r) for r in await conn.execute(query("realized_bars"), params)]
