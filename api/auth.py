"""API keys (stored as sha256 hashes) and per-key rate limits.

Keys are sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; websockets may use the
``api_key`` query parameter, which browsers can set (plain HTTP ignores it). A key looks like
``lqm_<prefix>_<secret>``; the prefix is shown in listings so a key can be revoked without it.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from models import auth_store
from models.auth_store import ApiKeyInfo

KEY_PREFIX = "lqm_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh key and its public prefix."""
    prefix = secrets.token_hex(4)
    return f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}", prefix


def key_from_headers(
    headers: Mapping[str, str], query: Mapping[str, str], *, websocket: bool = False
) -> str | None:
    """The key a request carries. The ``api_key`` query parameter counts on websockets only
    (browsers cannot set headers there); on plain HTTP a key in the URL would end up in access
    logs and proxies, so it is ignored there."""
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return headers.get("x-api-key") or (query.get("api_key") if websocket else None) or None


async def create_key(
    engine: AsyncEngine, name: str, rate_limit_per_minute: int
) -> tuple[str, ApiKeyInfo]:
    """Store a new key (hashed) and return the key itself — shown once, never stored."""
    key, prefix = new_key()
    async with engine.begin() as conn:
        info = await auth_store.insert_key(conn, name, prefix, hash_key(key), rate_limit_per_minute)
    return key, info


async def list_keys(engine: AsyncEngine) -> list[ApiKeyInfo]:
    async with engine.connect() as conn:
        return await auth_store.keys(conn)


async def revoke_key(engine: AsyncEngine, prefix: str) -> bool:
    """Revoke by prefix (or the full key); False when no active key matches."""
    if prefix.startswith(KEY_PREFIX):
        prefix = prefix[len(KEY_PREFIX) :].split("_", 1)[0]
    async with engine.begin() as conn:
        # announced at commit to every API process listening (api/subscriptions.py)
        return await auth_store.revoke_key(conn, prefix)


class KeyStore:
    """Looks keys up by hash, trusting each answer for ``ttl`` seconds — or until :meth:`forget`
    (a key was revoked, or revocations may have been missed)."""

    def __init__(self, engine: AsyncEngine, ttl: float) -> None:
        self._engine = engine
        self._ttl = ttl
        self._cache: dict[str, tuple[float, ApiKeyInfo | None]] = {}

    async def lookup(self, key: str) -> ApiKeyInfo | None:
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        async with self._engine.connect() as conn:
            info = await auth_store.active_key(conn, digest)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now, info)
        return info

    def forget(self, *_: object) -> None:
        """Drop every cached lookup (revocations are rare: the next one per key costs a query)."""
        self._cache.clear()


async def key_is_active(session: AsyncSession, key_id: int) -> bool:
    """Whether the key is still valid (not revoked since a connection was let in with it)."""
    return await auth_store.key_is_active(session, key_id)


class RateLimiter:
    """A token bucket per client: ``limit`` requests per minute, bursts up to ``limit``.

    Buckets of clients idle for over a minute are full again, so they carry no information:
    they are dropped once ``max_clients`` buckets exist (memory stays bounded under many IPs).
    """

    IDLE_S = 60.0

    def __init__(self, max_clients: int = 50_000) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, last refill)
        self.max_clients = max_clients

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        idle = [c for c, (_, last) in self._buckets.items() if now - last >= self.IDLE_S]
        for client in idle:
            del self._buckets[client]
        if len(self._buckets) >= self.max_clients:  # all active: forget the oldest half
            by_age = sorted(self._buckets, key=lambda c: self._buckets[c][1])
            for client in by_age[: len(by_age) // 2]:
                del self._buckets[client]

    def allow(self, client: str, limit_per_minute: int) -> tuple[bool, float]:
        """Whether a request may run now; when not, the seconds until it may."""
        if limit_per_minute <= 0:
            return True, 0.0
        rate = limit_per_minute / 60.0
        now = time.monotonic()
        if client not in self._buckets and len(self._buckets) >= self.max_clients:
            self._prune(now)
        tokens, last = self._buckets.get(client, (float(limit_per_minute), now))
        tokens = min(float(limit_per_minute), tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            return True, 0.0
        self._buckets[client] = (tokens, now)
        return False, math.ceil((1.0 - tokens) / rate * 1000) / 1000

    def wait(self, client: str, limit_per_minute: int) -> float:
        """Seconds until ``client`` may make a request (0.0: now); takes nothing."""
        if limit_per_minute <= 0 or client not in self._buckets:
            return 0.0
        rate = limit_per_minute / 60.0
        tokens, last = self._buckets[client]
        tokens = min(float(limit_per_minute), tokens + (time.monotonic() - last) * rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate
