"""Decoded snapshot vectors kept in memory, so heatmaps of overlapping ranges read each stored
snapshot from PostgreSQL once. A leverage-band filtered read keeps its sums under a key of
its own (the band mask is part of the key).

Stored snapshots do not change unless the materializer rewrites them, and every write is
announced by NOTIFY with the range of bars written (series, resolution, first..ts): the hub
calls :meth:`forget` for each. The cache is only used while the hub listens, and a read only
enters the cache when no notification arrived during it (so a snapshot rewritten mid-read is
never kept stale).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from api.subscriptions import SnapshotEvent
from models.heatmap_store import Column

# (series, resolution, bar opening, leverage-band mask: 0 = the totals, else maps.bands mask)
Key = tuple[int, str, datetime, int]


class ColumnCache:
    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._items: OrderedDict[Key, Column] = OrderedDict()
        self._masks: set[int] = {0}  # band masks ever cached (at most 32)
        self.hits = 0
        self.misses = 0

    def get(self, key: Key) -> Column | None:
        column = self._items.get(key)
        if column is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return column

    def put(self, key: Key, column: Column) -> None:
        if self.entries <= 0:
            return
        self._items[key] = column
        self._masks.add(key[3])
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def forget(self, event: SnapshotEvent) -> None:
        if event.first == event.ts:  # one bar: the live case, no scan
            for mask in self._masks:
                self._items.pop((event.series_id, event.resolution, event.ts, mask), None)
            return
        stale = [
            key
            for key in self._items
            if key[0] == event.series_id and key[1] == event.resolution and event.covers(key[2])
        ]
        for key in stale:
            del self._items[key]

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
