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


class ResponseCache:
    def __init__(
        self, entries: int, ttl: float, closed_ttl: float, rng: random.Random | None = None
    ) -> None:
        self.entries = entries
        self.ttl = ttl
        self.closed_ttl = closed_ttl
        self._items: OrderedDict[Key, CachedResponse] = OrderedDict()
        self._rng = rng or random.Random()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0 and self.entries > 0

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
        item = self._items.get(key)
        if item is None:
            return None
        age = time.monotonic() - item.stored_at
        # while the listener runs, an answer whose every input change is announced is dropped
        # by the NOTIFY that changes it: it may live as long as a closed one
        kept = item.closed or item.announced
        limit = self.closed_ttl if (kept and hub.listening) else self.ttl
        if age > limit * item.lifetime:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item

    def put(self, key: Key, item: CachedResponse) -> None:
        item.lifetime = 1.0 - LIFETIME_SPREAD * self._rng.random()
        self._items[key] = item
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def forget(self, event: SnapshotEvent) -> None:
        """Drop the entries a committed write of snapshots changes."""
        stale = [
            key
            for key, item in self._items.items()
            if item.reads is None
            or any(r.changed_by(event.series_id, event.first) for r in item.reads)
        ]
        for key in stale:
            del self._items[key]

    def clear(self) -> None:
        self._items.clear()

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
