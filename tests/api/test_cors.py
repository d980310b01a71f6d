"""CORS as docs/operations.md documents it: LIQMAP_CORS_ORIGINS, read from the environment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from liqmap.settings import Settings
from tests.api.pipeline import Stored


def from_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> Settings:
    monkeypatch.setenv("LIQMAP_CORS_ORIGINS", value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_documented_format_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = from_environment(monkeypatch, "https://dash.example.com, http://localhost:5173")
    assert settings.cors_origins == ["https://dash.example.com", "http://localhost:5173"]
    assert from_environment(monkeypatch, "*").cors_origins == ["*"]
    assert from_environment(monkeypatch, "").cors_origins == []


@pytest.mark.parametrize(
    "value", ["https://dash.example.com/", "dash.example.com", "https://a.example/app", "*.x"]
)
def test_values_that_are_not_origins_are_refused_with_the_format(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        from_environment(monkeypatch, value)
    assert "scheme://host[:port]" in str(refused.value)


@pytest.fixture
async def cors_client(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    from api.app import create_app

    apps = []

    def make(value: str) -> httpx.AsyncClient:
        settings = from_environment(monkeypatch, value)
        app = create_app(settings, api_engine, database_url=api_database_url)
        apps.append(app)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")

    yield make
    for app in apps:
        await app.state.hub.close()


async def test_listed_origins_are_allowed_and_others_not(cors_client: Any) -> None:
    client = cors_client("https://dash.example.com,http://localhost:5173")
    for origin in ("https://dash.example.com", "http://localhost:5173"):
        preflight = await client.options(
            "/graphql",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        assert preflight.headers["access-control-max-age"] == "600"
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "x-api-key", "if-none-match"} <= {
            h.strip() for h in allowed.split(",")
        }
        answer = await client.post(
            "/graphql", json={"query": "{ exchanges { id } }"}, headers={"Origin": origin}
        )
        assert answer.headers["access-control-allow-origin"] == origin
        assert set(answer.headers["access-control-expose-headers"].split(", ")) >= {
            "ETag",
            "Retry-After",
        }
    other = await client.options(
        "/graphql",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers
    anyone = cors_client("*")
    answer = await anyone.post(
        "/graphql", json={"query": "{ exchanges { id } }"}, headers={"Origin": "https://x.example"}
    )
    assert answer.headers["access-control-allow-origin"] == "*"
    none = cors_client("")
    answer = await none.post(
        "/graphql", json={"query": "{ exchanges { id } }"}, headers={"Origin": "https://x.example"}
    )
    assert "access-control-allow-origin" not in answer.headers
