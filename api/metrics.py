"""Prometheus metrics: GraphQL requests and latency by operation, ingest lag per market,
garbage-collector pauses."""

from __future__ import annotations

import time
from collections.abc import Iterator

from graphql import OperationDefinitionNode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.extensions import SchemaExtension

from api.clock import ApiClock
from api.gc_pauses import GcPauseCollector, install
from liqmap.logs import get_logger
from models import jobs_store

log = get_logger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The app's own registry (so several apps in one process never collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "liqmap_graphql_requests",
            "GraphQL operations by root fields and outcome.",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "liqmap_graphql_request_seconds",
            "GraphQL operation latency by root fields.",
            ["operation"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.http = Counter(
            "liqmap_http_rejections",
            "Requests rejected before GraphQL ran, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "liqmap_graphql_response_cache_hits",
            "Operations answered from the response cache.",
            ["operation"],
            registry=self.registry,
        )
        self.ingest_lag = Gauge(
            "liqmap_ingest_lag_seconds",
            "Seconds from each market dataset's watermark to now (the API's now: the newest "
            "ingested bar in a replay, as coverage.staleness).",
            ["exchange", "symbol", "dataset"],
            registry=self.registry,
        )
        self.registry.register(GcPauseCollector(install()))

    async def render(self, sessions: async_sessionmaker[AsyncSession], clock: ApiClock) -> bytes:
        now = await clock.now()
        async with sessions() as session:
            for lag in await jobs_store.ingest_lag(session):
                self.ingest_lag.labels(lag.exchange, lag.symbol, lag.dataset).set(
                    (now - lag.watermark).total_seconds()
                )
        return generate_latest(self.registry)


INTROSPECTION_FIELDS = frozenset({"__schema", "__type", "__typename"})
MAX_LABEL_FIELDS = 2  # more root fields than this in one document are labelled "multiple"


def root_fields(schema: object) -> frozenset[str]:
    """The names a root selection may have in ``schema`` (a graphql-core schema): its query and
    subscription fields and the introspection fields."""
    names = set(INTROSPECTION_FIELDS)
    for root in (getattr(schema, "query_type", None), getattr(schema, "subscription_type", None)):
        if root is not None:
            names.update(root.fields)
    return frozenset(names)


def operation_label(document: object, known: frozenset[str] | None = None) -> str:
    """Root field names, sorted and joined by ``+``: a bounded set, whatever clients send.

    Names not in ``known`` (the schema's root fields, :func:`root_fields`) are ``other``, a
    document of more than :data:`MAX_LABEL_FIELDS` distinct root fields is ``multiple`` and one
    that did not parse is ``invalid``: unknown field names would otherwise each become a
    Prometheus series (a few thousand of them made ``/metrics`` tens of megabytes)."""
    if document is None:
        return "invalid"
    names: set[str] = set()
    for definition in getattr(document, "definitions", []):
        if isinstance(definition, OperationDefinitionNode):
            for selection in definition.selection_set.selections:
                name = getattr(selection, "name", None)
                value = name.value if name is not None else "fragment"
                if known is not None and value != "fragment" and value not in known:
                    value = "other"
                names.add(value)
    if len(names) > MAX_LABEL_FIELDS:
        return "multiple"
    return "+".join(sorted(names)) or "invalid"


_KNOWN: dict[int, frozenset[str]] = {}


def known_root_fields(schema: object) -> frozenset[str]:
    """:func:`root_fields` of a Strawberry schema, computed once per schema."""
    core = getattr(schema, "_schema", schema)
    found = _KNOWN.get(id(core))
    if found is None:
        found = _KNOWN[id(core)] = root_fields(core)
    return found


class OperationMetrics(SchemaExtension):
    """Counts and times each operation."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context.context
        metrics = getattr(context, "metrics", None)
        if metrics is None:
            return
        label = operation_label(
            self.execution_context.graphql_document,
            known_root_fields(self.execution_context.schema),
        )
        context.operation_label = label
        result = self.execution_context.result
        outcome = "error" if result is not None and getattr(result, "errors", None) else "ok"
        elapsed = time.perf_counter() - started
        metrics.requests.labels(label, outcome).inc()
        metrics.latency.labels(label).observe(elapsed)
        log.debug("graphql operation", operation=label, outcome=outcome, ms=round(elapsed * 1e3, 2))
