"""Long versus short notional near the price."""

from __future__ import annotations

from datetime import datetime

from api.types.base import described, field


@described
class ExchangeSplit:
    """Long and short USD at risk within the window on one exchange (or all of them)."""

    exchange: str = field("ccxt exchange id, or all for the aggregate.")
    long_usd: float = field("Long USD at risk within ±withinPct of price.")
    short_usd: float = field("Short USD at risk within ±withinPct of price.")
    ratio: float | None = field("longUsd / shortUsd (null when shortUsd is 0).")


@described
class LongShortSplit:
    """Long vs short notional at risk within ±withinPct of the price at one instant."""

    at: datetime = field("The instant (close of its bar).")
    price: float = field("Price at that instant (mean over exchanges).")
    within_pct: float = field("Half-width of the window, percent of price.")
    long_usd: float = field("Long USD at risk in the window, all requested exchanges.")
    short_usd: float = field("Short USD at risk in the window, all requested exchanges.")
    ratio: float | None = field("longUsd / shortUsd (null when shortUsd is 0).")
    per_exchange: list[ExchangeSplit] = field("The same per exchange.")
