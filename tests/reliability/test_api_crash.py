"""SIGKILL of ``liqmap serve`` in the middle of requests, then a restart: the data is intact.

The API only reads market data, but a crash must still leave nothing behind: no session, lock or
open transaction on the server, no row changed; and a restarted process on the same port
answers exactly what the dead one answered.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import drop_database
from tests.reliability.conftest import clone_database, fingerprint, query_all, query_one
from tests.reliability.harness import ApiProcess, liqmap_env, wait_until

pytestmark = pytest.mark.slow

QUERIES: list[dict[str, Any]] = [
    {
        "query": """{ heatmap(symbol: "BTC/USDT:USDT", start: "2026-06-16T00:00:00Z",
                          end: "2026-06-22T00:00:00Z", interval: FIVE_MINUTES) {
                     columns rows priceMin priceStep maxUsd long short } }"""
    },
    {
        "query": '{ liquidationLevels(symbol: "BTC/USDT:USDT") { at price levels { price longUsd '
        "shortUsd } } }"
    },
    {
        "query": """{ snapshots(symbol: "BTC/USDT:USDT", start: "2026-06-01T00:00:00Z",
                            first: 50) { edges { cursor node { at price totalLongUsd } } } }"""
    },
    {
        "query": '{ longShortSplit(symbol: "BTC/USDT:USDT", withinPct: 5) { longUsd shortUsd '
        "ratio } }"
    },
    {
        "query": """{ candles(symbol: "BTC/USDT:USDT", exchange: "binanceusdm",
                          start: "2026-06-01T00:00:00Z", end: "2026-06-08T00:00:00Z") {
                     ts open high low close } }"""
    },
]


@pytest.fixture
def crash_url(server_url: str, replayed_template: str) -> Iterator[str]:
    url = clone_database(server_url, replayed_template)
    yield url
    drop_database(server_url, url)


def _answers(api: ApiProcess) -> list[Any]:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        out = []
        for query in QUERIES:
            response = client.post("/graphql", json=query)
            assert response.status_code == 200 and "errors" not in response.json(), response.text
            out.append(response.json())
        return out


async def _hammer(url: str, stop: asyncio.Event, outcomes: dict[str, int]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                response = await client.post("/graphql", json=QUERIES[n % len(QUERIES)])
                key = "ok" if response.status_code == 200 else f"http {response.status_code}"
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            outcomes[key] = outcomes.get(key, 0) + 1
            if key != "ok":
                return


def test_sigkill_mid_request_then_restart(crash_url: str, tmp_path: Path) -> None:
    env = liqmap_env(crash_url, api_cache_entries=0, api_column_cache_entries=0)
    api = ApiProcess(env, tmp_path / "api-1.log")
    api.wait_ready()
    # serve froze its startup heap (modules, schema, app) before serving: no full collection
    # walks those objects again (see cli.runner.freeze_startup_heap)
    frozen = re.search(r"frozen_objects=(\d+)", api.output())
    assert frozen is not None and int(frozen.group(1)) > 50_000, api.output()[-2000:]
    before_answers = _answers(api)
    before = fingerprint(crash_url)
    database = urlsplit(crash_url).path.lstrip("/")

    async def crash() -> dict[str, int]:
        stop = asyncio.Event()
        outcomes: dict[str, int] = {}
        clients = [asyncio.create_task(_hammer(api.url, stop, outcomes)) for _ in range(16)]
        # requests in flight (reading snapshots, encoding matrices) once some have been served;
        # waited for, not slept: on a loaded machine the first answers take longer
        deadline = time.monotonic() + 60
        while outcomes.get("ok", 0) <= 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        busy = query_one(
            crash_url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            database,
        )
        assert busy, "the API held no database session while serving"
        api.kill()
        stop.set()
        await asyncio.gather(*clients)
        return outcomes

    outcomes = asyncio.run(crash())
    assert outcomes.get("ok", 0) > 20, outcomes
    assert set(outcomes) - {"ok"}, f"no request was cut by the kill: {outcomes}"

    # the dead process's sessions go away with its sockets: nothing held, nothing left open
    def sessions() -> list[tuple[object, ...]]:
        return query_all(
            crash_url,
            "SELECT pid, state, xact_start FROM pg_stat_activity WHERE datname = %s "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            database,
        )

    wait_until(lambda: not sessions(), 15, what=f"the dead API's sessions to end: {sessions()}")
    locks = query_all(
        crash_url,
        "SELECT l.locktype, l.mode FROM pg_locks l JOIN pg_database d "
        "ON d.oid = l.database WHERE d.datname = %s AND l.pid <> pg_backend_pid()",
        database,
    )
    assert locks == []
    assert fingerprint(crash_url) == before

    # a new process on the same port answers exactly what the old one did
    restarted = ApiProcess(env, tmp_path / "api-2.log", port=api.port)
    try:
        restarted.wait_ready()
        assert httpx.get(f"{restarted.url}/health/ready").status_code == 200
        assert _answers(restarted) == before_answers
    finally:
        restarted.stop()
    assert fingerprint(crash_url) == before
