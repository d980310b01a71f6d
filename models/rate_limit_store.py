"""Rate-limit buckets shared by every API process (``queries.sql``, ``rate_limit_*``)."""

from __future__ import annotations

from models.queries import Executor, query

WINDOW_S = 60.0  # limits are per minute; a full bucket holds a minute's requests (the burst)


async def take(conn: Executor, client: str, limit_per_minute: int) -> float:
    """Take one request from ``client``'s bucket of ``limit_per_minute``: 0.0 when allowed,
    otherwise the seconds until it would be (nothing is taken then)."""
    interval = WINDOW_S / limit_per_minute
    params = {"client": client, "interval": interval, "window": WINDOW_S}
    if (await conn.execute(query("rate_limit_take"), params)).first() is not None:
        return 0.0
    return await wait(conn, client, limit_per_minute) or interval


async def wait(conn: Executor, client: str, limit_per_minute: int) -> float:
    """Seconds until ``client``'s bucket allows a request (0.0: now), taking nothing."""
    params = {"client": client, "interval": WINDOW_S / limit_per_minute, "window": WINDOW_S}
    row = (await conn.execute(query("rate_limit_wait"), params)).first()
    return max(0.0, float(row[0])) if row is not None else 0.0


async def prune(conn: Executor) -> int:
    """Drop full buckets; returns how many."""
    return int((await conn.execute(query("rate_limit_prune"))).rowcount or 0)  # type: ignore[attr-defined]
