"""Subscriptions over graphql-transport-ws on a real uvicorn, fed by the materializer's NOTIFY.

The live tests get a database of their own (``live``, a copy of one prepared per module): the
real jobs ingest a prefix of the shared Binance window (the last four days but one hour) and
materialize it; a test then opens subscriptions, ingests the rest with
``jobs.ingest.ingest_dataset`` and runs ``jobs.materialize.materialize_symbol``, and the columns
and alerts that arrive are checked against the snapshots the materializer stored (read back with
plain SQL).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.subscriptions import SnapshotEvent
from liqmap.database import DatabaseTarget, create_engine, database_name, with_database
from models.auth_store import KEYS_CHANNEL
from tests.api.brute import brute_force_walls
from tests.api.conftest import LiveServer, build_app
from tests.api.pipeline import SYMBOL, Snap, Stored, band_rows, on_grid
from tests.api.settings import jobs_settings
from tests.conftest import create_database, drop_database

LIVE_DAYS = 4  # backfill of the live database: a recompute rewrites > QUEUE_SIZE bars
HELD_BACK = timedelta(hours=1)  # the end of the window the prefix leaves for the tests


class Subscriber:
    """One graphql-transport-ws connection; messages are sorted by operation id."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.inbox: dict[str, list[dict[str, Any]]] = {}

    async def start(self, op_id: str, query: str, variables: dict[str, Any]) -> None:
        payload = {"query": query, "variables": variables}
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))

    async def next(self, op_id: str, timeout: float = 20.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while not self.inbox.get(op_id):
                message = json.loads(await self.ws.recv())
                if message["type"] in {"next", "error", "complete"}:
                    self.inbox.setdefault(message["id"], []).append(message)
        return self.inbox[op_id].pop(0)

    async def nothing_more(self, wait: float = 0.5) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(wait):
                while True:
                    message = json.loads(await self.ws.recv())
                    assert message["type"] not in {"next", "error", "complete"}, message


async def connect(server: LiveServer, **kwargs: Any) -> Any:
    ws = await websockets.connect(
        server.url.replace("http", "ws") + "/graphql",
        subprotocols=["graphql-transport-ws"],
        **kwargs,
    )
    await ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    return ws


async def subscribed(app: Starlette, count: int) -> None:
    """Wait until ``count`` subscriptions listen and have read where they start. Each
    registers its queue with the hub and then, with no pause between, reads the newest stored
    bar on a pooled connection of the app's engine, which it gives back: once ``count`` queues
    exist and the pool has nothing checked out, every one of them has its start."""
    hub, pool = app.state.hub, app.state.engine.pool
    deadline = asyncio.get_running_loop().time() + 10
    while not (len(hub._queues) >= count and pool.checkedout() == 0):
        assert asyncio.get_running_loop().time() < deadline, (len(hub._queues), pool.status())
        await asyncio.sleep(0.01)


async def notifications_delivered(app: Starlette, engine: AsyncEngine) -> None:
    """Wait until every NOTIFY committed so far has reached the app's hub. PostgreSQL delivers
    notifications in the order their transactions committed, so a sentinel sent now (on the
    key-revocation channel, under a prefix no key has) arrives after all of them."""
    hub = app.state.hub
    sentinel = f"barrier-{uuid.uuid4().hex}"
    arrived = asyncio.Event()
    hub.on_key_revoked(lambda prefix: arrived.set() if prefix == sentinel else None)
    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT pg_notify(:channel, :sentinel)"),
            {
                "channel": KEYS_CHANNEL,
                "sentinel": sentinel,
            },
        )
    await asyncio.wait_for(arrived.wait(), 10)


@dataclass
class Live:
    url: str
    engine: AsyncEngine
    stored: Stored
    settings: Any

    def runtime(self, **overrides: Any) -> Any:
        from jobs.pipeline import open_runtime

        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        return open_runtime(settings, DatabaseTarget(self.url, embedded=False))


