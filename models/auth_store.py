"""API keys: stored as sha256 hashes, looked up, revoked (``queries.sql``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from models.queries import Executor, query

KEYS_CHANNEL = "liqmap_api_keys"  # NOTIFY'd with a key's prefix when it is revoked


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: int
    name: str
    prefix: str
    rate_limit_per_minute: int
    created_at: datetime
    revoked_at: datetime | None


async def insert_key(
    conn: Executor, name: str, prefix: str, key_hash: str, rate_limit_per_minute: int
) -> ApiKeyInfo:
    params = {
        "name": name,
        "prefix": prefix,
        "key_hash": key_hash,
        "rate_limit": rate_limit_per_minute,
    }
    return ApiKeyInfo(*(await conn.execute(query("insert_api_key"), params)).one())


async def keys(conn: Executor) -> list[ApiKeyInfo]:
    """Every key, active or revoked, oldest first."""
    return [ApiKeyInfo(*r) for r in await conn.execute(query("api_keys"))]


async def active_key(conn: Executor, key_hash: str) -> ApiKeyInfo | None:
    """The active key with this hash."""
    row = (await conn.execute(query("active_api_key"), {"key_hash": key_hash})).first()
    return None if row is None else ApiKeyInfo(*row)


async def key_is_active(conn: Executor, key_id: int) -> bool:
    """Whether the key is still valid (not revoked)."""
    return (await conn.execute(query("api_key_active"), {"id": key_id})).first() is not None


async def revoke_key(conn: AsyncConnection, prefix: str) -> bool:
    """Revoke the active key with this prefix; False when there is none.

    The revocation is announced on :data:`KEYS_CHANNEL` at commit, so every API process
    listening refuses the key at once rather than when its cached lookup expires.
    """
    result = await conn.execute(query("revoke_api_key"), {"prefix": prefix})
    if result.rowcount:
        await conn.execute(query("notify"), {"channel": KEYS_CHANNEL, "payload": prefix})
    return bool(result.rowcount)
