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


@dataclass(frozen=True, slots=True)
class Resync:
    """The listener was lost and is listening again: notifications sent in between were missed.
    A subscriber reads what was written since the last thing it delivered."""


HubEvent = SnapshotEvent | KeyRevoked | Resync

# The listener reconnects after a loss at once, then waits RETRY_MIN_S doubling to RETRY_MAX_S
# between attempts; while connected it checks every KEEPALIVE_S that the server still answers
# (a connection cut without a word — a failover, a dropped route — is seen within seconds).
RETRY_MIN_S = 0.25
RETRY_MAX_S = 5.0
KEEPALIVE_S = 5.0


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
        self._watcher: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._was_lost = False  # a connection was lost since subscribers last heard everything
        self.reconnects = 0
        self.generation = 0  # bumped on every event: cached responses older than this are stale

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        """Listen (raises when the server cannot be reached); from the first call on, a
        background task keeps the listener connected, reconnecting after every loss."""
        if self._url is None:
            return
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._keep_listening(), name="snapshot-listener")
        await self._connect()

    async def _connect(self) -> None:
        async with self._lock:
            if self.listening:
                return
            import asyncpg

            from liqmap.database import normalize_url

            assert self._url is not None
            conn = await asyncpg.connect(normalize_url(self._url), timeout=10)
            try:
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                await conn.add_listener(KEYS_CHANNEL, self._on_key_revoked)
            except BaseException:
                conn.terminate()
                raise
            conn.add_termination_listener(self._on_lost)
            self._conn = conn
            self._warned = False
            self._reset()
            if self._was_lost:
                self._was_lost = False
                self.reconnects += 1
                log.info(
                    "snapshot listener reconnected; subscribers catch up", channel=NOTIFY_CHANNEL
                )
                self._publish(Resync())
            else:
                log.info("listening for new snapshots", channel=NOTIFY_CHANNEL)

    async def _keep_listening(self) -> None:
        """Reconnect after a loss (backoff RETRY_MIN_S → RETRY_MAX_S) and check the live
        connection every KEEPALIVE_S; runs until :meth:`close`."""
        delay = 0.0
        while True:
            if self.listening:
                delay = 0.0
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(KEEPALIVE_S):
                        await self._lost.wait()
                self._lost.clear()
                conn = self._conn
                if conn is not None and not conn.is_closed():
                    try:
                        await conn.fetchval("SELECT 1", timeout=KEEPALIVE_S)
                    except Exception as exc:  # the server stopped answering: start over
                        log.warning(
                            "snapshot listener not answering; reconnecting", error=repr(exc)
                        )
                        conn.terminate()  # calls _on_lost
                continue
            await asyncio.sleep(delay)
            delay = min(max(delay * 2, RETRY_MIN_S), RETRY_MAX_S)
            try:
                await self._connect()
            except Exception as exc:
                if not self._warned:
                    log.warning("snapshot listener unavailable; retrying", error=repr(exc))
                    self._warned = True

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

    def _on_lost(self, conn: Any) -> None:
        if conn is not self._conn:
            return
        log.warning("snapshot listener connection lost; reconnecting")
        self._conn = None
        self._was_lost = True
        self._lost.set()
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
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(BaseException):
                await self._watcher
            self._watcher = None
        async with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.remove_termination_listener(self._on_lost)
                with contextlib.suppress(Exception):
                    await conn.close()