@pytest.fixture(scope="module")
async def live_template(server_url: str, shared_data: Path) -> AsyncIterator[tuple[str, Any]]:
    """The real jobs over a prefix of the window: everything up to HELD_BACK before its end."""
    from jobs.ingest import DATASETS, ingest_dataset
    from jobs.materialize import materialize_symbol
    from jobs.pipeline import open_runtime, sync_all_markets
    from liqmap import migrations

    url = create_database(server_url, "liqmap_test_api_live")
    migrations.upgrade(url)
    settings = jobs_settings(
        shared_data,
        exchanges=["binanceusdm"],
        symbols={"binanceusdm": [SYMBOL]},
        backfill_days=LIVE_DAYS,
    )
    cut = Stored(url, shared_data).bars.ts[-1] - HELD_BACK
    rt = open_runtime(settings, DatabaseTarget(url, embedded=False))
    try:
        await sync_all_markets(rt)
        for dataset in DATASETS:
            result = await ingest_dataset(
                rt, "binanceusdm", SYMBOL, dataset, until_ms=int(cut.timestamp() * 1000)
            )
            assert result.status == "succeeded", result
        await materialize_symbol(rt, SYMBOL)
    finally:
        await rt.close()
        await rt.engine.dispose()  # no connection left: the database can serve as a template
    yield url, settings
    drop_database(server_url, url)


@pytest.fixture
async def live(
    server_url: str, shared_data: Path, live_template: tuple[str, Any]
) -> AsyncIterator[Live]:
    """A fresh copy of the prefix database for one test (the tests change it)."""
    template, settings = live_template
    name = f"liqmap_test_api_live_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{database_name(template)}"')
    url = with_database(server_url, name)
    state = Live(url, create_engine(url, pool_size=5), Stored(url, shared_data), settings)
    yield state
    await state.engine.dispose()
    drop_database(server_url, url)


@pytest.fixture
async def live_app(live: Live) -> AsyncIterator[Starlette]:
    app = build_app(live.engine, live.url)
    yield app
    await app.state.hub.close()


def snapshots(stored: Stored, scope: str, resolution: str = "5m") -> tuple[Snap, ...]:
    stored.forget()  # this database changes under the tests
    return stored.snapshots(scope, resolution)


async def ingest_the_rest_and_materialize(live: Live) -> Any:
    from jobs.ingest import ingest_dataset
    from jobs.materialize import materialize_symbol

    rt = live.runtime()
    try:
        for dataset in ("candles", "open_interest", "funding"):  # from the stored watermarks on
            result = await ingest_dataset(rt, "binanceusdm", SYMBOL, dataset)
            assert result.status == "succeeded", result
        return await materialize_symbol(rt, SYMBOL)
    finally:
        await rt.close()
        await rt.engine.dispose()


HEATMAP_UPDATED = """subscription ($symbol: String!, $exchanges: [String!]) {
  heatmapUpdated(symbol: $symbol, exchanges: $exchanges) {
    symbol exchanges at price priceMin priceStep rows encoding long short } }"""
BANDS_UPDATED = """subscription ($leverage: [LeverageBand!]) {
  heatmapUpdated(symbol: "BTC/USDT:USDT", exchanges: ["binanceusdm"], leverage: $leverage) {
    at priceMin priceStep rows leverageBands long short } }"""
CLUSTER_ALERT = """subscription ($symbol: String!, $pct: Float!, $min: Float!) {
  clusterAlert(symbol: $symbol, withinPct: $pct, minUsd: $min, exchanges: ["binanceusdm"]) {
    at price cluster { side priceLow priceHigh peakPrice notionalUsd distancePct } } }"""


def near_walls(snap: Snap, within_pct: float, min_usd: float) -> list[tuple]:
    """(side, low, high, notional, distance %) of the walls of at least min_usd near price."""
    out = []
    for side, values in (("LONG", snap.long_usd), ("SHORT", snap.short_usd)):
        for start, stop, notional in brute_force_walls(values.astype(np.float64)):
            low = (snap.first + start) * snap.bucket_size
            high = (snap.first + stop) * snap.bucket_size
            distance = 100 * max(low - snap.price, snap.price - high, 0.0) / snap.price
            if notional >= min_usd and distance <= within_pct:
                out.append((side, low, high, notional, distance))
    return out


def expected_alerts(new: list[Snap], within_pct: float, min_usd: float) -> list[tuple[str, tuple]]:
    """A wall alerts when it comes near, again only after it has been away."""
    out, near = [], set()
    for snap in new:
        walls = near_walls(snap, within_pct, min_usd)
        out += [(snap.at.isoformat(), w) for w in walls if w[:3] not in near]
        near = {w[:3] for w in walls}
    return out


async def test_columns_and_alerts_arrive_after_a_materializer_run(
    live: Live, live_app: Starlette
) -> None:
    old = {scope: snapshots(live.stored, scope) for scope in ("binanceusdm", "all")}
    newest = old["binanceusdm"][-1]
    assert newest.ts == old["all"][-1].ts
    # alert within a percent beyond the nearest wall now, on walls of at least half the largest
    # wall that close (the engine's walls sit a few percent from the price)
    nearest = min(w[4] for w in near_walls(newest, 100.0, 0.0))
    within_pct = float(math.ceil(nearest + 1.0))
    min_usd = max(w[3] for w in near_walls(newest, within_pct, 0.0)) / 2

    async with LiveServer(live_app) as server:
        ws = await connect(server)
        try:
            sub = Subscriber(ws)
            await sub.start("total", HEATMAP_UPDATED, {"symbol": SYMBOL, "exchanges": None})
            await sub.start(
                "binance", HEATMAP_UPDATED, {"symbol": SYMBOL, "exchanges": ["binanceusdm"]}
            )
            await sub.start(
                "alerts", CLUSTER_ALERT, {"symbol": SYMBOL, "pct": within_pct, "min": min_usd}
            )
            # two leverage bands only: the lowest and 50-100x
            await sub.start("bands", BANDS_UPDATED, {"leverage": ["UP_TO_10X", "FROM_50X_TO_100X"]})
            await subscribed(live_app, 4)

            report = await ingest_the_rest_and_materialize(live)
            assert not any(s.full_recompute for s in report.series)  # the incremental path

            for op_id, scope in (("binance", "binanceusdm"), ("total", "all")):
                new = [s for s in snapshots(live.stored, scope) if s.ts > newest.ts]
                assert len(new) >= 11  # the bars of the hour held back (the last is partial)
                for snap in new:
                    message = await sub.next(op_id)
                    assert message["type"] == "next", message
                    column = message["payload"]["data"]["heatmapUpdated"]
                    assert column["at"] == snap.at.isoformat()
                    assert column["price"] == snap.price
                    assert column["priceMin"] == snap.bucket_origin
                    assert column["priceStep"] == snap.bucket_size
                    assert column["rows"] == snap.long_usd.size
                    assert column["encoding"] == "FLOAT32_BASE64"
                    assert column["exchanges"] == ["binanceusdm"]
                    long_usd = np.frombuffer(base64.b64decode(column["long"]), "<f4")
                    np.testing.assert_array_equal(long_usd, snap.long_usd)
                    short_usd = np.frombuffer(base64.b64decode(column["short"]), "<f4")
                    np.testing.assert_array_equal(short_usd, snap.short_usd)

            new = [s for s in snapshots(live.stored, "binanceusdm") if s.ts > newest.ts]
            series = live.stored.series_id("binanceusdm")
            for snap in new:
                column = (await sub.next("bands"))["payload"]["data"]["heatmapUpdated"]
                assert column["at"] == snap.at.isoformat()
                assert column["leverageBands"] == ["1-10", "51-100"]
                # the stored band blob read field by field, the two bands summed and spread
                # over the grid like the totals
                blob, fine, center, q0, size = live.stored.one(
                    "SELECT band_usd, fine_buckets, center_index, compact_first, "
                    "cardinality(long_usd) FROM heatmap_snapshots "
                    "WHERE series_id = %s AND resolution = '5m' AND ts = %s",
                    (series, snap.ts),
                )
                rows = band_rows(bytes(blob), size).astype(np.float64)
                first, long_usd, short_usd = on_grid(
                    snap.bucket_origin,
                    snap.bucket_size,
                    rows[0] + rows[3],
                    rows[5] + rows[8],
                    fine,
                    center,
                    q0,
                )
                assert column["priceMin"] == first * snap.bucket_size == snap.bucket_origin
                assert column["rows"] == long_usd.size == snap.long_usd.size
                got_long = np.frombuffer(base64.b64decode(column["long"]), "<f4")
                got_short = np.frombuffer(base64.b64decode(column["short"]), "<f4")
                np.testing.assert_array_equal(got_long, long_usd.astype(np.float32))
                np.testing.assert_array_equal(got_short, short_usd.astype(np.float32))
                assert 0 < got_long.sum() < snap.long_usd.sum()  # a part of the whole
            expected = expected_alerts(new, within_pct, min_usd)
            assert expected, "the window's walls should come near the price in the last hour"
            got = []
            for _ in expected:
                message = await sub.next("alerts")
                assert message["type"] == "next", message
                alert = message["payload"]["data"]["clusterAlert"]
                c = alert["cluster"]
                got.append(
                    (
                        alert["at"],
                        (
                            c["side"],
                            c["priceLow"],
                            c["priceHigh"],
                            c["notionalUsd"],
                            c["distancePct"],
                        ),
                    )
                )
                snap = next(s for s in new if s.at.isoformat() == alert["at"])
                assert alert["price"] == snap.price
                assert c["priceLow"] <= c["peakPrice"] < c["priceHigh"]
            assert sorted(g[:1] + g[1][:3] for g in got) == sorted(
                e[:1] + e[1][:3] for e in expected
            )
            for (_, g), (_, e) in zip(sorted(got), sorted(expected), strict=True):
                assert g[3] == pytest.approx(e[3], rel=1e-9)
                assert g[4] == pytest.approx(e[4], rel=1e-9, abs=1e-12)
            for op_id in ("binance", "total", "alerts", "bands"):
                assert not sub.inbox.get(op_id)
            await sub.nothing_more()
        finally:
            await ws.close()


