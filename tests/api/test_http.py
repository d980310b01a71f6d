"""HTTP behaviour: GET, gzip, cache headers, CORS, GraphiQL switch, health, metrics, masking,
query limits (including the fragment bypass)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import INTERNAL_MESSAGE
from models import market_store
from tests.api.conftest import build_app
from tests.api.pipeline import BAR, Stored

CLOSED_HEATMAP = """{ heatmap(symbol: "BTC/USDT:USDT", start: "2026-06-20T06:00:00Z",
  end: "2026-06-21T06:00:00Z", priceMin: 55000, priceMax: 75000) { columns rows long short } }"""


@pytest.fixture
async def make_client(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> AsyncIterator[Any]:
    clients: list[tuple[httpx.AsyncClient, Any]] = []

    def make(**overrides: Any) -> httpx.AsyncClient:
        app = build_app(api_engine, api_database_url, **overrides)
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        clients.append((c, app))
        return c

    yield make
    for c, app in clients:
        await c.aclose()
        await app.state.hub.close()


async def test_get_queries_gzip_and_etag_for_closed_ranges(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql", params={"query": CLOSED_HEATMAP}, headers={"Accept-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-encoding"] == "gzip"
    body = response.json()
    assert body["data"]["heatmap"]["columns"] == 288
    etag = response.headers["etag"]
    assert response.headers["cache-control"] == "public, max-age=300"
    again = await client.get(
        "/graphql", params={"query": CLOSED_HEATMAP}, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag


async def test_open_ranges_are_not_cacheable(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": '{ liquidationLevels(symbol: "BTC/USDT:USDT") { price } }'}
    )
    assert response.headers["cache-control"] == "no-cache"
    assert "etag" not in response.headers


async def test_internal_errors_are_masked(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any) -> Any:
        raise RuntimeError('relation "exchanges" does not exist: SELECT id, name FROM exchanges')

    monkeypatch.setattr(market_store, "exchanges", broken)
    response = await client.post("/graphql", json={"query": "{ exchanges { id } }"})
    body = response.json()
    assert body["errors"] == [
        {
            "message": INTERNAL_MESSAGE,
            "locations": [{"line": 1, "column": 3}],
            "path": ["exchanges"],
            "extensions": {"code": "INTERNAL"},
        }
    ]
    assert "SELECT" not in response.text and "Traceback" not in response.text


async def test_query_limits_including_fragments(make_client: Any) -> None:
    client = make_client(api_max_query_depth=2, api_max_aliases=2, api_max_query_tokens=60)

    async def code(query: str) -> str:
        body = (await client.post("/graphql", json={"query": query})).json()
        return body["errors"][0]["extensions"]["code"]

    deep = "{ exchanges { markets { coverage { dataset } } } }"
    assert await code(deep) == "QUERY_TOO_COMPLEX"
    hidden_depth = (
        "{ ...A } fragment A on Query { exchanges { ...B } } "
        "fragment B on Exchange { markets { coverage { dataset } } }"
    )
    assert await code(hidden_depth) == "QUERY_TOO_COMPLEX"
    hidden_aliases = (
        "{ ...A } fragment A on Query { a: exchanges { id } b: exchanges { id } "
        "c: exchanges { id } }"
    )
    assert await code(hidden_aliases) == "QUERY_TOO_COMPLEX"
    many_tokens = "{ exchanges { " + " ".join(["id"] * 80) + " } }"
    assert await code(many_tokens) == "QUERY_TOO_COMPLEX"
    assert await code("{ exchanges { nope } }") == "GRAPHQL_VALIDATION_FAILED"
    assert await code("{ exchanges { id }") == "GRAPHQL_PARSE_FAILED"
    ok = (await client.post("/graphql", json={"query": "{ exchanges { id } }"})).json()
    assert ok["data"]["exchanges"][0]["id"] == "binanceusdm"


async def test_cors_graphiql_switch_and_health(make_client: Any) -> None:
    client = make_client(cors_origins=["https://viewer.example"], graphiql=False)
    preflight = await client.options(
        "/graphql",
        headers={
            "Origin": "https://viewer.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://viewer.example"
    other = await client.options(
        "/graphql",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers
    ide = await client.get("/graphql", headers={"Accept": "text/html"})
    assert ide.status_code == 404

    default = make_client()
    ide = await default.get("/graphql", headers={"Accept": "text/html"})
    assert ide.status_code == 200 and "graphiql" in ide.text.lower()

    assert (await default.get("/health/live")).json() == {"status": "ok"}
    ready = await default.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


async def test_metrics_count_operations_and_ingest_lag(
    client: httpx.AsyncClient, stored: Stored
) -> None:
    from datetime import UTC, datetime

    await client.post("/graphql", json={"query": "{ exchanges { id } }"})
    await client.post("/graphql", json={"query": "{ exchanges { id } }"})
    await client.post("/graphql", json={"query": '{ markets(exchange: "nope") { symbol } }'})
    text = (await client.get("/metrics")).text
    assert 'liqmap_graphql_requests_total{operation="exchanges",outcome="ok"} 2.0' in text
    assert 'liqmap_graphql_requests_total{operation="markets",outcome="error"} 1.0' in text
    assert 'liqmap_graphql_request_seconds_count{operation="exchanges"} 2.0' in text
    # the repeated query was answered from the response cache
    assert 'liqmap_graphql_response_cache_hits_total{operation="exchanges"} 1.0' in text
    lag = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("liqmap_ingest_lag_seconds{")
    }
    # one gauge per stored watermark; the lag is the time since the ingest's watermark
    watermarks = stored.rows(
        "SELECT m.exchange_id, m.symbol, w.dataset, w.watermark FROM ingest_watermarks w "
        "JOIN markets m ON m.id = w.market_id"
    )
    assert len(lag) == len(watermarks) > 0
    for exchange, symbol, dataset, mark in watermarks:
        (value,) = [
            v
            for k, v in lag.items()
            if f'dataset="{dataset}"' in k
            and f'exchange="{exchange}"' in k
            and f'symbol="{symbol}"' in k
        ]
        assert abs(value - (datetime.now(UTC) - mark).total_seconds()) < 60
    assert stored.watermark("binanceusdm", "candles") == stored.bars.ts[-1]  # the partial bar


async def test_metrics_report_garbage_collector_pauses(client: httpx.AsyncClient) -> None:
    import gc

    def samples() -> dict[str, float]:
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("liqmap_gc_pause_seconds") and 'generation="2"' in line
        }

    text = (await client.get("/metrics")).text
    before = samples()
    gc.collect()
    gc.collect()
    text = (await client.get("/metrics")).text
    after = samples()
    count = 'liqmap_gc_pause_seconds_count{generation="2"}'
    assert after[count] - before[count] >= 2  # the two full collections above, at least
    total = 'liqmap_gc_pause_seconds_sum{generation="2"}'
    assert after[total] > before[total]
    # cumulative buckets: non-decreasing, and +Inf holds every pause
    buckets = [v for k, v in after.items() if "_bucket{" in k]
    assert buckets == sorted(buckets) and buckets[-1] == after[count]


async def test_get_with_variables_and_cached_repeat(client: httpx.AsyncClient) -> None:
    import json

    query = "query ($s: String!) { liquidationLevels(symbol: $s) { price totalLongUsd } }"
    params = {"query": query, "variables": json.dumps({"s": "BTC/USDT:USDT"})}
    first = await client.get("/graphql", params=params)
    second = await client.get("/graphql", params=params)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["data"]["liquidationLevels"]["totalLongUsd"] > 0
    wrong = await client.get(
        "/graphql", params={"query": query, "variables": json.dumps({"s": "XRP/USDT:USDT"})}
    )
    assert wrong.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # mutations do not exist and GET never runs anything but queries
    bad = await client.get("/graphql", params={"query": "mutation { x }"})
    assert bad.status_code in {400, 405}


async def test_only_fully_materialized_instants_and_ranges_are_cacheable(
    client: httpx.AsyncClient, stored: Stored
) -> None:
    from datetime import timedelta

    last_close = stored.latest("all").at  # newest materialized instant of the total

    async def cache_control(query: str) -> str:
        return (await client.post("/graphql", json={"query": query})).headers["cache-control"]

    levels = '{{ liquidationLevels(symbol: "BTC/USDT:USDT", at: "{}") {{ price }} }}'
    assert await cache_control(levels.format(last_close.isoformat())) == "public, max-age=300"
    later = (last_close + BAR).isoformat()  # not materialized yet: may change
    assert await cache_control(levels.format(later)) == "no-cache"
    heatmap = (
        '{{ heatmap(symbol: "BTC/USDT:USDT", start: "{}", end: "{}", priceMin: 60000, '
        "priceMax: 61000) {{ rows }} }}"
    )
    start = (last_close - timedelta(hours=2)).isoformat()
    assert await cache_control(heatmap.format(start, last_close.isoformat())) != "no-cache"
    assert await cache_control(heatmap.format(start, later)) == "no-cache"
    # a sum of exchanges is final only up to the newest bar every one of them has: Binance's
    # alone is final up to its newest bar; beside Bybit, which has no bar at all (no open
    # interest: it may still get one), never
    one, both = (
        '{{ liquidationLevels(symbol: "BTC/USDT:USDT", exchanges: ' + names + ", "
        'at: "{}") {{ price }} }}'
        for names in ('["binanceusdm"]', '["binanceusdm", "bybit"]')
    )
    newest = stored.latest("binanceusdm").at
    assert stored.snapshots("bybit", "5m") == ()
    assert await cache_control(one.format(newest.isoformat())) == "public, max-age=300"
    assert await cache_control(one.format((newest + BAR).isoformat())) == "no-cache"
    assert await cache_control(both.format(newest.isoformat())) == "no-cache"
    # a page of an open range is final once a bar after it is materialized: new bars land
    # after that bar, so neither the page nor hasNextPage can change
    hourly = [s.at for s in stored.snapshots("all", "1h")]
    page = (
        '{{ snapshots(symbol: "BTC/USDT:USDT", start: "{}", first: {}) '
        "{{ pageInfo {{ hasNextPage }} }} }}"
    )
    assert await cache_control(page.format(hourly[-6].isoformat(), 3)) == "public, max-age=300"
    assert await cache_control(page.format(hourly[-6].isoformat(), 5)) == "public, max-age=300"
    # the page ends on the newest hourly map: whether another follows is not known yet
    assert await cache_control(page.format(hourly[-6].isoformat(), 6)) == "no-cache"


async def test_series_are_cacheable_once_the_watermark_passed_their_end(
    client: httpx.AsyncClient, stored: Stored
) -> None:
    from datetime import datetime, timedelta

    async def cache_control(query: str) -> str:
        return (await client.post("/graphql", json={"query": query})).headers["cache-control"]

    for field, dataset in (("candles", "candles"), ("fundingRates", "funding")):
        watermark = stored.watermark("binanceusdm", dataset)  # what the ingest committed

        def query(start: datetime, end: datetime, field: str = field) -> str:
            return (
                f'{{ {field}(symbol: "BTC/USDT:USDT", exchange: "binanceusdm", '
                f'start: "{start.isoformat()}", end: "{end.isoformat()}") {{ ts }} }}'
            )

        start = watermark - timedelta(days=1)
        assert await cache_control(query(start, watermark)) == "public, max-age=300", field
        assert await cache_control(query(start, watermark + BAR)) == "no-cache", field
    # the ETH market's candle ingest failed: it has no watermark, nothing is final
    eth = (
        '{ candles(symbol: "ETH/USDT:USDT", exchange: "binanceusdm", '
        'start: "2026-06-01T00:00:00Z", end: "2026-06-02T00:00:00Z") { close } }'
    )
    response = await client.post("/graphql", json={"query": eth})
    assert response.json()["data"]["candles"] == []
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("request_args", "status", "fragment"),
    [
        (
            {
                "method": "POST",
                "content": b"not json",
                "headers": {"content-type": "application/json"},
            },
            400,
            "JSON",
        ),
        ({"method": "POST", "json": {"variables": {}}}, 400, "query"),
        (
            {
                "method": "POST",
                "json": {
                    "query": 'subscription { heatmapUpdated(symbol: "BTC/USDT:USDT") { at } }'
                },
            },
            400,
            "websockets",
        ),
        ({"method": "GET", "params": {"query": "mutation { x }"}}, 400, "GET"),
    ],
)
async def test_requests_refused_before_execution_carry_a_code(
    client: httpx.AsyncClient, request_args: dict[str, Any], status: int, fragment: str
) -> None:
    args = dict(request_args)
    response = await client.request(url="/graphql", **args)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert fragment in error["message"]


async def test_readiness_fails_until_migrations_reach_head(server_url: str, stored: Stored) -> None:
    from liqmap import migrations
    from liqmap.database import create_engine
    from tests.conftest import create_database, drop_database

    url = create_database(server_url, "liqmap_test_ready")
    engine = create_engine(url, pool_size=1)
    try:
        migrations.upgrade(url, "0001")
        app = build_app(engine, url)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            behind = await client.get("/health/ready")
            assert behind.status_code == 503
            assert behind.json()["status"] != "ok"
            await asyncio.to_thread(migrations.upgrade, url)
            ready = await client.get("/health/ready")
            assert ready.status_code == 200
            assert ready.json()["revision"] == migrations.head_revision()
        await app.state.hub.close()
    finally:
        await engine.dispose()
        drop_database(server_url, url)


GRAPHQL_RESPONSE = "application/graphql-response+json"


async def test_graphql_response_json_is_served_with_the_spec_status_codes(
    client: httpx.AsyncClient,
) -> None:
    """GraphQL over HTTP: a client that accepts application/graphql-response+json gets it, and a
    request that never executed (parse, validation, coercion) is a 400 with no data entry; an
    executed one is a 200 even with field errors. application/json, */* and no Accept keep the
    legacy 200 with data null."""

    async def post(accept: str | None, query: str, **variables: Any) -> httpx.Response:
        headers = {} if accept is None else {"accept": accept}
        body = {"query": query, "variables": variables}
        return await client.post("/graphql", json=body, headers=headers)

    ok = await post(GRAPHQL_RESPONSE, "{ exchanges { id } }")
    assert ok.status_code == 200
    assert ok.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert ok.json()["data"]["exchanges"][0]["id"] == "binanceusdm"
    refused = {
        "{ exchanges { id }": "GRAPHQL_PARSE_FAILED",
        "{ exchanges { nope } }": "GRAPHQL_VALIDATION_FAILED",
        'query ($at: DateTime!) { liquidationMap: liquidationLevels(symbol: "BTC/USDT:USDT", '
        "at: $at) { price } }": "BAD_USER_INPUT",
    }
    for query, code in refused.items():
        response = await post(GRAPHQL_RESPONSE, query, at="2026-06-21")
        assert response.status_code == 400, (query, response.text)
        assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
        body = response.json()
        assert "data" not in body and [e["extensions"]["code"] for e in body["errors"]] == [code]
        for legacy in ("application/json", "*/*", None):
            old = await post(legacy, query, at="2026-06-21")
            assert old.status_code == 200 and old.headers["content-type"] == "application/json"
            assert old.json()["data"] is None, legacy
            assert old.json()["errors"][0]["extensions"]["code"] == code
    # executed, with a field error: data is there (null), so 200
    missing = await post(GRAPHQL_RESPONSE, '{ markets(exchange: "nope") { symbol } }')
    assert missing.status_code == 200 and missing.json()["data"] is None
    assert missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # a preference by quality
    preferred = await post(f"application/json;q=0.5, {GRAPHQL_RESPONSE}", "{ exchanges { id } }")
    assert preferred.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    legacy_first = await post(f"application/json, {GRAPHQL_RESPONSE};q=0.9", "{ exchanges { id } }")
    assert legacy_first.headers["content-type"] == "application/json"


