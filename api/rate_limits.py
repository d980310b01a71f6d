"""Rate limits that hold across API processes.

Per-process buckets let N processes behind a load balancer allow N times the limit. With
``LIQMAP_API_RATE_LIMIT_STORE=postgres`` (the default) every process takes from the same bucket
per client, a row of ``rate_limit_buckets`` advanced in one statement by the database's clock
(:mod:`models.rate_limit_store`), so the limit holds however many processes serve. ``memory``
keeps the per-process buckets of :class:`api.auth.RateLimiter` (one process, or tests). While
the database cannot be reached the shared limiter falls back to the process's own buckets — the
requests then fail with ``SERVICE_UNAVAILABLE`` anyway — and says so in one log line per outage.

Only clients with a limit cost a statement: anonymous clients when
``LIQMAP_API_ANONYMOUS_RATE_LIMIT_PER_MINUTE`` is set, keys by their own limit, and failed
authentications (``LIQMAP_API_FAILED_AUTH_PER_MINUTE`` per address).
"""

from __future__ import annotations

import time
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth import RateLimiter
from liqmap.database import is_connection_error
from liqmap.logs import get_logger
from models import rate_limit_store

log = get_logger(__name__)

PRUNE_EVERY_S = 300.0


class Limiter(Protocol):
    async def take(self, client: str, limit_per_minute: int) -> float:
        """Take one request: 0.0 when allowed, else the seconds until one would be."""
        ...

    async def wait(self, client: str, limit_per_minute: int) -> float:
        """Seconds until ``client`` may make a request (0.0: now); takes nothing."""
        ...


class MemoryLimiter:
    """The process's own buckets (:class:`api.auth.RateLimiter`)."""

    def __init__(self, buckets: RateLimiter | None = None) -> None:
        self.buckets = buckets or RateLimiter()

    async def take(self, client: str, limit_per_minute: int) -> float:
        allowed, retry_after = self.buckets.allow(client, limit_per_minute)
        return 0.0 if allowed else max(retry_after, 1e-3)

    async def wait(self, client: str, limit_per_minute: int) -> float:
        return self.buckets.wait(client, limit_per_minute)


class PostgresLimiter:
    """Buckets in PostgreSQL, shared by every process on the database."""

    def __init__(self, engine: AsyncEngine, fallback: MemoryLimiter | None = None) -> None:
        self.engine = engine
        self.fallback = fallback or MemoryLimiter()
        self._pruned = time.monotonic()
        self._degraded = False

    async def _run(self, client: str, limit: int, *, take: bool) -> float:
        if limit <= 0:
            return 0.0
        try:
            async with self.engine.connect() as conn:
                if take:
                    result = await rate_limit_store.take(conn, client, limit)
                else:
                    result = await rate_limit_store.wait(conn, client, limit)
                if take and time.monotonic() - self._pruned > PRUNE_EVERY_S:
                    self._pruned = time.monotonic()
                    await rate_limit_store.prune(conn)
                await conn.commit()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            if not self._degraded:
                log.warning(
                    "shared rate limits unavailable; per-process meanwhile", error=repr(exc)
                )
                self._degraded = True
            fallback = self.fallback.take if take else self.fallback.wait
            return await fallback(client, limit)
        if self._degraded:
            log.info("shared rate limits available again")
            self._degraded = False
        return result

    async def take(self, client: str, limit_per_minute: int) -> float:
        return await self._run(client, limit_per_minute, take=True)

    async def wait(self, client: str, limit_per_minute: int) -> float:
        return await self._run(client, limit_per_minute, take=False)


def create_limiter(store: str, engine: AsyncEngine) -> Limiter:
    return PostgresLimiter(engine) if store == "postgres" else MemoryLimiter()
