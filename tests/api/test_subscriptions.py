"""Subscriptions over graphql-transport-ws on a real uvicorn, fed by the materializer's NOTIFY.

New snapshots are written and announced with the materializer's own storage functions
(models.heatmap_store.write_snapshots + notify_snapshots, committed in one transaction).
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from models import heatmap_store as hs
from tests.api.conftest import LiveServer
from tests.api.seed import BUCKET, MODEL_VERSION, Seeded

SYMBOL = "ETH/USDT:USDT"  # a series of its own, so other tests never see these snapshots


class Subscriber:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def start(self, query: str, variables: dict[str, Any], op_id: str = "1") -> None:
        payload = {"query": query, "variables": variables}
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] in {"next", "error", "complete"}:
                return message


async def connect(server: LiveServer) -> Any:
    ws = await websockets.connect(
        server.url.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"]
    )
    await ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    return ws


async def publish(engine: AsyncEngine, series_id: int, rows: list[hs.SnapshotRow]) -> None:
    async with engine.begin() as conn:
        await hs.write_snapshots(conn, series_id, rows)
        await hs.notify_snapshots(conn, series_id, SYMBOL, "binanceusdm", rows)


def snapshot_row(seeded: Seeded, index: int, shift: timedelta, scale: float) -> hs.SnapshotRow:
    base = [s for s in seeded.snapshots["binanceusdm"] if s.resolution == "5m"][index]
    return hs.SnapshotRow(
        base.ts + shift, "5m", base.price, base.bucket_origin, BUCKET,
        (base.long_usd * scale).astype(np.float32), (base.short_usd * scale).astype(np.float32),
        MODEL_VERSION,
    )  # fmt: skip


@pytest.fixture
async def eth_series(api_engine: AsyncEngine, seeded: Seeded) -> int:
    async with api_engine.begin() as conn:
        await conn.execute(text("DELETE FROM heatmap_series WHERE symbol = :s"), {"s": SYMBOL})
        return await hs.ensure_series(conn, SYMBOL, "binanceusdm", BUCKET)


HEATMAP_UPDATED = """subscription ($symbol: String!, $exchanges: [String!]) {
  heatmapUpdated(symbol: $symbol, exchanges: $exchanges) {
    symbol exchanges at price priceMin priceStep rows encoding long short } }"""


async def test_heatmap_updated_delivers_each_new_column(
    live_server: LiveServer, api_engine: AsyncEngine, seeded: Seeded, eth_series: int
) -> None:
    await publish(api_engine, eth_series, [snapshot_row(seeded, 0, timedelta(0), 0.01)])
    ws = await connect(live_server)
    try:
        sub = Subscriber(ws)
        await sub.start(HEATMAP_UPDATED, {"symbol": SYMBOL, "exchanges": ["binanceusdm"]})
        await asyncio.sleep(0.3)  # the subscription registers with the listener
        rows = [snapshot_row(seeded, i, timedelta(0), 0.01) for i in (1, 2)]
        await publish(api_engine, eth_series, rows)
        for row in rows:
            message = await sub.next()
            assert message["type"] == "next", message
            column = message["payload"]["data"]["heatmapUpdated"]
            assert column["at"] == (row.ts + timedelta(minutes=5)).isoformat()
            assert column["price"] == row.price and column["priceMin"] == row.bucket_origin
            assert column["rows"] == row.long_usd.size and column["exchanges"] == ["binanceusdm"]
            long_usd = np.frombuffer(base64.b64decode(column["long"]), "<f4")
            np.testing.assert_array_equal(long_usd, row.long_usd)
            short_usd = np.frombuffer(base64.b64decode(column["short"]), "<f4")
            np.testing.assert_array_equal(short_usd, row.short_usd)
        # an older bar re-announced (a recompute) is not delivered again
        await publish(api_engine, eth_series, [rows[0]])
        with pytest.raises(TimeoutError):
            await sub.next(timeout=0.5)
    finally:
        await ws.close()


async def test_subscription_errors_have_codes(
    live_server: LiveServer, seeded: Seeded, eth_series: int
) -> None:
    ws = await connect(live_server)
    try:
        sub = Subscriber(ws)
        await sub.start(HEATMAP_UPDATED, {"symbol": "ETH/USDT", "exchanges": None})
        message = await sub.next()
        assert message["type"] in {"error", "next"}
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"
        assert "ETH/USDT:USDT" in errors[0]["message"]
    finally:
        await ws.close()


CLUSTER_ALERT = """subscription ($symbol: String!, $pct: Float!, $min: Float!) {
  clusterAlert(symbol: $symbol, withinPct: $pct, minUsd: $min, exchanges: ["binanceusdm"]) {
    at price cluster { side priceLow priceHigh notionalUsd distancePct } } }"""


async def test_cluster_alert_fires_when_price_nears_a_wall(
    live_server: LiveServer, api_engine: AsyncEngine, seeded: Seeded, eth_series: int
) -> None:
    # a hand-made book: one long wall 3 % below the price, one short wall 8 % above
    price = 70_000.0
    first = int(price * 0.85 // BUCKET)
    n = int(price * 0.3 // BUCKET)
    long_usd = np.zeros(n, np.float32)
    short_usd = np.zeros(n, np.float32)
    wall = int(price * 0.97 // BUCKET) - first
    long_usd[wall : wall + 3] = [6e6, 9e6, 7e6]
    long_usd[wall - 40] = 1e5  # a small level far away; the wall threshold is the mean 5.5 M
    high = int(price * 1.08 // BUCKET) - first
    short_usd[high : high + 2] = [3e6, 3e6]
    t0 = seeded.bars.ts[0]

    def row(i: int, p: float) -> hs.SnapshotRow:
        return hs.SnapshotRow(t0 + timedelta(minutes=5 * i), "5m", p, first * BUCKET, BUCKET,
                              long_usd, short_usd, MODEL_VERSION)  # fmt: skip

    await publish(api_engine, eth_series, [row(0, price)])
    ws = await connect(live_server)
    try:
        sub = Subscriber(ws)
        await sub.start(CLUSTER_ALERT, {"symbol": SYMBOL, "pct": 2.0, "min": 10e6})
        await asyncio.sleep(0.3)
        # 1: price far from both walls → nothing; 2: price falls to 1.5 % above the long wall
        wall_top = (first + wall + 3) * BUCKET
        await publish(api_engine, eth_series, [row(1, price), row(2, wall_top * 1.015)])
        message = await sub.next()
        alert = message["payload"]["data"]["clusterAlert"]
        assert alert["at"] == (t0 + timedelta(minutes=15)).isoformat()
        cluster = alert["cluster"]
        assert cluster["side"] == "LONG"
        assert cluster["priceLow"] == (first + wall) * BUCKET and cluster["priceHigh"] == wall_top
        assert cluster["notionalUsd"] == pytest.approx(22e6)
        assert cluster["distancePct"] == pytest.approx(100 * (1.015 - 1) / 1.015)
        # staying near does not repeat the alert; the 6 M short wall is below minUsd
        await publish(api_engine, eth_series, [row(3, wall_top * 1.01)])
        with pytest.raises(TimeoutError):
            await sub.next(timeout=0.5)
    finally:
        await ws.close()


HEATMAP_ETH = """query ($start: DateTime!, $end: DateTime!, $lo: Float!) {
  heatmap(symbol: "ETH/USDT:USDT", exchanges: ["binanceusdm"], start: $start, end: $end,
          interval: FIVE_MINUTES, priceMin: $lo, priceMax: 80000) { columns rows long } }"""
LATEST_ETH = """{ liquidationLevels(symbol: "ETH/USDT:USDT", exchanges: ["binanceusdm"]) {
  at totalLongUsd } }"""


async def test_caches_follow_rewrites_announced_by_notify(
    app: Any, api_engine: AsyncEngine, seeded: Seeded, eth_series: int
) -> None:
    import httpx

    rows = [snapshot_row(seeded, i, timedelta(0), 0.01) for i in range(12)]
    await publish(api_engine, eth_series, rows)
    start, end = rows[0].ts, rows[-1].ts + timedelta(minutes=5)
    variables = {"start": start.isoformat(), "end": end.isoformat(), "lo": 50_000.0}
    hub, graphql = app.state.hub, app.state.graphql
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:

        async def heatmap(lo: float) -> np.ndarray:
            payload = {"query": HEATMAP_ETH, "variables": {**variables, "lo": lo}}
            body = (await c.post("/graphql", json=payload)).json()
            h = body["data"]["heatmap"]
            return np.frombuffer(base64.b64decode(h["long"]), "<f4").reshape(h["rows"], 12)

        async def latest() -> dict[str, Any]:
            body = (await c.post("/graphql", json={"query": LATEST_ETH})).json()
            return body["data"]["liquidationLevels"]

        first = await heatmap(50_000.0)
        assert hub.listening  # started on first use
        assert first.sum() == pytest.approx(sum(float(r.long_usd.sum()) for r in rows), rel=1e-5)
        before = await latest()
        misses = graphql.columns.misses
        await heatmap(50_050.0)  # another price window: new response, cached columns
        assert graphql.columns.misses == misses and graphql.columns.hits >= 12

        generation = hub.generation
        rewritten = snapshot_row(seeded, 5, timedelta(0), 0.02)  # column 5, doubled
        newer = snapshot_row(seeded, 12, timedelta(0), 0.01)
        await publish(api_engine, eth_series, [rewritten, newer])
        for _ in range(100):
            if hub.generation >= generation + 2:
                break
            await asyncio.sleep(0.02)
        again = await heatmap(50_000.0)
        np.testing.assert_allclose(again[:, 5], 2 * first[:, 5], rtol=1e-6)
        np.testing.assert_array_equal(again[:, 4], first[:, 4])
        after = await latest()
        assert after["at"] == (newer.ts + timedelta(minutes=5)).isoformat() != before["at"]


async def test_websocket_needs_a_valid_key_when_keys_are_required(
    api_engine: AsyncEngine, api_database_url: str, seeded: Seeded
) -> None:
    from api import auth
    from tests.api.conftest import build_app

    app = build_app(api_engine, api_database_url, require_api_keys=True)
    key, _ = await auth.create_key(api_engine, "ws client", 100)
    async with LiveServer(app) as server:
        url = server.url.replace("http", "ws") + "/graphql"
        with pytest.raises(websockets.exceptions.InvalidStatus):
            await websockets.connect(url, subprotocols=["graphql-transport-ws"])
        ws = await websockets.connect(
            url, subprotocols=["graphql-transport-ws"], additional_headers={"X-API-Key": key}
        )
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.close()
        # browsers cannot set headers on websockets: the key may come as a query parameter
        ws = await websockets.connect(f"{url}?api_key={key}", subprotocols=["graphql-transport-ws"])
        await ws.close()
