"""Reading and writing the known-positions tables (``models.known_positions``, ``queries.sql``).

Writers are idempotent: a recorded snapshot is upserted on (venue, source, taken_at) and its
markets and bins replaced; a live round writes each account's positions replacing what an
earlier attempt at the same account wrote, so a round interrupted at any point resumes with the
accounts still unread (``pending_accounts``) and never duplicates a position.

Readers give the API what it serves: the snapshot nearest before an instant, its coverage
(which accounts, how many, what share of the venue's open interest) and its levels, binned as
recorded or position by position as read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from models.known_records import AccountPositions, LevelSnapshot
from models.queries import Executor, query
from models.records import LiquidationEvent


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# --- recorded, already binned snapshots ---------------------------------------------------
async def upsert_level_snapshot(conn: AsyncConnection, snap: LevelSnapshot) -> int:
    """Store one binned snapshot (its markets and bins replaced if it was stored before)."""
    values = {
        "venue": snap.venue,
        "source": snap.source,
        "taken_at": _at(snap.taken_at),
        "selection": snap.selection,
        "accounts_planned": snap.accounts,
        "leverage_bands": list(snap.leverage_bands),
        "meta": json.dumps(snap.meta),  # what SQLAlchemy's JSONB type sends
    }
    snapshot_id = int((await conn.execute(query("upsert_known_snapshot"), values)).scalar_one())
    await conn.execute(query("clear_known_snapshot_markets"), {"snapshot": snapshot_id})
    if snap.markets:
        await conn.execute(
            query("insert_known_snapshot_market"),
            [
                {
                    "snapshot_id": snapshot_id,
                    "symbol": m.symbol,
                    "price": m.price,
                    "long_usd": m.long_usd,
                    "short_usd": m.short_usd,
                    "positions": m.positions,
                    "accounts": None,
                    "bin_width": m.bin_width,
                    "venue_open_interest_usd": None,
                }
                for m in snap.markets
            ],
        )
    bins = [
        {
            "snapshot_id": snapshot_id,
            "symbol": m.symbol,
            "side": b.side,
            "price": b.price,
            "usd": b.usd,
            "usd_by_leverage": list(b.usd_by_leverage),
        }
        for m in snap.markets
        for b in m.bins
    ]
    if bins:
        await conn.execute(query("insert_known_level_bin"), bins)
    return snapshot_id


# --- live rounds over accounts -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Round:
    id: int
    taken_at: datetime
    accounts_planned: int


async def open_round(conn: Executor, venue: str, source: str) -> Round | None:
    """The newest round of ``venue`` still reading accounts, if any."""
    params = {"venue": venue, "source": source}
    row = (await conn.execute(query("open_known_round"), params)).first()
    return None if row is None else Round(int(row[0]), row[1], int(row[2]))


async def latest_round_start(conn: Executor, venue: str, source: str) -> datetime | None:
    """When the newest round of ``venue`` from ``source`` started (finished or not)."""
    params = {"venue": venue, "source": source}
    value: datetime | None = (
        await conn.execute(query("latest_known_round_start"), params)
    ).scalar()
    return value


async def start_round(
    conn: AsyncConnection,
    venue: str,
    source: str,
    taken_at_ms: int,
    selection: str,
    accounts: list[tuple[str, str]],
    meta: dict[str, Any] | None = None,
) -> int:
    """A new round planning to read ``accounts`` ((address, dex) pairs)."""
    values = {
        "venue": venue,
        "source": source,
        "taken_at": _at(taken_at_ms),
        "selection": selection,
        "accounts_planned": len(accounts),
        "meta": json.dumps(meta or {}),
    }
    snapshot_id = int((await conn.execute(query("start_known_round"), values)).scalar_one())
    if accounts:
        await conn.execute(
            query("plan_known_account"),
            [{"snapshot_id": snapshot_id, "account": a, "dex": d} for a, d in accounts],
        )
    return snapshot_id


async def pending_accounts(conn: Executor, snapshot_id: int) -> list[tuple[str, str]]:
    rows = await conn.execute(query("pending_known_accounts"), {"snapshot": snapshot_id})
    return [(str(a), str(d)) for a, d in rows.all()]


async def write_account(conn: AsyncConnection, snapshot_id: int, read: AccountPositions) -> int:
    """Store one account's positions in the round (replacing an earlier attempt's)."""
    key = {"snapshot": snapshot_id, "account": read.account, "dex": read.dex}
    await conn.execute(query("clear_known_account_positions"), key)
    if read.positions:
        await conn.execute(
            query("insert_known_position"),
            [
                {
                    "snapshot_id": snapshot_id,
                    "account": p.account,
                    "symbol": p.symbol,
                    "dex": read.dex,
                    "coin": p.coin,
                    "side": p.side,
                    "size": p.size,
                    "notional_usd": p.notional_usd,
                    "entry_price": p.entry_price,
                    "leverage": p.leverage,
                    "margin_mode": p.margin_mode,
                    "liquidation_price": p.liquidation_price,
                }
                for p in read.positions
            ],
        )
    await conn.execute(
        query("mark_known_account_read"),
        {**key, "state_time": _at(read.taken_at), "positions": len(read.positions)},
    )
    return len(read.positions)


async def fail_account(
    conn: AsyncConnection, snapshot_id: int, account: str, dex: str, error: str
) -> None:
    """The account could not be read: it counts as read, with the reason, and no positions."""
    params = {"snapshot": snapshot_id, "account": account, "dex": dex, "error": error[:1000]}
    await conn.execute(query("fail_known_account"), params)


@dataclass(frozen=True, slots=True)
class MarketContext:
    """What the venue said about a market when the round ended: its mark price and open
    interest in USD (None where it said nothing)."""

    price: float | None
    open_interest_usd: float | None


async def finish_round(
    conn: AsyncConnection,
    snapshot_id: int,
    contexts: dict[str, MarketContext],
    meta: dict[str, Any] | None = None,
) -> None:
    """Close a round: per-market totals of the positions read, with the venue's price and open
    interest where known (else the price is the positions' value over their size)."""
    rows = (await conn.execute(query("known_round_totals"), {"snapshot": snapshot_id})).all()
    await conn.execute(query("clear_known_snapshot_markets"), {"snapshot": snapshot_id})
    markets = []
    for symbol, long_usd, short_usd, positions, accounts, mean_mark in rows:
        context = contexts.get(symbol, MarketContext(None, None))
        markets.append(
            {
                "snapshot_id": snapshot_id,
                "symbol": symbol,
                "price": context.price if context.price is not None else mean_mark,
                "long_usd": float(long_usd),
                "short_usd": float(short_usd),
                "positions": int(positions),
                "accounts": int(accounts),
                "bin_width": None,
                "venue_open_interest_usd": context.open_interest_usd,
            }
        )
    if markets:
        await conn.execute(query("insert_known_snapshot_market"), markets)
    params = {"snapshot": snapshot_id, "meta": json.dumps(meta or {})}
    await conn.execute(query("finish_known_round"), params)


# --- the read accounts' own liquidation fills -------------------------------------------------
def fill_id(event: LiquidationEvent) -> str:
    """The venue's id of a fill (Hyperliquid's ``tid``), else its hash, else time and price."""
    raw = event.raw or {}
    for key in ("tid", "hash"):
        if raw.get(key) not in (None, ""):
            return str(raw[key])
    return f"{event.timestamp}:{event.price}:{event.quantity}"


async def write_account_liquidations(
    conn: AsyncConnection, venue: str, account: str, events: list[LiquidationEvent]
) -> int:
    """Store an account's liquidation fills, each once (a fill stored before is left as it
    is); returns how many were given."""
    if not events:
        return 0
    await conn.execute(
        query("insert_known_liquidation"),
        [
            {
                "venue": venue,
                "account": account,
                "fill_id": fill_id(e),
                "symbol": e.symbol,
                "ts": _at(e.timestamp),
                "side": e.side,
                "price": e.price,
                "quantity": e.quantity,
                "usd_value": e.usd_value,
                "raw": json.dumps(e.raw) if e.raw else None,
            }
            for e in events
        ],
    )
    return len(events)


async def last_account_liquidation(conn: Executor, venue: str, account: str) -> datetime | None:
    """When the newest stored liquidation fill of the account happened."""
    params = {"venue": venue, "account": account}
    found: datetime | None = (await conn.execute(query("last_known_liquidation"), params)).scalar()
    return found


@dataclass(frozen=True, slots=True)
class AccountLiquidation:
    ts: datetime
    account: str
    side: str  # the liquidated position's side
    price: float
    quantity: float
    usd_value: float


async def account_liquidations(
    conn: Executor, venue: str, symbol: str, start: datetime, end: datetime, limit: int
) -> list[AccountLiquidation]:
    """The read accounts' liquidation fills of a market in ``[start, end)``, oldest first."""
    params = {"venue": venue, "symbol": symbol, "start": start, "end": end, "limit": limit}
    return [AccountLiquidation(*r) for r in await conn.execute(query("known_liquidations"), params)]


# --- readers (the API's) -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KnownCoverage:
    """Who a snapshot covers: how the accounts were chosen, how many, which (live rounds), and
    what share of the venue's open interest they hold in the market (None when unknown)."""

    snapshot_id: int
    venue: str
    source: str
    taken_at: datetime
    state_from: datetime | None
    state_to: datetime | None
    selection: str
    accounts_planned: int
    accounts_read: int | None  # read, with or without success; None: the source lists none
    accounts_failed: int | None  # read without success (the error is kept per account)
    accounts: list[str] | None
    symbol: str
    price: float | None
    long_usd: float
    short_usd: float
    positions: int
    bin_width: float | None
    venue_open_interest_usd: float | None
    leverage_bands: list[str] | None
    meta: dict[str, Any]

    @property
    def open_interest_share(self) -> float | None:
        """The sample's share of the venue's open interest in this market: open interest counts
        one side, so (long + short) / (2 × open interest)."""
        if not self.venue_open_interest_usd:
            return None
        return (self.long_usd + self.short_usd) / (2 * self.venue_open_interest_usd)


async def known_snapshot_at(
    conn: Executor, venue: str, symbol: str, at: datetime | None = None
) -> KnownCoverage | None:
    """The newest finished snapshot of ``symbol`` on ``venue`` taken at or before ``at``."""
    params = {"venue": venue, "symbol": symbol, "at": at}
    found = (await conn.execute(query("known_snapshot_at"), params)).first()
    if found is None:
        return None
    row = found._mapping
    accounts = (await conn.execute(query("known_snapshot_accounts"), {"snapshot": row["id"]})).all()
    listed = [f"{a}@{d}" if d else str(a) for a, d, _, _ in accounts]
    return KnownCoverage(
        snapshot_id=int(row["id"]),
        venue=row["venue"],
        source=row["source"],
        taken_at=row["taken_at"],
        state_from=row["state_from"],
        state_to=row["state_to"],
        selection=row["selection"],
        accounts_planned=int(row["accounts_planned"]),
        accounts_read=sum(1 for *_, read in accounts if read is not None) if accounts else None,
        accounts_failed=sum(1 for _, _, e, _ in accounts if e) if accounts else None,
        accounts=listed or None,
        symbol=row["symbol"],
        price=row["price"],
        long_usd=float(row["long_usd"]),
        short_usd=float(row["short_usd"]),
        positions=int(row["positions"]),
        bin_width=row["bin_width"],
        venue_open_interest_usd=row["venue_open_interest_usd"],
        leverage_bands=row["leverage_bands"],
        meta=dict(row["meta"] or {}),
    )


@dataclass(frozen=True, slots=True)
class KnownLevel:
    """USD that would be liquidated at ``price`` (a bin's centre, or a position's own price)."""

    side: str
    price: float
    usd: float
    leverage: float | None = None  # a position's leverage (binned sources: see by_band)
    usd_by_leverage: tuple[float, ...] = ()


async def known_levels(conn: Executor, snapshot_id: int, symbol: str) -> list[KnownLevel]:
    """The snapshot's levels of ``symbol``: its bins when it was recorded binned, else one
    level per position that has a liquidation price, ascending by price."""
    params = {"snapshot": snapshot_id, "symbol": symbol}
    bins = (await conn.execute(query("known_level_bins"), params)).all()
    if bins:
        return [KnownLevel(s, float(p), float(u), None, tuple(b)) for s, p, u, b in bins]
    positions = (await conn.execute(query("known_position_levels"), params)).all()
    return [KnownLevel(s, float(p), float(u), lev) for s, p, u, lev in positions]


async def known_markets(conn: Executor) -> list[tuple[str, str]]:
    """(venue, symbol) of every market with a finished snapshot."""
    return [(str(v), str(s)) for v, s in await conn.execute(query("known_markets"))]
