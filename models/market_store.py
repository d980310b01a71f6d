"""Exchanges, their markets and the margin tier tables: reads and writes (``queries.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from models.bulk import copy_upsert
from models.queries import Executor, query
from models.records import MarketInfo, TierTable, to_datetime

EXCHANGE_NAMES = {"binanceusdm": "Binance USDⓈ-M", "bybit": "Bybit", "okx": "OKX"}


@dataclass(frozen=True, slots=True)
class ExchangeRow:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class MarketRow:
    """A stored market."""

    id: int
    exchange: str
    symbol: str
    exchange_symbol: str
    base: str
    quote: str
    settle: str
    linear: bool
    contract_size: float
    active: bool


@dataclass(frozen=True, slots=True)
class StoredTier:
    """One tier of a stored tier table, with the prices its units convert at."""

    valid_from: datetime
    tier: int
    min_notional: float
    max_notional: float
    maintenance_margin_rate: float
    maintenance_amount: float
    max_leverage: float
    notional_unit: str  # quote | base | contracts
    source: str
    close_at: float | None  # the market's close when the table became valid
    first_close: float | None  # its oldest stored close


async def exchanges(conn: Executor) -> list[ExchangeRow]:
    return [ExchangeRow(*r) for r in await conn.execute(query("exchanges"))]


async def markets(conn: Executor, exchanges: Sequence[str] | None = None) -> list[MarketRow]:
    """Every market, or those of ``exchanges``, by exchange and symbol."""
    params = {"exchanges": None if exchanges is None else list(exchanges)}
    return [MarketRow(*r) for r in await conn.execute(query("markets"), params)]


async def market(conn: Executor, exchange: str, symbol: str) -> MarketRow | None:
    params = {"exchange": exchange, "symbol": symbol}
    row = (await conn.execute(query("market"), params)).first()
    return None if row is None else MarketRow(*row)


async def upsert_markets(conn: Executor, infos: Sequence[MarketInfo]) -> list[MarketRow]:
    """Store the markets' metadata (and name their exchanges); the stored markets, in order."""
    out: list[MarketRow] = []
    for m in infos:
        name = EXCHANGE_NAMES.get(m.exchange, m.exchange)
        await conn.execute(query("insert_exchange"), {"id": m.exchange, "name": name})
        values = {
            "exchange_id": m.exchange,
            "symbol": m.symbol,
            "exchange_symbol": m.exchange_symbol,
            "base": m.base,
            "quote": m.quote,
            "settle": m.settle,
            "linear": m.linear,
            "contract_size": m.contract_size,
            "price_precision": m.price_precision,
            "amount_precision": m.amount_precision,
            "active": m.active,
        }
        market_id = (await conn.execute(query("upsert_market"), values)).scalar_one()
        out.append(
            MarketRow(
                market_id,
                m.exchange,
                m.symbol,
                m.exchange_symbol,
                m.base,
                m.quote,
                m.settle,
                m.linear,
                m.contract_size,
                m.active,
            )
        )
    return out


async def known_symbols(conn: Executor) -> list[str]:
    """Every symbol with a market or a heatmap series."""
    return [r[0] for r in await conn.execute(query("known_symbols"))]


TIER_COLUMNS = (
    "market_id",
    "valid_from",
    "tier",
    "min_notional",
    "max_notional",
    "maintenance_margin_rate",
    "maintenance_amount",
    "max_leverage",
    "notional_unit",
    "source",
)


async def write_tier_table(conn: AsyncConnection, market_id: int, table: TierTable) -> int:
    valid_from = to_datetime(table.valid_from)
    records = [
        (
            market_id,
            valid_from,
            t.tier,
            t.min_notional,
            t.max_notional,
            t.maintenance_margin_rate,
            t.maintenance_amount,
            t.max_leverage,
            t.notional_unit,
            table.source,
        )
        for t in table.tiers
    ]
    return await copy_upsert(conn, "margin_tiers", TIER_COLUMNS, records)


async def tier_tables(conn: Executor, market_id: int, timeframe: str) -> list[StoredTier]:
    """Every stored tier table of a market, oldest first, tiers ascending; each tier carries the
    market's close when its table became valid (``close_at``, else ``first_close``), the price
    at which tiers given in another unit are converted."""
    rows = await conn.execute(query("tier_tables"), {"market": market_id, "tf": timeframe})
    return [StoredTier(*r) for r in rows]
