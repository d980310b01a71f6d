"""Encoded responses of identical queries, kept in memory until new snapshots land.

An entry is dropped when the process's snapshot listener sees a write that changes what it was
computed from (its :class:`~api.context.SnapshotRead` list: the series it read, up to the bar it
covers; any write when it did not say) and in any case after ``ttl`` seconds — or, while the
listener is connected, after ``closed_ttl`` seconds for closed historical ranges and for answers
whose every input change is announced (open ranges and the newest instant, without freshness
fields such as ``coverage``, which follow the clock and ingestion). So a new bar drops the
answers about the newest instant, not the history around it, and answers that depend on the
clock (``coverage.staleness``) are at most ``ttl`` seconds old. The gzip form of a
body is computed once, on the first hit that accepts it, so repeated large heatmaps cost neither
execution, JSON encoding nor compression.

The cache is bounded twice: at most ``entries`` answers and at most ``max_bytes`` bytes (bodies,
their gzip forms once computed, and the keys, whose documents and variables a client chooses);
the least recently used go first, and an answer larger than the whole budget is not kept.
Expired entries are swept (at most once a second, on any get or put), so an answer nobody asks
for again does not outlive its TTL in memory.

Each entry lives its limit times a factor drawn from [1 − ``LIFETIME_SPREAD``, 1]: answers
stored in the same second (a dashboard audience arriving at once, a restart, a deploy) would
otherwise all expire in the same second, every few minutes, and be executed again at once, on
the one event loop that every other request then waits behind.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from api.compression import compressor
from api.context import SnapshotRead
from api.subscriptions import Hub, SnapshotEvent

Key = tuple[str, bytes, str | None, bytes, str]

LIFETIME_SPREAD = 0.25


@dataclass
class CachedResponse:
    body: bytes
    headers: dict[str, str]
    label: str
    closed: bool
    reads: tuple[SnapshotRead, ...] | None  # None: any new snapshot may change it
    announced: bool = False  # every change to its inputs comes with a NOTIFY
    stored_at: float = field(default_factory=time.monotonic)
    lifetime: float = 1.0  # the share of its TTL it lives (set by ResponseCache.put)
    _gzipped: bytes | None = None

    def gzipped(self, level: int) -> bytes:
        if self._gzipped is None:
            self._gzipped = compressor(level)(self.body)
        return self._gzipped

    @property
    def size(self) -> int:
        """Bytes it holds (body and gzip form; headers and bookkeeping are small and fixed)."""
        return len(self.body) + (len(self._gzipped) if self._gzipped is not None else 0)


def key_size(key: Key) -> int:
    query, variables, operation_name, extensions, _media_type = key
    return len(query) + len(variables) + len(operation_name or "") + len(extensions) + 64


SWEEP_EVERY_S = 1.0


class ResponseCache:
    def __init__(
        self,
        entries: int,
        ttl: float,
        closed_ttl: float,
        rng: random.Random | None = None,
        *,
        max_bytes: int = 128 * 2**20,
    ) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.closed_ttl = closed_ttl
        self._items: OrderedDict[Key, CachedResponse] = OrderedDict()
        self._sizes: dict[Key, int] = {}
        self._bytes = 0
        self._swept = time.monotonic()
        self._rng = rng or random.Random()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0 and self.entries > 0 and self.max_bytes > 0

    @property
    def size_bytes(self) -> int:
        """Bytes held now (bodies, gzip forms and keys)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def _limit(self, item: CachedResponse, listening: bool) -> float:
        # while the listener runs, an answer whose every input change is announced is dropped
        # by the NOTIFY that changes it: it may live as long as a closed one
        kept = item.closed or item.announced
        return (self.closed_ttl if (kept and listening) else self.ttl) * item.lifetime

    def _drop(self, key: Key) -> None:
        del self._items[key]
        self._bytes -= self._sizes.pop(key)

    def _sweep(self, now: float, listening: bool) -> None:
        """Drop every expired entry (at most once per :data:`SWEEP_EVERY_S`)."""
        if now - self._swept < SWEEP_EVERY_S:
            return
        self._swept = now
        expired = [
            key
            for key, item in self._items.items()
            if now - item.stored_at > self._limit(item, listening)
        ]
        for key in expired:
            self._drop(key)

    def _evict(self) -> None:
        while self._items and (len(self._items) > self.entries or self._bytes > self.max_bytes):
            self._drop(next(iter(self._items)))

    @staticmethod
    def key(
        query: object,
        variables: object,
        operation_name: object,
        extensions: object = None,
        media_type: str = "application/json",
    ) -> Key | None:
        """Everything the answer depends on: the document, its variables, operation name and
        extensions, and the media type it is sent as (which sets its status code). A request
        whose parameters are malformed (variables or extensions that are not objects) is not
        cached: it is refused, and must not be answered by a valid request's entry."""
        if not isinstance(query, str) or not (
            operation_name is None or isinstance(operation_name, str)
        ):
            return None
        if not all(isinstance(v, dict | type(None)) for v in (variables, extensions)):
            return None
        try:
            encoded = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
            extra = orjson.dumps(extensions or {}, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        return (query, encoded, operation_name, extra, media_type)

    def get(self, key: Key, hub: Hub) -> CachedResponse | None:
        now = time.monotonic()
        self._sweep(now, hub.listening)
        item = self._items.get(key)
        if item is None:
            return None
        if now - item.stored_at > self._limit(item, hub.listening):
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return item

    def put(self, key: Key, item: CachedResponse) -> None:
        # swept as if the listener ran (the longer lifetimes); get applies the exact one
        self._sweep(time.monotonic(), True)
        size = item.size + key_size(key)
        if key in self._items:
            self._drop(key)
        if size > self.max_bytes:
            return  # larger than the whole budget: it would only evict everything else
        item.lifetime = 1.0 - LIFETIME_SPREAD * self._rng.random()
        self._items[key] = item
        self._sizes[key] = size
        self._bytes += size
        self._evict()

    def gzipped(self, key: Key, item: CachedResponse, level: int) -> bytes:
        """The gzip form of a cached answer, computed once; its bytes count in the budget."""
        fresh = item._gzipped is None
        body = item.gzipped(level)
        if fresh and self._items.get(key) is item:
            self._sizes[key] += len(body)
            self._bytes += len(body)
            self._items.move_to_end(key)
            self._evict()
        return body

    def forget(self, event: SnapshotEvent) -> None:
        """Drop the entries a committed write of snapshots changes."""
        stale = [
            key
            for key, item in self._items.items()
            if item.reads is None
            or any(r.changed_by(event.series_id, event.first) for r in item.reads)
        ]
        for key in stale:
            self._drop(key)

    def clear(self) -> None:
        self._items.clear()
        self._sizes.clear()
        self._bytes = 0

    def __contains__(self, key: object) -> bool:
        return key in self._items


def request_key(request: Any, body: bytes, media_type: str = "application/json") -> Key | None:
    """The cache key of a GET or POST GraphQL request, or None when it is not a plain query."""
    if request.method == "GET":
        params = request.query_params
        decoded: list[Any] = []
        for name in ("variables", "extensions"):
            raw = params.get(name)
            try:
                decoded.append(orjson.loads(raw) if raw else None)
            except orjson.JSONDecodeError:
                return None
        variables, extensions = decoded
        return ResponseCache.key(
            params.get("query"), variables, params.get("operationName"), extensions, media_type
        )
    if "json" not in request.headers.get("content-type", ""):
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None  # batches are not cached
    return ResponseCache.key(
        data.get("query"),
        data.get("variables"),
        data.get("operationName"),
        data.get("extensions"),
        media_type,
    )
