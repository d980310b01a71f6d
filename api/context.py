"""Per-request context: session factory, limits, loaders and the response cache policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.limits import ApiLimits
from liqmap.settings import Settings

if TYPE_CHECKING:
    from api.column_cache import ColumnCache
    from api.loaders import Loaders
    from api.subscriptions import Hub


@dataclass
class CachePolicy:
    """Whether a response may be cached by clients: every root field must say it is closed."""

    fields: int = 0
    closed: int = 0

    def mark(self, closed: bool) -> None:
        self.fields += 1
        self.closed += int(closed)

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

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session of its own for one resolver (never shared across concurrent fields)."""
        async with self.sessions() as session:
            yield session

    @property
    def timeframe(self) -> str:
        return self.settings.timeframe
