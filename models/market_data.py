"""Time series ingested from exchanges: candles, open interest, funding rates.

Candles and open interest are range-partitioned by month on ``ts`` (see models.partitions).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Candle(Base):
    """One OHLCV bar (``ts`` = bar open), with taker-buy volume where the venue gives it."""

    __tablename__ = "candles"
    __table_args__ = {"postgresql_partition_by": "RANGE (ts)"}  # noqa: RUF012

    # no foreign key to markets: a per-row RI check cost 40 % of the bulk write path (migration
    # 0004); every batch is one market id its writer has just resolved from markets
    market_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    open: Mapped[float] = mapped_column(Double)
    high: Mapped[float] = mapped_column(Double)
    low: Mapped[float] = mapped_column(Double)
    close: Mapped[float] = mapped_column(Double)
    volume: Mapped[float | None] = mapped_column(Double)
    taker_buy_volume: Mapped[float | None] = mapped_column(Double)


class OpenInterest(Base):
    """Open interest at the *end* of the period starting at ``ts`` (amount and USD value)."""

    __tablename__ = "open_interest"
    __table_args__ = {"postgresql_partition_by": "RANGE (ts)"}  # noqa: RUF012

    market_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # no FK: see Candle
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    open_interest: Mapped[float | None] = mapped_column(Double)  # base units or contracts
    open_interest_usd: Mapped[float | None] = mapped_column(Double)


class FundingRate(Base):
    """A settled funding rate (fraction per interval, not percent)."""

    __tablename__ = "funding_rates"

    market_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("markets.id", ondelete="CASCADE"), primary_key=True
    )
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    funding_rate: Mapped[float] = mapped_column(Double)
