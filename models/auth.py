"""API keys for third-party integrations; only a hash of each key is stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)  # shown in listings
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer, server_default="600")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]


class RateLimitBucket(Base):
    """One client's token bucket, shared by every API process (GCRA: ``tat`` is the theoretical
    arrival time of its next request, in epoch seconds by the database's clock). UNLOGGED: a
    crash of the database forgets the buckets (they all refill), and writes skip the WAL."""

    __tablename__ = "rate_limit_buckets"
    __table_args__ = {"prefixes": ["UNLOGGED"]}  # noqa: RUF012

    client: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat: Mapped[float] = mapped_column(Double)
