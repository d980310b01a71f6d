"""DataLoaders: one batched query (in a session of its own) per kind of lookup per request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader

from api import storage
from api.selection import SeriesSet, market_ids
from api.types.maps import Coverage, ModelInfo
from api.types.markets import DatasetCoverage
from api.types.scalars import JSON


def merge_assumptions(per_scope: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Parameters equal on every exchange at top level; the rest under ``perExchange``."""
    if not per_scope:
        return {}
    scopes = sorted(per_scope)
    keys = set().union(*(per_scope[s].keys() for s in scopes))
    common: dict[str, Any] = {}
    differing: dict[str, dict[str, Any]] = {}
    for key in sorted(keys):
        values = [per_scope[s].get(key) for s in scopes]
        if all(v == values[0] for v in values):
            common[key] = values[0]
        else:
            for s in scopes:
                differing.setdefault(s, {})[key] = per_scope[s].get(key)
    if differing:
        common["perExchange"] = differing
    return common


class Loaders:
    """The loaders of one request."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], timeframe_s: int, timeframe: str
    ) -> None:
        self._sessions = sessions
        self._timeframe = timeframe
        self._step = timedelta(seconds=timeframe_s)
        self.markets_by_exchange = DataLoader(self._markets_by_exchange)
        self.market_coverage = DataLoader(self._market_coverage)
        self.model = DataLoader(self._model)
        self.coverage = DataLoader(self._coverage)

    async def _markets_by_exchange(self, keys: Sequence[str]) -> list[list[storage.MarketRow]]:
        async with self._sessions() as session:
            rows = await storage.markets(session, keys)
        return [[r for r in rows if r.exchange == k] for k in keys]

    async def _market_coverage(
        self, keys: Sequence[storage.MarketRow]
    ) -> list[list[DatasetCoverage]]:
        async with self._sessions() as session:
            extents = await storage.dataset_extents(session, keys)
        return [
            [
                DatasetCoverage(
                    dataset=e.dataset,
                    first_ts=e.first_ts,
                    last_ts=e.last_ts,
                    last_success=e.last_success,
                    last_status=e.last_status,
                    last_error=e.last_error,
                )
                for e in extents
                if e.market_id == m.id
            ]
            for m in keys
        ]

    async def _model(self, keys: Sequence[SeriesSet]) -> list[ModelInfo]:
        out = []
        async with self._sessions() as session:
            states: dict[str, list[storage.ModelRow]] = {}
            for key in keys:
                if key.symbol not in states:
                    states[key.symbol] = await storage.model_states(session, key.symbol)
                rows = [r for r in states[key.symbol] if r.scope in key.member_scopes]
                versions = sorted({r.model_version for r in rows})
                out.append(
                    ModelInfo(
                        version=", ".join(versions) or "unknown",
                        assumptions=JSON(merge_assumptions({r.scope: r.params for r in rows})),
                    )
                )
        return out

    async def _coverage(self, keys: Sequence[SeriesSet]) -> list[Coverage]:
        out = []
        now = datetime.now(UTC)
        async with self._sessions() as session:
            for key in keys:
                last = await storage.last_snapshot_ts(session, key.series_ids, self._timeframe)
                markets = await market_ids(session, key)
                missing = await storage.missing_datasets(session, [m.id for m in markets])
                last_bar = last + self._step if last is not None else None
                out.append(
                    Coverage(
                        exchanges=list(key.member_scopes),
                        last_bar=last_bar,
                        staleness=(now - last_bar).total_seconds() if last_bar else None,
                        missing_datasets=missing,
                    )
                )
        return out
