"""Exchanges, their markets and the maintenance-margin tier tables that price liquidations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Double,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Exchange(Base):
    """A venue, named by its ccxt id (``binanceusdm``, ``bybit``, ``okx``)."""

    __tablename__ = "exchanges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Market(Base):
    """One futures market on one exchange, named by its unified ccxt symbol."""

    __tablename__ = "markets"
    __table_args__ = (UniqueConstraint("exchange_id", "symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exchange_id: Mapped[str] = mapped_column(ForeignKey("exchanges.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(64))  # BTC/USDT:USDT
    exchange_symbol: Mapped[str] = mapped_column(String(64))  # BTCUSDT
    base: Mapped[str] = mapped_column(String(16))
    quote: Mapped[str] = mapped_column(String(16))
    settle: Mapped[str] = mapped_column(String(16))
    linear: Mapped[bool] = mapped_column(Boolean)  # False: inverse (coin-margined)
    contract_size: Mapped[float] = mapped_column(Double)
    price_precision: Mapped[float | None] = mapped_column(Double)
    amount_precision: Mapped[float | None] = mapped_column(Double)
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class MarginTier(Base):
    """One maintenance-margin tier, valid from a point in time (tables change; keep history)."""

    __tablename__ = "margin_tiers"

    market_id: Mapped[int] = mapped_column(
        ForeignKey("markets.id", ondelete="CASCADE"), primary_key=True
    )
    valid_from: Mapped[datetime] = mapped_column(primary_key=True)
    tier: Mapped[int] = mapped_column(Integer, primary_key=True)
    min_notional: Mapped[float] = mapped_column(Double)
    max_notional: Mapped[float] = mapped_column(Double)
    maintenance_margin_rate: Mapped[float] = mapped_column(Double)
    maintenance_amount: Mapped[float] = mapped_column(Double)
    max_leverage: Mapped[float] = mapped_column(Double)
    notional_unit: Mapped[str] = mapped_column(String(16))  # quote | base | contracts
    source: Mapped[str] = mapped_column(Text)  # "api" or "shipped:<file>@<date>"
    fetched_at: Mapped[datetime] = mapped_column(server_default=func.now())