HEATMAP = """query ($start: DateTime!, $end: DateTime!, $lo: Float!, $hi: Float!) {
  heatmap(symbol: "BTC/USDT:USDT", exchanges: ["binanceusdm"], start: $start, end: $end,
          interval: FIVE_MINUTES, priceMin: $lo, priceMax: $hi) { columns rows priceMin long } }"""
LATEST = """{ liquidationLevels(symbol: "BTC/USDT:USDT", exchanges: ["binanceusdm"]) {
  at totalLongUsd model { assumptions } } }"""


def stored_matrix(snaps: list[Snap], first_row: int, rows: int) -> np.ndarray:
    out = np.zeros((rows, len(snaps)), np.float32)
    for j, snap in enumerate(snaps):
        for k, value in enumerate(snap.long_usd):
            if 0 <= snap.first + k - first_row < rows:
                out[snap.first + k - first_row, j] = value
    return out


async def test_a_recompute_refreshes_caches_and_delivers_only_the_new_bars(
    live: Live, live_app: Starlette
) -> None:
    """One materializer run with a changed model parameter and new bars: it recomputes the
    series, more snapshots than a subscriber's queue holds, and announces each write in one
    NOTIFY per resolution naming the range rewritten. Cached columns and responses must give way
    to the new numbers, and subscribers get the new bars, once, and none of the old ones."""
    from api.subscriptions import QUEUE_SIZE
    from jobs.ingest import ingest_dataset
    from jobs.materialize import materialize_symbol

    old = {scope: snapshots(live.stored, scope) for scope in ("binanceusdm", "all")}
    snaps = list(old["binanceusdm"][-12:])
    start, end = snaps[0].ts, snaps[-1].at
    bucket = snaps[0].bucket_size
    first_row = min(s.first for s in snaps)
    rows = max(s.first + s.long_usd.size for s in snaps) - first_row
    variables = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "lo": first_row * bucket,
        "hi": (first_row + rows) * bucket,
    }
    hub, graphql = live_app.state.hub, live_app.state.graphql
    (_, params), *_ = live.stored.model_states().values()
    half_life = params["half_life_hours"] / 2

    async with LiveServer(live_app) as server, httpx.AsyncClient(base_url=server.url) as c:

        async def heatmap(**overrides: float) -> np.ndarray:
            payload = {"query": HEATMAP, "variables": {**variables, **overrides}}
            body = (await c.post("/graphql", json=payload)).json()
            h = body["data"]["heatmap"]
            assert h["columns"] == 12
            return np.frombuffer(base64.b64decode(h["long"]), "<f4").reshape(h["rows"], 12)

        async def latest() -> dict[str, Any]:
            body = (await c.post("/graphql", json={"query": LATEST})).json()
            return body["data"]["liquidationLevels"]

        first = await heatmap()
        assert hub.listening  # started with the server
        np.testing.assert_array_equal(first, stored_matrix(snaps, first_row, rows))
        before = await latest()
        assert before["at"] == snaps[-1].at.isoformat()
        misses = graphql.columns.misses
        await heatmap(lo=(first_row + 1) * bucket)  # another window: new response, cached columns
        assert graphql.columns.misses == misses and graphql.columns.hits >= 12
        assert (await latest()) == before  # answered again (from the response cache)

        ws = await connect(server)
        rt = live.runtime(model={"half_life_hours": half_life})
        try:
            sub = Subscriber(ws)
            await sub.start(
                "binance", HEATMAP_UPDATED, {"symbol": SYMBOL, "exchanges": ["binanceusdm"]}
            )
            await sub.start("total", HEATMAP_UPDATED, {"symbol": SYMBOL, "exchanges": None})
            await subscribed(live_app, 2)
            generation = hub.generation
            async with hub.subscribe() as stalled:  # a subscriber that reads nothing meanwhile
                for dataset in ("candles", "open_interest", "funding"):
                    result = await ingest_dataset(rt, "binanceusdm", SYMBOL, dataset)
                    assert result.status == "succeeded", result
                report = await materialize_symbol(rt, SYMBOL)
                assert report.series[0].full_recompute
                assert all(s.snapshots_written > QUEUE_SIZE for s in report.series)
                announced = 2 * len(report.series)  # per series written: 5m and 1h
                # every write of the run has reached the hub, and nothing more comes
                await notifications_delivered(live_app, live.engine)
                assert hub.generation == generation + announced
                queued = [stalled.get_nowait() for _ in range(stalled.qsize())]
                events = [e for e in queued if isinstance(e, SnapshotEvent)]
                assert len(queued) == len(events) + 1  # and the barrier's sentinel
            # each names the whole range it rewrote: every snapshot now stored, oldest to newest
            assert len(events) == announced
            for scope in ("binanceusdm", "all"):
                for resolution in ("5m", "1h"):
                    stored_ts = [s.ts for s in snapshots(live.stored, scope, resolution)]
                    (event,) = [e for e in events if (e.scope, e.resolution) == (scope, resolution)]
                    assert (event.first, event.ts, event.count) == (
                        stored_ts[0],
                        stored_ts[-1],
                        len(stored_ts),
                    )
            for op_id, scope in (("binance", "binanceusdm"), ("total", "all")):
                new = [s for s in snapshots(live.stored, scope) if s.ts > old[scope][-1].ts]
                assert len(new) >= 11  # the bars of the hour held back (the last is partial)
                for snap in new:
                    message = await sub.next(op_id)
                    column = message["payload"]["data"]["heatmapUpdated"]
                    assert column["at"] == snap.at.isoformat()
                    long_usd = np.frombuffer(base64.b64decode(column["long"]), "<f4")
                    np.testing.assert_array_equal(long_usd, snap.long_usd)
            await sub.nothing_more()
        finally:
            await ws.close()
            await rt.close()
            await rt.engine.dispose()

        recomputed = [s for s in snapshots(live.stored, "binanceusdm") if s.ts >= start][:12]
        assert [s.ts for s in recomputed] == [s.ts for s in snaps]
        again = await heatmap()
        np.testing.assert_array_equal(again, stored_matrix(recomputed, first_row, rows))
        assert not np.array_equal(again, first)
        after = await latest()
        newest = snapshots(live.stored, "binanceusdm")[-1]
        assert after["at"] == newest.at.isoformat() != before["at"]
        assert after["totalLongUsd"] == pytest.approx(float(newest.long_usd.sum(dtype=np.float64)))
        assert after["model"]["assumptions"]["half_life_hours"] == half_life
        assert before["model"]["assumptions"]["half_life_hours"] == params["half_life_hours"]


