"""DataLoaders: one batched query (in a session of its own) per kind of lookup per request.

They return storage rows and plain summaries; the GraphQL types build themselves from those
(so the types may import the request context, which holds the loaders, without a circle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader

from api.clock import ApiClock
from api.selection import SeriesSet, market_ids
from models import heatmap_store, jobs_store, market_data_store, market_store
from models.heatmap_store import ModelState
from models.jobs_store import LatestRun, MarketDatasetCoverage
from models.market_store import MarketRow


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """The model version(s) of a series set and the assumptions they ran with."""

    version: str
    assumptions: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UnavailableDataset:
    """A dataset a venue cannot serve at all (its latest ingest run said so, with the reason)."""

    exchange: str
    dataset: str
    reason: str


@dataclass(frozen=True, slots=True)
class ExcludedVenue:
    """A selected venue whose numbers are not in the answer, and why."""

    exchange: str
    reason: str


@dataclass(frozen=True, slots=True)
class VenueStatus:
    """What the selected venues of a series set can and cannot contribute."""

    unavailable: list[UnavailableDataset]
    excluded: list[ExcludedVenue]


@dataclass(frozen=True, slots=True)
class CoverageSummary:
    """Which exchanges a series set covers, how fresh it is and what data it lacks."""

    exchanges: list[str]
    last_bar: datetime | None
    staleness: float | None
    missing_datasets: list[str]
    unavailable: list[UnavailableDataset]
    excluded: list[ExcludedVenue]


UNAVAILABLE = "unavailable"  # the ingest's status of a dataset a venue cannot serve
NO_ESTIMATE = (
    "each contributing venue's own stored open interest; none is estimated or borrowed for a "
    "venue without it, so such a venue places no positions and is not in the aggregate"
)


def venue_status(
    excluded_scopes: Sequence[str], runs: Sequence[LatestRun], missing: Sequence[str]
) -> VenueStatus:
    """Unavailable datasets of the selected markets (their latest ingest run said so), and why
    each excluded venue has no map: its open interest is unavailable (the reason), or none is
    stored (``missing`` holds ``exchange:open_interest``), or nothing was materialized yet."""
    unavailable = [
        UnavailableDataset(r.exchange, r.dataset, r.error or "unavailable")
        for r in sorted(runs, key=lambda r: (r.exchange, r.dataset))
        if r.status == UNAVAILABLE
    ]
    open_interest = {r.exchange: r for r in runs if r.dataset == "open_interest"}
    excluded = []
    for exchange in excluded_scopes:
        oi = open_interest.get(exchange)
        if oi is not None and oi.status == UNAVAILABLE:
            reason = f"no open interest, so no model positions: {oi.error or 'unavailable'}"
        elif f"{exchange}:open_interest" in missing:
            reason = "no open interest stored, so no model positions"
        else:
            reason = "no snapshot materialized yet"
        excluded.append(ExcludedVenue(exchange, reason))
    return VenueStatus(unavailable, excluded)


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
        self,
        sessions: async_sessionmaker[AsyncSession],
        timeframe_s: int,
        timeframe: str,
        clock: ApiClock | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock or ApiClock()
        self._timeframe = timeframe
        self._step = timedelta(seconds=timeframe_s)
        self.markets_by_exchange = DataLoader(self._markets_by_exchange)
        self.market_coverage = DataLoader(self._market_coverage)
        self.model = DataLoader(self._model)
        self.coverage = DataLoader(self._coverage)
        self.venues = DataLoader(self._venues)

    async def _markets_by_exchange(self, keys: Sequence[str]) -> list[list[MarketRow]]:
        async with self._sessions() as session:
            rows = await market_store.markets(session, keys)
        return [[r for r in rows if r.exchange == k] for k in keys]

    async def _market_coverage(
        self, keys: Sequence[MarketRow]
    ) -> list[list[MarketDatasetCoverage]]:
        async with self._sessions() as session:
            extents = await jobs_store.market_coverage(session, keys)
        return [[e for e in extents if e.market_id == m.id] for m in keys]

    async def _venues(self, keys: Sequence[SeriesSet]) -> list[VenueStatus]:
        out = []
        async with self._sessions() as session:
            for key in keys:
                markets = await market_ids(session, key, selected=True)
                scopes = set(key.selected_scopes)
                runs = [
                    r
                    for r in await jobs_store.latest_runs(session, [key.symbol])
                    if r.exchange in scopes
                ]
                missing = await market_data_store.missing_datasets(session, [m.id for m in markets])
                out.append(venue_status(key.excluded_scopes, runs, missing))
        return out

    async def _model(self, keys: Sequence[SeriesSet]) -> list[ModelSummary]:
        venues = await self.venues.load_many(keys)
        out = []
        async with self._sessions() as session:
            states: dict[str, list[ModelState]] = {}
            for key, status in zip(keys, venues, strict=True):
                if key.symbol not in states:
                    states[key.symbol] = await heatmap_store.model_states(session, key.symbol)
                rows = [r for r in states[key.symbol] if r.scope in key.member_scopes]
                versions = sorted({r.model_version for r in rows})
                assumptions = merge_assumptions({r.scope: r.params for r in rows})
                assumptions["venues"] = {
                    "contributing": list(key.member_scopes),
                    "excluded": {v.exchange: v.reason for v in status.excluded},
                    "openInterest": NO_ESTIMATE,
                }
                out.append(
                    ModelSummary(version=", ".join(versions) or "unknown", assumptions=assumptions)
                )
        return out

    async def _coverage(self, keys: Sequence[SeriesSet]) -> list[CoverageSummary]:
        venues = await self.venues.load_many(keys)
        out = []
        now = await self._clock.now()  # the data's clock in a replay: staleness is of the data
        async with self._sessions() as session:
            for key, status in zip(keys, venues, strict=True):
                last = await heatmap_store.last_snapshot_ts(
                    session, key.series_ids, self._timeframe
                )
                markets = await market_ids(session, key, selected=True)
                missing = await market_data_store.missing_datasets(session, [m.id for m in markets])
                last_bar = last + self._step if last is not None else None
                out.append(
                    CoverageSummary(
                        exchanges=list(key.member_scopes),
                        last_bar=last_bar,
                        staleness=(now - last_bar).total_seconds() if last_bar else None,
                        missing_datasets=missing,
                        unavailable=status.unavailable,
                        excluded=status.excluded,
                    )
                )
        return out
