"""Per-request context: session factory, limits, loaders and the response cache policy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.clock import ApiClock
from api.limits import ApiLimits
from api.timerange import checked_range
from liqmap.settings import Settings

if TYPE_CHECKING:
    from api.column_cache import ColumnCache
    from api.loaders import Loaders
    from api.subscriptions import Hub


@dataclass(frozen=True, slots=True)
class SnapshotRead:
    """Stored snapshots one root field answered from: of these series, the bars up to
    ``through`` (None: whatever is newest, so any new bar changes the answer)."""

    series_ids: frozenset[int]
    through: datetime | None

    def changed_by(self, series_id: int, first: datetime) -> bool:
        """Whether a write of bars from ``first`` on to ``series_id`` changes this read."""
        return series_id in self.series_ids and (self.through is None or first <= self.through)


@dataclass
class CachePolicy:
    """Whether a response may be cached by clients (every root field must say it is closed),
    and what in the database it was computed from, so that the process's response cache drops
    it only when a write touches that (``reads`` is None when some field did not say: any new
    snapshot then drops it)."""

    fields: int = 0
    closed: int = 0
    reads: list[SnapshotRead] | None = field(default_factory=list)
    unannounced: bool = False  # also read what changes without a NOTIFY (clock, ingest)

    def mark(
        self,
        closed: bool,
        series_ids: Iterable[int] | None = None,
        through: datetime | None = None,
    ) -> None:
        """One root field's verdict; ``series_ids`` and ``through`` say which stored snapshots
        it read (``through`` only counts for a closed answer: an open one reads the newest)."""
        self.fields += 1
        self.closed += int(closed)
        if series_ids is None:
            self.reads = None
        elif self.reads is not None:
            self.reads.append(SnapshotRead(frozenset(series_ids), through if closed else None))

    def mark_unannounced(self) -> None:
        """A field read something that changes without a NOTIFY (freshness against the clock,
        ingest watermarks): the answer may be reused only for the short open-range TTL."""
        self.unannounced = True

    @property
    def announced(self) -> bool:
        """Whether every change to what the answer was computed from is announced by the
        materializer's NOTIFY (so the process's cache may keep it until one arrives)."""
        return self.reads is not None and not self.unannounced

    @property
    def cacheable(self) -> bool:
        return self.fields > 0 and self.closed == self.fields


@dataclass
class ApiContext:
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    limits: ApiLimits
    loaders: Loaders
    hub: Hub
    request: Any = None
    response: Any = None
    api_key: Any = None
    cache: CachePolicy = field(default_factory=CachePolicy)
    metrics: Any = None
    columns: ColumnCache | None = None
    operation_label: str | None = None
    clock: ApiClock = field(default_factory=ApiClock)
    _now: datetime | None = None

    async def now(self) -> datetime:
        """The API's "now" (:mod:`api.clock`), read once per request."""
        if self._now is None:
            self._now = await self.clock.now()
        return self._now

    async def checked_range(
        self, start: datetime, end: datetime | None
    ) -> tuple[datetime, datetime]:
        """:func:`api.timerange.checked_range` with "now" on the API's clock."""
        now = await self.now() if end is None else None
        return checked_range(start, end, self.limits.max_span_days, now)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session of its own for one resolver (never shared across concurrent fields)."""
        async with self.sessions() as session:
            yield session

    @property
    def timeframe(self) -> str:
        return self.settings.timeframe

    @asynccontextmanager
    async def subscription_slot(self) -> AsyncIterator[None]:
        """Hold one of the connection's ``max_subscriptions_per_connection`` subscriptions for
        as long as a subscription runs; one more is ``RATE_LIMITED`` (its ``extensions`` name
        the limit), so one connection cannot hold unbounded queues and tasks."""
        from api.errors import RateLimited

        scope = getattr(self.request, "scope", None)
        if scope is None:
            yield
            return
        limit = self.limits.max_subscriptions_per_connection
        held = scope.get("liqmap_subscriptions", 0)
        if held >= limit:
            raise RateLimited(
                f"at most {limit} subscriptions per connection; complete one or open another "
                "connection",
                max_subscriptions_per_connection=limit,
            )
        scope["liqmap_subscriptions"] = held + 1
        try:
            yield
        finally:
            scope["liqmap_subscriptions"] = scope.get("liqmap_subscriptions", 1) - 1

    async def snapshot_range(
        self, start: datetime, end: datetime | None
    ) -> tuple[datetime, datetime]:
        """The checked ``[start, end)`` of a read of stored snapshots (``checked_range``). An
        open range ("until now", ``end`` None) moves with the clock, which no NOTIFY announces:
        the answer is marked unannounced."""
        if end is None:
            self.cache.mark_unannounced()
        return await self.checked_range(start, end)
