"""The public GraphQL API, executed in process: what `liqmap render` reads its data through.

The page at ``/`` sends these same documents over HTTP; running them through the same schema
and resolvers here means a PNG shows exactly the numbers the viewer shows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from api.context import ApiContext
from api.limits import ApiLimits
from api.loaders import Loaders
from api.schema import create_schema
from api.subscriptions import Hub
from api.timerange import timeframe_seconds
from liqmap.settings import Settings


class ApiError(Exception):
    """A GraphQL error: the API's message and its ``extensions.code``."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class LocalApi:
    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.limits = ApiLimits.from_settings(settings)
        self.schema = create_schema(self.limits)
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.hub = Hub(None)  # no listener: nothing is cached between calls
        self.timeframe = str(settings.timeframe)

    async def query(self, document: str, **variables: Any) -> dict[str, Any]:
        """``data`` of the document, or :class:`ApiError` for its first error."""
        context = ApiContext(
            sessions=self.sessions,
            settings=self.settings,
            limits=self.limits,
            loaders=Loaders(self.sessions, timeframe_seconds(self.timeframe), self.timeframe),
            hub=self.hub,
        )
        result = await self.schema.execute(
            document, variable_values=variables, context_value=context
        )
        if result.errors:
            first = result.errors[0]
            code = str((first.extensions or {}).get("code", "INTERNAL"))
            raise ApiError(first.message, code)
        assert result.data is not None
        return dict(result.data)
