"""Live updates: one PostgreSQL LISTEN per process, fanned out to every subscriber.

The materializer sends ``NOTIFY liqmap_heatmap`` with ``{series_id, symbol, scope, resolution,
first, ts, count, price}`` for each resolution of a write it commits: the bars ``first``..``ts``
(``count`` of them) were written, ``price`` is the newest bar's. :class:`Hub` holds the single
listening connection and a queue per subscriber; the subscription resolvers filter the events
they care about and read the new snapshots in a session of their own.

``liqmap apikey revoke`` sends ``NOTIFY liqmap_api_keys`` with the revoked key's prefix on the
same connection's second channel: every API process then forgets its cached key lookups and ends
the key's open subscriptions at once (:class:`KeyRevoked` in each subscriber's queue), instead of
at the cache's expiry and at the next write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from liqmap.logs import get_logger
from models.auth_store import KEYS_CHANNEL
from models.heatmap_store import NOTIFY_CHANNEL

log = get_logger(__name__)

QUEUE_SIZE = 1_000


@dataclass(frozen=True, slots=True)
class SnapshotEvent:
    series_id: int
    symbol: str
    scope: str
    resolution: str
    ts: datetime  # open of the newest bar written
    price: float  # of the newest bar
    first: datetime  # open of the oldest bar written (== ts for one bar)
    count: int = 1

    @classmethod
    def parse(cls, payload: str) -> SnapshotEvent:
        data = orjson.loads(payload)
        ts = datetime.fromtimestamp(int(data["ts"]) / 1000, tz=UTC)
        first = data.get("first")
        return cls(
            series_id=int(data["series_id"]),
            symbol=str(data["symbol"]),
            scope=str(data["scope"]),
            resolution=str(data["resolution"]),
            ts=ts,
            price=float(data["price"]),
            first=ts if first is None else datetime.fromtimestamp(int(first) / 1000, tz=UTC),
            count=int(data.get("count", 1)),
        )

    def covers(self, ts: datetime) -> bool:
        """Whether the bar opening at ``ts`` may have been (re)written by this write."""
        return self.first <= ts <= self.ts


@dataclass(frozen=True, slots=True)
class KeyRevoked:
    """The API key with this prefix was revoked: its subscriptions end."""

    prefix: str


HubEvent = SnapshotEvent | KeyRevoked


class Hub:
    """The process's LISTEN connection and its subscribers."""

    def __init__(self, database_url: str | None) -> None:
        self._url = database_url
        self._queues: set[asyncio.Queue[HubEvent]] = set()
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self._callbacks: list[Callable[[SnapshotEvent], None]] = []
        self._reset_callbacks: list[Callable[[], None]] = []
        self._revocation_callbacks: list[Callable[[str], None]] = []
        self._warned = False
        self.generation = 0  # bumped on every event: cached responses older than this are stale

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        if self._url is None:
            return
        async with self._lock:
            if self.listening:
                return
            import asyncpg

            from liqmap.database import normalize_url

            self._conn = await asyncpg.connect(normalize_url(self._url))
            await self._conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            await self._conn.add_listener(KEYS_CHANNEL, self._on_key_revoked)
            self._conn.add_termination_listener(self._on_lost)
            self._reset()
            log.info("listening for new snapshots", channel=NOTIFY_CHANNEL)

    def on_event(self, callback: Callable[[SnapshotEvent], None]) -> None:
        """Call ``callback`` synchronously for every notification (before subscribers)."""
        self._callbacks.append(callback)

    def on_reset(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever notifications may have been missed (connect, loss)."""
        self._reset_callbacks.append(callback)

    def on_key_revoked(self, callback: Callable[[str], None]) -> None:
        """Call ``callback`` with the prefix of every key revoked (before subscribers)."""
        self._revocation_callbacks.append(callback)

    def _reset(self) -> None:
        self.generation += 1
        for callback in self._reset_callbacks:
            callback()

    async def ensure_listening(self) -> bool:
        """Start the listener if needed; False when it cannot run (no URL, server gone)."""
        if not self.listening:
            try:
                await self.start()
            except Exception as exc:  # caches are then bypassed; serving goes on
                if not self._warned:
                    log.warning("snapshot listener unavailable", error=repr(exc))
                    self._warned = True
                return False
        return self.listening

    def _on_lost(self, _conn: Any) -> None:
        log.warning("snapshot listener connection lost; it reconnects on the next subscription")
        self._conn = None
        self._reset()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            event = SnapshotEvent.parse(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed notification", payload=payload[:200])
            return
        self.generation += 1
        for callback in self._callbacks:
            callback(event)
        self._publish(event)

    def _on_key_revoked(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        log.info("api key revoked", prefix=payload[:32])
        for callback in self._revocation_callbacks:
            callback(payload)
        self._publish(KeyRevoked(payload))

    def _publish(self, event: HubEvent) -> None:
        for queue in list(self._queues):
            if queue.full():
                # a subscriber this far behind loses the oldest events, never the newest: the
                # newest carry the bars it waits for (and name every bar written before them)
                queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[HubEvent]]:
        await self.start()
        queue: asyncio.Queue[HubEvent] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.remove_termination_listener(self._on_lost)
                with contextlib.suppress(Exception):
                    await conn.close()
