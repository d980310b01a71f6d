"""API keys: hashed storage, both headers, required switch, revocation, rate limits, CLI."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api import auth
from tests.api.conftest import build_app
from tests.api.pipeline import Stored

QUERY = {"query": "{ exchanges { id } }"}


def client_for(engine: AsyncEngine, url: str, **overrides: Any) -> httpx.AsyncClient:
    app = build_app(engine, url, **overrides)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_keys_are_stored_hashed_and_accepted_in_both_headers(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> None:
    key, info = await auth.create_key(api_engine, "acme", 100)
    async with api_engine.connect() as conn:
        stored = (
            await conn.execute(text("SELECT key_hash FROM api_keys WHERE id = :i"), {"i": info.id})
        ).scalar_one()
    assert stored == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(f"lqm_{info.prefix}_")
    async with client_for(
        api_engine, api_database_url, require_api_keys=True, api_key_cache_seconds=0.0
    ) as client:
        anonymous = await client.post("/graphql", json=QUERY)
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/json"
        assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert anonymous.json()["data"] is None
        # the GraphQL over HTTP media type when the client asks for it, as for other errors
        modern = await client.post(
            "/graphql", json=QUERY, headers={"Accept": "application/graphql-response+json"}
        )
        assert modern.status_code == 401
        assert modern.headers["content-type"] == "application/graphql-response+json; charset=utf-8"
        assert "data" not in modern.json()
        assert modern.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        bearer = await client.post(
            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {key}"}
        )
        assert bearer.status_code == 200 and bearer.json()["data"]["exchanges"]
        header = await client.post("/graphql", json=QUERY, headers={"X-API-Key": key})
        assert header.status_code == 200
        wrong = await client.post("/graphql", json=QUERY, headers={"X-API-Key": key + "x"})
        assert wrong.status_code == 401
        assert await auth.revoke_key(api_engine, info.prefix)
        revoked = await client.post("/graphql", json=QUERY, headers={"X-API-Key": key})
        assert revoked.status_code == 401
        # with keys required the IDE is behind a key too (issue #17): without one, 401
        ide = await client.get("/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 401
        assert ide.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        other, _ = await auth.create_key(api_engine, "ide", 100)
        ide = await client.get("/graphql", headers={"Accept": "text/html", "X-API-Key": other})
        assert ide.status_code == 200 and "graphiql" in ide.text.lower()


async def test_a_revoked_key_is_refused_at_once_though_its_lookup_is_cached(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> None:
    """Key lookups are cached (here for an hour), but ``revoke_key`` announces the revocation
    and the serving process drops its cache: the key is refused within moments, not an hour."""
    import asyncio
    import time

    from tests.api.conftest import LiveServer

    key, info = await auth.create_key(api_engine, "acme", 100)
    other, _ = await auth.create_key(api_engine, "other", 100)
    app = build_app(
        api_engine, api_database_url, require_api_keys=True, api_key_cache_seconds=3600.0
    )
    try:
        async with LiveServer(app) as server, httpx.AsyncClient(base_url=server.url) as client:

            async def status(k: str) -> int:
                response = await client.post("/graphql", json=QUERY, headers={"X-API-Key": k})
                return response.status_code

            assert await status(key) == 200 and await status(other) == 200  # now cached
            assert app.state.hub.listening
            assert await auth.revoke_key(api_engine, info.prefix)
            revoked_at = time.monotonic()
            while await status(key) != 401:
                assert time.monotonic() - revoked_at < 5, "the revoked key is still let in"
                await asyncio.sleep(0.05)
            assert await status(other) == 200  # looked up again, still valid
    finally:
        await app.state.hub.close()


async def test_keys_are_optional_by_default_but_must_be_valid_when_sent(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> None:
    async with client_for(api_engine, api_database_url) as client:
        assert (await client.post("/graphql", json=QUERY)).status_code == 200
        bad = await client.post("/graphql", json=QUERY, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401


async def test_per_key_rate_limit_answers_429(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> None:
    key, _ = await auth.create_key(api_engine, "tiny", 3)
    other, _ = await auth.create_key(api_engine, "other", 100)
    async with client_for(api_engine, api_database_url) as client:
        statuses = [
            (await client.post("/graphql", json=QUERY, headers={"X-API-Key": key})).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 200]
        limited = await client.post(
            "/graphql",
            json=QUERY,
            headers={"X-API-Key": key, "Accept": "application/graphql-response+json"},
        )
        assert limited.status_code == 429
        assert limited.headers["content-type"].startswith("application/graphql-response+json")
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        # one token comes back every 60/3 = 20 s
        assert 1 <= int(limited.headers["retry-after"]) <= 20
        # limits are per key
        ok = await client.post("/graphql", json=QUERY, headers={"X-API-Key": other})
        assert ok.status_code == 200
        metrics = (await client.get("/metrics")).text
        assert 'liqmap_http_rejections_total{reason="rate_limited"} 1.0' in metrics


def test_token_bucket_refills_at_the_configured_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    limiter = auth.RateLimiter()
    assert [limiter.allow("k", 60)[0] for _ in range(60)] == [True] * 60
    allowed, retry = limiter.allow("k", 60)
    assert not allowed and retry == pytest.approx(1.0)
    clock[0] += 2.5  # 60/min = one per second
    assert [limiter.allow("k", 60)[0] for _ in range(3)] == [True, True, False]


def test_limiter_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    limiter = auth.RateLimiter(max_clients=100)
    for i in range(1_000):  # a flood of addresses never grows the table past its bound
        limiter.allow(f"flood:{i}", 2)
        assert len(limiter) <= 100
    limiter.allow("busy", 2)
    limiter.allow("busy", 2)
    assert limiter.allow("busy", 2)[0] is False  # limits still hold for a tracked client
    clock[0] += 61.0  # every flood bucket is idle, i.e. full again: the next newcomer drops them
    for i in range(100 - len(limiter)):
        limiter.allow(f"late:{i}", 2)
    limiter.allow("newcomer", 2)
    assert len(limiter) < 100 and limiter.allow("newcomer", 2)[0] is True


async def test_key_in_the_url_counts_on_websockets_only(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> None:
    key, _ = await auth.create_key(api_engine, "url", 100)
    async with client_for(api_engine, api_database_url, require_api_keys=True) as client:
        in_url = await client.post("/graphql", params={"api_key": key}, json=QUERY)
        assert in_url.status_code == 401  # never accepted where it would be logged
        in_header = await client.post("/graphql", json=QUERY, headers={"X-API-Key": key})
        assert in_header.status_code == 200
        closed = await client.get(
            "/graphql",
            headers={"X-API-Key": key},
            params={
                "query": '{ candles(exchange: "binanceusdm", symbol: "BTC/USDT:USDT", '
                'start: "2026-06-01T00:00:00Z", end: "2026-06-01T01:00:00Z") { close } }'
            },
        )
        assert closed.status_code == 200, closed.text
        # answers behind keys may be cached by the client, not by shared proxies
        assert closed.headers["cache-control"] == "private, max-age=300"


def test_cli_create_list_revoke(
    api_database_url: str,
    stored: Stored,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import psycopg

    from cli import main as cli

    monkeypatch.setenv("LIQMAP_DATABASE_URL", api_database_url)

    def run(*argv: str) -> int:
        return cli.main(["apikey", *argv])

    def stored(key: str) -> tuple | None:
        with psycopg.connect(api_database_url) as conn:
            return conn.execute(
                "SELECT name, prefix, rate_limit_per_minute, revoked_at IS NOT NULL "
                "FROM api_keys WHERE key_hash = %s",
                (hashlib.sha256(key.encode()).hexdigest(),),
            ).fetchone()

    assert run("create", "cli test", "--rate-limit", "42") == 0
    key = capsys.readouterr().out.splitlines()[0]
    row = stored(key)
    assert row is not None and row[0] == "cli test" and row[2] == 42 and row[3] is False
    prefix = row[1]
    assert run("list") == 0
    assert prefix in capsys.readouterr().out
    assert run("revoke", prefix) == 0
    assert stored(key)[3] is True
    capsys.readouterr()
    assert run("revoke", prefix) == 2  # already revoked: one clear line, exit code 2
    assert "no active API key" in capsys.readouterr().err


async def test_key_store_failure_is_a_masked_internal_error(
    api_engine: AsyncEngine,
    api_database_url: str,
    stored: Stored,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def down(self: Any, key: str) -> Any:
        raise OSError("connection refused: postgresql://liqmap:secret@db/liqmap")

    monkeypatch.setattr(auth.KeyStore, "lookup", down)
    async with client_for(api_engine, api_database_url) as client:
        response = await client.post("/graphql", json=QUERY, headers={"X-API-Key": "lqm_x_y"})
    assert response.status_code == 500
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert "secret" not in response.text and "postgresql" not in response.text


async def test_metrics_are_gated_when_keys_are_required(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> None:
    key, _ = await auth.create_key(api_engine, "scraper", 100)
    async with client_for(api_engine, api_database_url) as client:  # keys optional: open
        assert (await client.get("/metrics")).status_code == 200
    async with client_for(api_engine, api_database_url, require_api_keys=True) as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401 and "liqmap_" not in refused.text
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer lqm_x_y"})
        assert wrong.status_code == 401
        ok = await client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200 and "liqmap_graphql_requests_total" in ok.text
    token = "metrics-" + "s" * 24
    async with client_for(
        api_engine, api_database_url, require_api_keys=True, metrics_token=token
    ) as client:
        # with a metrics token, only the token opens /metrics (an API key is not a scraper's)
        assert (await client.get("/metrics", headers={"X-API-Key": key})).status_code == 401
        ok = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and "liqmap_" in ok.text
        # and the token is no API key
        graphql = await client.post("/graphql", json=QUERY, headers={"X-API-Key": token})
        assert graphql.status_code == 401


async def test_readiness_names_no_exception_when_the_database_is_down(
    api_database_url: str, stored: Stored
) -> None:
    from liqmap.database import create_engine
    from tests.api.conftest import free_port

    port = free_port()  # nothing listens there
    url = f"postgresql://postgres@127.0.0.1:{port}/nowhere"
    engine = create_engine(url, pool_size=1)
    try:
        async with client_for(engine, url) as client:
            ready = await client.get("/health/ready")
    finally:
        await engine.dispose()
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "reason": "database unavailable"}
    for leak in ("Error", "Exception", "refused", "asyncpg", "psycopg", str(port)):
        assert leak not in ready.text, ready.text
