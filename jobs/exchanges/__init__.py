"""Exchange adapters over ccxt: the only code that knows each venue's quirks."""

from jobs.exchanges.base import (
    SUPPORTED_EXCHANGES,
    ExchangeAdapter,
    adapter_class,
    create_adapter,
)
from liqmap.timeframes import timeframe_ms

__all__ = [
    "SUPPORTED_EXCHANGES",
    "ExchangeAdapter",
    "adapter_class",
    "create_adapter",
    "timeframe_ms",
]
