"""What clients choose cannot grow the server's state without bound: Prometheus labels come from
the schema's root fields (plus fixed ``other``/``multiple``/``invalid``), and the response cache
holds at most its byte budget. Through the real app over HTTP, on the real stored data."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from graphql import build_schema
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.conftest import build_app
from tests.api.pipeline import Stored
from tests.reliability.harness import REPO

SDL = build_schema((REPO / "schema.graphql").read_text())
ROOT_FIELDS = {*SDL.query_type.fields, *SDL.subscription_type.fields}  # type: ignore[union-attr]
LABEL = re.compile(r'operation="([^"]*)"')


@pytest.fixture
async def small_cache_client(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    app = build_app(api_engine, api_database_url, api_cache_bytes=1_500_000)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://liqmap.test") as client:
        yield client, app
    await app.state.hub.close()


async def test_unknown_names_never_become_metric_labels(client: httpx.AsyncClient) -> None:
    baseline = len((await client.get("/metrics")).content)
    for i in range(1000):  # 2,500 distinct unknown field names, 1,000 operation names
        query = (
            f"query Op{i} {{ field{i} {{ id }} a{i}: exchanges {{ id }} "
            f"__typename x{i}: markets {{ symbol }} more{i} {{ id }} }}"
            if i % 2
            else f"query Op{i} {{ unknown{i}Field }}"
        )
        response = await client.post("/graphql", json={"query": query, "operationName": f"Op{i}"})
        assert response.status_code == 200
        assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    for garbage in ("{", "query { ", "}}}"):  # not even a document
        await client.post("/graphql", json={"query": garbage})
    await client.post("/graphql", json={"query": "{ exchanges { id } markets { symbol } }"})
    text = (await client.get("/metrics")).text
    labels = set(LABEL.findall(text))
    parts = {part for label in labels for part in label.split("+")}
    assert parts <= ROOT_FIELDS | {"__typename", "other", "multiple", "invalid"}, parts
    assert {"other", "multiple", "exchanges+markets"} <= labels, labels
    # thousands of distinct unknown names add a handful of series: the page grows by kilobytes
    assert len(text) - baseline < 20_000, (baseline, len(text))


async def test_the_response_cache_holds_at_most_its_byte_budget(
    small_cache_client: tuple[httpx.AsyncClient, object], stored: Stored
) -> None:
    client, app = small_cache_client
    responses = app.state.graphql.responses  # type: ignore[attr-defined]
    assert responses.max_bytes == 1_500_000
    end = stored.latest("all").at.replace(minute=0)
    sizes = []
    for hours in range(24, 0, -1):  # 24 closed heatmaps, a few MB down to ~0.15 MB as JSON
        start = end - timedelta(hours=hours)
        query = (
            f'{{ heatmap(symbol: "BTC/USDT:USDT", start: "{start.isoformat()}", '
            f'end: "{end.isoformat()}", interval: FIVE_MINUTES, priceMin: 50000, '
            "priceMax: 80000, encoding: JSON) { long short } }"
        )
        response = await client.post(
            "/graphql", json={"query": query}, headers={"accept-encoding": "gzip"}
        )
        assert response.status_code == 200 and "errors" not in response.json()
        sizes.append(len(response.content))
        assert responses.size_bytes <= 1_500_000
    assert sum(sizes) > 4 * 1_500_000  # far more was answered than the cache may hold
    # the small ones that fit: at least as many of the newest answers as fit with their body
    # counted twice (raw and gzipped, the gzipped one being smaller); v2 maps fill every cell
    # of this window (a v1 map, cut at ±10 %, left many at 0 and its answers were smaller)
    fit, used = 0, 0
    for size in reversed(sizes):
        used += 2 * size + 1024  # the entry's key and bookkeeping, generously
        if used > 1_500_000:
            break
        fit += 1
    assert 2 <= fit <= len(responses) < 24
    # the newest answers are the ones kept, and are served from the cache
    hits_before = (await client.get("/metrics")).text.count("cache_hits_total")
    again = await client.post("/graphql", json={"query": query})
    assert len(again.content) == sizes[-1]
    text = (await client.get("/metrics")).text
    assert 'liqmap_graphql_response_cache_hits_total{operation="heatmap"} 1.0' in text, hits_before
