"""API test fixtures: a database of the API tests' own, filled once per session by the real jobs
(tests/api/pipeline.py); the app over real HTTP.

HTTP tests go through httpx's ASGI transport into the real Starlette app; websocket tests and
the load test use a real uvicorn server on loopback. Everything reads real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from liqmap.database import create_engine
from tests.api.pipeline import Stored, produce
from tests.api.settings import api_settings
from tests.conftest import create_database, drop_database


@pytest.fixture(scope="session")
def api_database_url(server_url: str) -> Iterator[str]:
    from liqmap import migrations

    url = create_database(server_url, "liqmap_test_api")
    migrations.upgrade(url)
    yield url
    drop_database(server_url, url)


@pytest.fixture(scope="session")
async def api_engine(api_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(api_database_url, pool_size=10)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def stored(api_database_url: str, shared_data: Path) -> Stored:
    """What the real jobs stored from ../shared/data (see tests/api/pipeline.py), run once."""
    await produce(api_database_url, shared_data)
    return Stored(api_database_url, shared_data)


def build_app(engine: AsyncEngine, url: str, **overrides: Any) -> Starlette:
    from api.app import create_app

    settings = api_settings(**overrides)
    return create_app(settings, engine, database_url=url)


@pytest.fixture
async def app(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> AsyncIterator[Starlette]:
    application = build_app(api_engine, api_database_url)
    yield application
    await application.state.hub.close()  # the listener starts on first use without lifespan


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://liqmap.test") as c:
        yield c


class GraphQLClient:
    """POST a query; return the parsed body (status checked by the caller when it matters)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self(query, **variables)
        assert "errors" not in body, body["errors"]
        return body["data"]


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_config=None,
                lifespan="on",
                ws="websockets-sansio",
            )
        )
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> LiveServer:
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(200):
            if self.server.started:
                return self
            await asyncio.sleep(0.02)
        raise RuntimeError("uvicorn did not start")

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task


@pytest.fixture
async def live_server(app: Starlette) -> AsyncIterator[LiveServer]:
    async with LiveServer(app) as server:
        yield server