async def test_the_response_cache_keys_on_extensions_and_media_type(
    client: httpx.AsyncClient,
) -> None:
    """A cached answer to a valid request never answers a malformed one that differs only in its
    extensions or variables, nor one that asked for the other media type."""
    query = "{ exchanges { id } }"
    for _ in range(2):  # the second is answered from the response cache
        ok = await client.post("/graphql", json={"query": query, "extensions": {}})
        assert ok.status_code == 200
    for bad in ({"extensions": "x"}, {"extensions": [1]}, {"variables": False}, {"variables": 0}):
        response = await client.post("/graphql", json={"query": query, **bad})
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    spec = await client.post(
        "/graphql", json={"query": query}, headers={"accept": GRAPHQL_RESPONSE}
    )
    assert spec.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    again = await client.post("/graphql", json={"query": query}, headers={"accept": "*/*"})
    assert again.headers["content-type"] == "application/json"
    with_extension = await client.post(
        "/graphql", json={"query": query, "extensions": {"persistedQuery": None}}
    )
    assert with_extension.status_code == 200


async def test_ingest_lag_in_a_replay_is_measured_on_the_data_clock(
    api_engine: Any, api_database_url: str, stored: Stored
) -> None:
    """In a replay "now" is the newest ingested bar (api/clock.py), for /metrics as for
    coverage: the lag of each watermark is its distance to the newest candle watermark, not
    the months to the wall clock."""
    app = build_app(api_engine, api_database_url, replay_dir=stored.shared_data)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            text = (await client.get("/metrics")).text
    finally:
        await app.state.hub.close()
    watermarks = stored.rows(
        "SELECT m.exchange_id, m.symbol, w.dataset, w.watermark FROM ingest_watermarks w "
        "JOIN markets m ON m.id = w.market_id"
    )
    clock = max(mark for _, _, dataset, mark in watermarks if dataset == "candles")
    for exchange, symbol, dataset, mark in watermarks:
        key = (
            f'liqmap_ingest_lag_seconds{{dataset="{dataset}",exchange="{exchange}",'
            f'symbol="{symbol}"}} '
        )
        (line,) = [line for line in text.splitlines() if line.startswith(key)]
        assert float(line.rsplit(" ", 1)[1]) == (clock - mark).total_seconds()
