"""What a job process holds: settings, the database engine, one adapter per exchange."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.errors import ConfigurationError
from liqmap.logs import get_logger
from liqmap.settings import Settings
from models import market_store
from models.market_store import MarketRow

if TYPE_CHECKING:
    from jobs.exchanges import ExchangeAdapter

log = get_logger(__name__)

__all__ = ["ConfigurationError", "Runtime"]


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    adapters: dict[str, ExchangeAdapter] = field(default_factory=dict)
    markets: dict[tuple[str, str], MarketRow] = field(default_factory=dict)

    def adapter(self, exchange: str) -> ExchangeAdapter:
        if exchange not in self.adapters:
            from jobs.exchanges import create_adapter  # ccxt loads only when a job needs it

            try:
                self.adapters[exchange] = create_adapter(
                    exchange,
                    replay_dir=self.settings.replay_dir,
                    api_key=self.settings.binance_api_key if exchange == "binanceusdm" else None,
                    secret=self.settings.binance_api_secret if exchange == "binanceusdm" else None,
                    replay_latency_ms=self.settings.replay_latency_ms,
                    replay_clock=self.settings.replay_clock(),
                    replay_window=self.settings.replay_window,
                )
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
        return self.adapters[exchange]

    async def sync_markets(
        self, exchange: str, symbols: list[str] | None = None
    ) -> list[MarketRow]:
        """Load market metadata for the configured symbols and store it."""
        wanted = symbols if symbols is not None else self.settings.symbols_for(exchange)
        try:
            infos = await self.adapter(exchange).load_markets(wanted)
        except ValueError as exc:
            message = str(exc)
            raise ConfigurationError(
                message if message.startswith(f"{exchange}:") else f"{exchange}: {message}"
            ) from None
        async with self.engine.begin() as conn:
            refs = await market_store.upsert_markets(conn, infos)
        for ref in refs:
            self.markets[(ref.exchange, ref.symbol)] = ref
        return refs

    async def market(self, exchange: str, symbol: str) -> MarketRow:
        key = (exchange, symbol)
        if key not in self.markets:
            async with self.engine.connect() as conn:
                stored = await market_store.market(conn, exchange, symbol)
            if stored is not None:
                self.markets[key] = stored
            else:
                await self.sync_markets(exchange, [symbol])
        return self.markets[key]

    async def close(self) -> None:
        for adapter in self.adapters.values():
            try:
                await adapter.close()
            except Exception as exc:  # closing must never mask the real outcome
                log.warning("adapter close failed", exchange=adapter.exchange_id, error=str(exc))
        self.adapters.clear()
