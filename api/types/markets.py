"""Exchanges, markets and the per-dataset coverage a client checks for freshness."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.context import ApiContext
from api.types.base import described, field, renamed, resolver
from models.jobs_store import MarketDatasetCoverage
from models.market_store import MarketRow


@described
class DatasetCoverage:
    """How much of one dataset is stored for a market and how the last ingest went."""

    dataset: str = field("candles, open_interest, funding or tiers.")
    first_at: datetime | None = field("Oldest stored timestamp.")
    last_at: datetime | None = field("Newest stored timestamp.")
    last_success: datetime | None = field("When the last successful ingest run finished.")
    last_status: str | None = field(
        "Status of the newest ingest run (succeeded, failed, rejected, unavailable…)."
    )
    last_error: str | None = field("Error of the newest run, if it failed.")
    unavailable_reason: str | None = field(
        "Why the venue cannot serve this dataset at all (lastStatus unavailable, e.g. open "
        "interest that was never recorded); null otherwise."
    )
    first_ts: datetime | None = field(
        "Oldest stored timestamp.", deprecation_reason=renamed("firstAt")
    )
    last_ts: datetime | None = field(
        "Newest stored timestamp.", deprecation_reason=renamed("lastAt")
    )

    @classmethod
    def of(cls, row: MarketDatasetCoverage) -> DatasetCoverage:
        return cls(
            dataset=row.dataset,
            first_at=row.first_ts,
            last_at=row.last_ts,
            first_ts=row.first_ts,
            last_ts=row.last_ts,
            last_success=row.last_success,
            last_status=row.last_status,
            last_error=row.last_error,
            unavailable_reason=row.last_error if row.last_status == "unavailable" else None,
        )


@described
class Market:
    """A futures market on one exchange."""

    exchange: str = field("ccxt exchange id, e.g. binanceusdm.")
    symbol: str = field("Unified ccxt symbol, e.g. BTC/USDT:USDT.")
    exchange_symbol: str = field("The venue's own market id, e.g. BTCUSDT.")
    base: str = field("Base currency, e.g. BTC.")
    quote: str = field("Quote currency, e.g. USDT.")
    settle: str = field("Settlement currency.")
    linear: bool = field("False for inverse (coin-margined) contracts.")
    contract_size: float = field("Contract size in base units (or USD for inverse).")
    active: bool = field("Whether the venue lists the market as active.")
    row: strawberry.Private[MarketRow]

    @resolver
    async def coverage(self, info: strawberry.Info[ApiContext, None]) -> list[DatasetCoverage]:
        """Coverage per dataset (candles, open_interest, funding, tiers)."""
        info.context.cache.mark_unannounced()
        rows = await info.context.loaders.market_coverage.load(self.row)
        return [DatasetCoverage.of(r) for r in rows]

    @classmethod
    def of(cls, row: MarketRow) -> Market:
        return cls(
            exchange=row.exchange,
            symbol=row.symbol,
            exchange_symbol=row.exchange_symbol,
            base=row.base,
            quote=row.quote,
            settle=row.settle,
            linear=row.linear,
            contract_size=row.contract_size,
            active=row.active,
            row=row,
        )


@described
class Exchange:
    """An exchange liqmap ingests."""

    id: str = field("ccxt exchange id.")
    name: str = field("Display name.")

    @resolver
    async def markets(self, info: strawberry.Info[ApiContext, None]) -> list[Market]:
        """Markets stored for this exchange."""
        rows = await info.context.loaders.markets_by_exchange.load(self.id)
        return [Market.of(r) for r in rows]
