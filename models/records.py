"""Normalized records: the row shapes exchange adapters produce and storage writes.

Adapters translate each exchange's quirks (field names, units, pagination) into these plain
records; the jobs validate them and write them to PostgreSQL. Times are epoch milliseconds (UTC);
prices in quote currency; USD values in USD (quote ≈ USD for USDT/USDC-settled markets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


def to_datetime(ms: int) -> datetime:
    """Epoch milliseconds (a record's time) → the database's UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_ms(ts: datetime) -> int:
    """A database datetime → epoch milliseconds."""
    return round(ts.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class MarketInfo:
    exchange: str  # liqmap exchange id, e.g. "binanceusdm"
    symbol: str  # unified ccxt symbol, e.g. "BTC/USDT:USDT"
    exchange_symbol: str  # the venue's own id, e.g. "BTCUSDT"
    base: str
    quote: str
    settle: str
    linear: bool  # False for inverse (coin-margined)
    contract_size: float  # base units per contract (linear) or quote units per contract (inverse)
    price_precision: float | None = None
    amount_precision: float | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class CandleRow:
    timestamp: int  # bar open
    open: float
    high: float
    low: float
    close: float
    volume: float | None = None  # base volume
    taker_buy_volume: float | None = None  # base volume bought by takers (None if unknown)


@dataclass(frozen=True, slots=True)
class OpenInterestRow:
    timestamp: int
    open_interest: float | None  # in base units (linear) or contracts (inverse)
    open_interest_usd: float | None


@dataclass(frozen=True, slots=True)
class FundingRateRow:
    timestamp: int
    funding_rate: float  # fraction per funding interval (3.5e-05, not percent)


@dataclass(frozen=True, slots=True)
class TierRow:
    tier: int
    min_notional: float
    max_notional: float
    maintenance_margin_rate: float
    maintenance_amount: float  # Binance "cum", Bybit "mmDeduction"
    max_leverage: float
    notional_unit: str = "quote"  # "quote" (USDT), "base" (coin, inverse) or "contracts" (OKX)


@dataclass(frozen=True, slots=True)
class TierTable:
    tiers: list[TierRow]
    source: str  # e.g. "api" or "shipped:binance_leverage_tiers_BTC_ETH_latest.json@2024-10-24"
    valid_from: int  # epoch ms the table is known to be valid from


@dataclass(frozen=True, slots=True)
class LiquidationEvent:
    exchange: str
    symbol: str
    timestamp: int
    side: str  # side of the *liquidated position*: "long" or "short"
    price: float
    quantity: float  # base units
    usd_value: float
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class RealizedTotal:
    """Liquidations that really happened in one bar, per source, venue and market."""

    source: str  # "stream" (the collector), "coinglass", …
    exchange: str  # ccxt id, or "*" for a multi-venue total
    base: str  # base asset, e.g. "BTC"
    symbol: str  # unified market, or "*" for every market of ``base``
    timeframe: str  # bar length, e.g. "30m"
    timestamp: int  # bar open, epoch ms
    long_usd: float  # long positions liquidated
    short_usd: float  # short positions liquidated
    events: int | None = None
    lower_bound: bool = False  # the source is known to undercount
    note: str | None = None
