"""A websocket runs at most ``max_subscriptions_per_connection`` subscriptions at once: one more
is refused with ``RATE_LIMITED`` naming the limit, and a completed one frees its slot."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.conftest import LiveServer, build_app
from tests.api.pipeline import Stored

SUBSCRIBE = (
    'subscription { heatmapUpdated(symbol: "BTC/USDT:USDT", exchanges: ["binanceusdm"]) { at } }'
)


async def _until(ws: Any, op: str) -> dict[str, Any]:
    """The next message about operation ``op`` (none about another may come meanwhile)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get("id") == op:
            return message  # type: ignore[no-any-return]


async def _queues(hub: Any, condition: Any) -> None:
    """Wait (at most 10 s) until ``condition(number of hub queues)`` holds."""
    deadline = asyncio.get_running_loop().time() + 10
    while not condition(len(hub._queues)):
        assert asyncio.get_running_loop().time() < deadline, len(hub._queues)
        await asyncio.sleep(0.01)


async def test_one_subscription_over_the_limit_is_rate_limited_with_a_code(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> None:
    app = build_app(api_engine, api_database_url, api_max_subscriptions_per_connection=3)
    try:
        async with LiveServer(app) as server:
            url = server.url.replace("http", "ws") + "/graphql"
            async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
                await ws.send(json.dumps({"type": "connection_init"}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"

                async def subscribe(op: str) -> None:
                    payload = {"query": SUBSCRIBE}
                    await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": payload}))

                hub = app.state.hub
                for op in ("1", "2", "3"):
                    await subscribe(op)
                await _queues(hub, lambda n: n == 3)  # all three run (each holds a hub queue)
                await subscribe("4")
                refused = await _until(ws, "4")
                errors = (
                    refused["payload"]
                    if refused["type"] == "error"
                    else refused["payload"]["errors"]
                )
                assert errors[0]["extensions"] == {
                    "code": "RATE_LIMITED",
                    "max_subscriptions_per_connection": 3,
                }, refused
                assert "at most 3 subscriptions" in errors[0]["message"]
                assert len(hub._queues) == 3
                # completing one frees its slot: the next subscription runs
                await ws.send(json.dumps({"id": "2", "type": "complete"}))
                await _queues(hub, lambda n: n == 2)
                await subscribe("5")
                await _queues(hub, lambda n: n == 3)
            await _queues(hub, lambda n: n == 0)  # the closed connection's subscriptions end
            # a new connection has slots of its own
            async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
                await ws.send(json.dumps({"type": "connection_init"}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                await ws.send(
                    json.dumps({"id": "a", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
                )
                await _queues(hub, lambda n: n == 1)
    finally:
        await app.state.hub.close()