def executions(metrics_text: str, operation: str) -> float:
    """Operations executed rather than answered from the response cache, per /metrics."""
    answered = f'liqmap_graphql_requests_total{{operation="{operation}",outcome="ok"}} '
    cached = f'liqmap_graphql_response_cache_hits_total{{operation="{operation}"}} '
    values = {answered: 0.0, cached: 0.0}
    for line in metrics_text.splitlines():
        for prefix in values:
            if line.startswith(prefix):
                values[prefix] = float(line[len(prefix) :])
    return values[answered] - values[cached]


async def test_new_bars_drop_only_the_cached_answers_they_change(
    live: Live, live_app: Starlette
) -> None:
    """A write of new bars drops the cached answers about the newest instant, keeps those about
    closed history, and 16 clients asking at once for the newest map cost one execution."""
    from api.response_cache import ResponseCache

    old = list(snapshots(live.stored, "binanceusdm"))
    history = old[-48:-36]  # 12 bars ending three hours before the newest
    bucket = history[0].bucket_size
    first_row = min(s.first for s in history)
    rows = max(s.first + s.long_usd.size for s in history) - first_row
    past = {
        "start": history[0].ts.isoformat(),
        "end": history[-1].at.isoformat(),
        "lo": first_row * bucket,
        "hi": (first_row + rows) * bucket,
    }
    hub, graphql = live_app.state.hub, live_app.state.graphql
    past_key = ResponseCache.key(HEATMAP, past, None)
    latest_key = ResponseCache.key(LATEST, None, None)

    async with LiveServer(live_app) as server, httpx.AsyncClient(base_url=server.url) as c:

        async def ask(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
            body = (await c.post("/graphql", json={"query": query, "variables": variables})).json()
            assert "errors" not in body, body
            return body["data"]  # type: ignore[no-any-return]

        before_past = await ask(HEATMAP, past)
        before_latest = await ask(LATEST)
        assert before_latest["liquidationLevels"]["at"] == old[-1].at.isoformat()
        assert past_key in graphql.responses and latest_key in graphql.responses

        generation = hub.generation
        report = await ingest_the_rest_and_materialize(live)
        assert report.snapshots_written > 0
        await notifications_delivered(live_app, live.engine)  # every write of the run
        assert hub.generation > generation
        assert past_key in graphql.responses  # closed history: unchanged, still cached
        assert latest_key not in graphql.responses  # the newest instant moved

        executed = executions((await c.get("/metrics")).text, "liquidationLevels")
        answers = await asyncio.gather(*(ask(LATEST) for _ in range(16)))
        assert executions((await c.get("/metrics")).text, "liquidationLevels") == executed + 1
        newest = snapshots(live.stored, "binanceusdm")[-1]
        assert newest.ts > old[-1].ts
        assert all(a == answers[0] for a in answers)
        assert answers[0]["liquidationLevels"]["at"] == newest.at.isoformat()
        assert (await ask(HEATMAP, past)) == before_past


async def test_answers_only_a_notify_can_change_outlive_the_open_range_ttl(
    live: Live, live_app: Starlette
) -> None:
    """While the listener runs, the newest map is kept until the NOTIFY that changes it; an
    answer with freshness fields, or over a range that ends "now", follows the clock and
    expires after the short open-range TTL."""
    from api.response_cache import ResponseCache

    hub, graphql = live_app.state.hub, live_app.state.graphql
    with_coverage = LATEST.replace("at totalLongUsd", "at coverage { staleness }")
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    until_now = (
        '{ heatmap(symbol: "BTC/USDT:USDT", exchanges: ["binanceusdm"], start: "'
        + ten_days_ago
        + '", interval: ONE_HOUR, priceMin: 60000, priceMax: 61000) '
        "{ columns } }"
    )
    newest = snapshots(live.stored, "binanceusdm")[-1]
    # an open range with an explicit end: only new snapshots change it, unless it has candles
    # (ingestion moves those without a NOTIFY)
    open_range = (
        '{ heatmap(symbol: "BTC/USDT:USDT", exchanges: ["binanceusdm"], start: "'
        + (newest.ts - timedelta(hours=1)).isoformat()
        + '", end: "'
        + (newest.at + timedelta(hours=1)).isoformat()
        + '", interval: FIVE_MINUTES, '
        "priceMin: 60000, priceMax: 61000) { columns } }"
    )
    with_candles = open_range.replace("{ columns }", "{ columns candles { close } }")
    queries = (LATEST, with_coverage, until_now, open_range, with_candles)
    ttl = graphql.response_cache_seconds
    async with LiveServer(live_app) as server, httpx.AsyncClient(base_url=server.url) as c:
        graphql.response_cache_seconds = 0.05
        try:
            for query in queries:
                body = (await c.post("/graphql", json={"query": query})).json()
                assert "errors" not in body, body
            assert hub.listening
            # 0.3 s later by the cache's clock (patched only while nothing else runs: no await)
            later = time.monotonic() + 0.3
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(time, "monotonic", lambda: later)
                kept = [
                    graphql.responses.get(ResponseCache.key(q, None, None), hub) is not None
                    for q in queries
                ]
        finally:
            graphql.response_cache_seconds = ttl
    assert kept == [True, False, False, True, False]


@pytest.mark.parametrize("announced", [True, False], ids=["announced", "unannounced"])
async def test_a_revoked_key_ends_its_subscriptions_and_spares_the_others(
    live: Live, announced: bool
) -> None:
    """A key revoked while its subscription runs gets no further column, while a subscription
    of a valid key goes on. ``revoke_key`` announces the revocation (NOTIFY): the subscription
    ends with UNAUTHENTICATED at once, with no write to wait for. One the API was not told of
    (written straight to the table, or sent while its listener was reconnecting) ends it at the
    next write, which is checked against the table."""
    from api import auth

    app = build_app(live.engine, live.url, require_api_keys=True)
    revoked, revoked_info = await auth.create_key(live.engine, "former partner", 100)
    kept, _ = await auth.create_key(live.engine, "partner", 100)
    variables = {"symbol": SYMBOL, "exchanges": ["binanceusdm"]}
    try:
        async with LiveServer(app) as server:
            ws_revoked = await connect(server, additional_headers={"X-API-Key": revoked})
            ws_kept = await connect(server, additional_headers={"X-API-Key": kept})
            try:
                gone, stays = Subscriber(ws_revoked), Subscriber(ws_kept)
                await gone.start("1", HEATMAP_UPDATED, variables)
                await stays.start("1", HEATMAP_UPDATED, variables)
                await subscribed(app, 2)
                if announced:
                    assert await auth.revoke_key(live.engine, revoked_info.prefix)
                else:
                    async with live.engine.begin() as conn:  # no NOTIFY
                        await conn.execute(
                            text("UPDATE api_keys SET revoked_at = now() WHERE id = :i"),
                            {"i": revoked_info.id},
                        )
                    await ingest_the_rest_and_materialize(live)

                # announced: within 5 s and with no materialization meanwhile
                message = await gone.next("1", timeout=5.0 if announced else 20.0)
                errors = (
                    message["payload"]
                    if message["type"] == "error"
                    else message["payload"].get("errors")
                )
                assert errors, message  # not a column
                assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
                assert "revoked" in errors[0]["message"]
                if announced:
                    await stays.nothing_more()
                    assert len(app.state.hub._queues) == 1  # the other one still listens
                else:
                    column = await stays.next("1")
                    assert column["type"] == "next"
                    assert column["payload"]["data"]["heatmapUpdated"]
            finally:
                await ws_revoked.close()
                await ws_kept.close()
    finally:
        await app.state.hub.close()


async def test_subscription_errors_have_codes(live_server: LiveServer, stored: Stored) -> None:
    ws = await connect(live_server)
    try:
        sub = Subscriber(ws)
        await sub.start("1", HEATMAP_UPDATED, {"symbol": "BTC/USDT", "exchanges": None})
        message = await sub.next("1")
        assert message["type"] in {"error", "next"}
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"
        assert "BTC/USDT:USDT" in errors[0]["message"]
        # a sum of exchanges has no stored series of its own to follow
        await sub.start(
            "2", HEATMAP_UPDATED, {"symbol": SYMBOL, "exchanges": ["binanceusdm", "bybit"]}
        )
        message = await sub.next("2")
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
        await sub.start("3", CLUSTER_ALERT, {"symbol": SYMBOL, "pct": -1.0, "min": 0.0})
        message = await sub.next("3")
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
        # no band at all is a mistake, not "every band"
        await sub.start("4", BANDS_UPDATED, {"leverage": []})
        message = await sub.next("4")
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "at least one band" in errors[0]["message"]
    finally:
        await ws.close()


async def test_websocket_needs_a_valid_key_when_keys_are_required(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> None:
    from api import auth

    app = build_app(api_engine, api_database_url, require_api_keys=True)
    key, _ = await auth.create_key(api_engine, "ws client", 100)
    async with LiveServer(app) as server:
        url = server.url.replace("http", "ws") + "/graphql"
        # no key: accepted in graphql-transport-ws, then closed with its 4401 Unauthorized
        refused = await websockets.connect(url, subprotocols=["graphql-transport-ws"])
        assert refused.subprotocol == "graphql-transport-ws"
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await asyncio.wait_for(refused.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert closed.value.rcvd.reason == "an API key is required"
        ws = await connect(server, additional_headers={"X-API-Key": key})
        await ws.close()
        # browsers cannot set headers on websockets: the key may come as a query parameter
        ws = await websockets.connect(f"{url}?api_key={key}", subprotocols=["graphql-transport-ws"])
        await ws.close()
