"""Realized liquidations: individual events from public streams, and per-bar totals."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Double, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class LiquidationEvent(Base):
    """One liquidation order seen on a public stream (``side`` is the liquidated position)."""

    __tablename__ = "liquidation_events"

    market_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("markets.id", ondelete="CASCADE"), primary_key=True
    )
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    side: Mapped[str] = mapped_column(String(5), primary_key=True)  # long | short
    price: Mapped[float] = mapped_column(Double, primary_key=True)
    quantity: Mapped[float] = mapped_column(Double, primary_key=True)  # base units
    usd_value: Mapped[float] = mapped_column(Double)
    raw: Mapped[dict | None] = mapped_column(JSONB)


class RealizedLiquidation(Base):
    """Realized liquidations summed over one bar, from a stream or an imported file.

    ``exchange`` is a ccxt id, or ``*`` for a multi-venue aggregate (the source names the venues).
    ``symbol`` is the unified market (``BTC/USDT:USDT``), or ``*`` for a total over every market of
    ``base`` (e.g. CoinGlass's BTC history), so a venue's linear and inverse markets of one base
    asset keep separate rows. ``lower_bound`` marks totals known to undercount (Binance pushes ≤1
    event/symbol/second).
    """

    __tablename__ = "realized_liquidations"
    __table_args__ = (Index(None, "base", "timeframe", "ts"),)

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    exchange: Mapped[str] = mapped_column(String(32), primary_key=True)
    base: Mapped[str] = mapped_column(String(16), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    long_usd: Mapped[float] = mapped_column(Double)
    short_usd: Mapped[float] = mapped_column(Double)
    events: Mapped[int | None] = mapped_column(BigInteger)
    lower_bound: Mapped[bool] = mapped_column(Boolean, server_default="false")
    note: Mapped[str | None] = mapped_column(Text)
