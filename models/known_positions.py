"""Known positions: real positions and their exchange-computed liquidation prices.

On Hyperliquid every account's open positions are public with the price at which the venue
would liquidate them. These tables keep what was read, beside (never inside) the model's
estimates:

* ``known_snapshots``: one reading of a set of accounts on one venue (a live round over
  ``clearinghouseState``, or one recorded, already binned snapshot), with how the accounts were
  chosen. A live round is resumable: ``finished_at`` stays NULL until every account was read;
* ``known_snapshot_accounts``: which accounts a round covers and how each read went;
* ``known_positions``: each position as the venue reported it (live rounds);
* ``known_snapshot_markets``: per market of a snapshot, the totals, the price the levels were
  laid around and the venue's open interest when it was read (for the sample's share);
* ``known_level_bins``: binned levels as a recorded source delivered them (long/short USD per
  price bin, split by leverage band);
* ``known_liquidations``: the read accounts' own liquidation fills (the venue names the
  liquidated account), apart from the market's ``realized_liquidations``: what really happened
  to positions of the sample.

It is a sample of accounts on one venue, not the market.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class KnownSnapshot(Base):
    __tablename__ = "known_snapshots"
    __table_args__ = (UniqueConstraint("venue", "source", "taken_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    venue: Mapped[str] = mapped_column(String(32))  # exchange id, e.g. "hyperliquid"
    source: Mapped[str] = mapped_column(String(64))  # "clearinghouseState" or the file's origin
    taken_at: Mapped[datetime]  # when the reading started (a recorded file: its own stamp)
    finished_at: Mapped[datetime | None]  # NULL while a live round still has accounts to read
    selection: Mapped[str] = mapped_column(Text)  # how the accounts were chosen
    accounts_planned: Mapped[int] = mapped_column(Integer)
    # the venue's own times of the states read (live): the reading spans these
    state_from: Mapped[datetime | None]
    state_to: Mapped[datetime | None]
    leverage_bands: Mapped[list[str] | None] = mapped_column(ARRAY(String(16)))
    meta: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class KnownSnapshotAccount(Base):
    __tablename__ = "known_snapshot_accounts"

    snapshot_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("known_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    account: Mapped[str] = mapped_column(String(66), primary_key=True)
    dex: Mapped[str] = mapped_column(String(32), primary_key=True)  # "" = the main dex
    read_at: Mapped[datetime | None]  # NULL: planned, not read yet
    state_time: Mapped[datetime | None]  # the venue's time of the state it answered
    positions: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)


class KnownPositionRow(Base):
    __tablename__ = "known_positions"

    snapshot_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("known_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    account: Mapped[str] = mapped_column(String(66), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    dex: Mapped[str] = mapped_column(String(32))
    coin: Mapped[str] = mapped_column(String(64))  # the venue's own name, e.g. "flx:CRCL"
    side: Mapped[str] = mapped_column(String(8))  # long | short
    size: Mapped[float] = mapped_column(Double)  # base units
    notional_usd: Mapped[float] = mapped_column(Double)
    entry_price: Mapped[float | None] = mapped_column(Double)
    leverage: Mapped[float | None] = mapped_column(Double)
    margin_mode: Mapped[str | None] = mapped_column(String(16))
    liquidation_price: Mapped[float | None] = mapped_column(Double)


class KnownSnapshotMarket(Base):
    __tablename__ = "known_snapshot_markets"

    snapshot_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("known_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    price: Mapped[float | None] = mapped_column(Double)  # the price the levels lie around
    long_usd: Mapped[float] = mapped_column(Double)
    short_usd: Mapped[float] = mapped_column(Double)
    positions: Mapped[int] = mapped_column(Integer)
    accounts: Mapped[int | None] = mapped_column(Integer)  # NULL when the source does not say
    bin_width: Mapped[float | None] = mapped_column(Double)  # binned sources only
    venue_open_interest_usd: Mapped[float | None] = mapped_column(Double)


class KnownLevelBin(Base):
    __tablename__ = "known_level_bins"

    snapshot_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("known_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    side: Mapped[str] = mapped_column(String(8), primary_key=True)
    price: Mapped[float] = mapped_column(Double, primary_key=True)  # the bin's centre
    usd: Mapped[float] = mapped_column(Double)
    usd_by_leverage: Mapped[list[float]] = mapped_column(ARRAY(Double))


class KnownLiquidation(Base):
    __tablename__ = "known_liquidations"
    __table_args__ = (Index("ix_known_liquidations_venue_symbol_ts", "venue", "symbol", "ts"),)

    venue: Mapped[str] = mapped_column(String(32), primary_key=True)
    account: Mapped[str] = mapped_column(String(66), primary_key=True)  # the liquidated account
    fill_id: Mapped[str] = mapped_column(String(80), primary_key=True)  # the venue's trade id
    symbol: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime]
    side: Mapped[str] = mapped_column(String(8))  # the liquidated position's side
    price: Mapped[float] = mapped_column(Double)
    quantity: Mapped[float] = mapped_column(Double)  # base units
    usd_value: Mapped[float] = mapped_column(Double)
    raw: Mapped[dict | None] = mapped_column(JSONB)
    fetched_at: Mapped[datetime] = mapped_column(server_default=func.now())
