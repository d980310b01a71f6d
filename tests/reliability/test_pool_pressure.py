"""More concurrent heavy requests than database connections: requests queue, never deadlock.

``liqmap serve`` with a pool of 2 (+2 overflow) gets 24 concurrent heatmaps, maps and pages at
once. A resolver that held one pooled connection while waiting for another would deadlock the
pool until its 30 s timeout (and answer 503); every request must instead be answered, quickly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import drop_database
from tests.reliability.conftest import clone_database
from tests.reliability.harness import ApiProcess, liqmap_env

pytestmark = pytest.mark.slow

HEATMAP = """query ($s: DateTime!, $e: DateTime!) {
  heatmap(symbol: "BTC/USDT:USDT", start: $s, end: $e, interval: FIVE_MINUTES) {
    columns rows long short } }"""
LEVELS = '{ liquidationLevels(symbol: "BTC/USDT:USDT") { at price levels { price longUsd } } }'
PAGE = """{ snapshots(symbol: "BTC/USDT:USDT", start: "2026-06-01T00:00:00Z", first: 48) {
  edges { node { at price } } } }"""


@pytest.fixture
def pool_url(server_url: str, replayed_template: str) -> Iterator[str]:
    url = clone_database(server_url, replayed_template)
    yield url
    drop_database(server_url, url)


def test_more_concurrent_requests_than_connections(pool_url: str, tmp_path: Path) -> None:
    env = liqmap_env(pool_url, db_pool_size=2, api_cache_entries=0, api_column_cache_entries=0)
    api = ApiProcess(env, tmp_path / "api.log")
    try:
        api.wait_ready()

        async def burst() -> list[tuple[int, bool, float]]:
            async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:

                async def one(i: int) -> tuple[int, bool, float]:
                    if i % 3 == 0:
                        day = 16 + i % 6  # distinct windows of the 5m range: no shared work
                        body = {
                            "query": HEATMAP,
                            "variables": {
                                "s": f"2026-06-{day:02d}T00:00:00Z",
                                "e": f"2026-06-{day:02d}T20:00:00Z",
                            },
                        }
                    else:
                        body = {"query": LEVELS if i % 3 == 1 else PAGE}
                    started = time.perf_counter()
                    response = await client.post("/graphql", json=body)
                    ok = response.status_code == 200 and not response.json().get("errors")
                    return response.status_code, ok, time.perf_counter() - started

                return await asyncio.gather(*(one(i) for i in range(24)))

        for _ in range(3):
            results = asyncio.run(burst())
            assert all(ok for _, ok, _ in results), results
            assert max(elapsed for *_, elapsed in results) < 15.0, results
    finally:
        api.stop()
