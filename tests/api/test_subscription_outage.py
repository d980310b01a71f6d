"""Subscriptions through a lost database connection: the listener comes back by itself and the
subscribers get every column written meanwhile, once, in order.

A real uvicorn and real graphql-transport-ws clients, as in ``test_subscriptions.py`` (whose
live-database fixtures these tests share). Two faults:

* the listener's path to the server is cut (a TCP proxy between the API's listener and the
  server refuses and resets connections) while the materializer writes the held-back hour:
  every NOTIFY of that run is lost to the API; when the path is back the listener reconnects on
  its own and the subscribers read what they missed;
* the server ends the listener's session (``pg_terminate_backend``): the listener reconnects
  without any new subscription, and the next writes arrive.

Every wait is on a condition (the hub's state, a message), none is a fixed sleep.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

import numpy as np
import psycopg
from starlette.applications import Starlette

from api.subscriptions import Hub
from tests.api.conftest import LiveServer, build_app
from tests.api.pipeline import SYMBOL, Snap
from tests.api.test_subscriptions import (  # noqa: F401  (fixtures)
    HEATMAP_UPDATED,
    Live,
    Subscriber,
    connect,
    ingest_the_rest_and_materialize,
    live,
    live_template,
    snapshots,
)
from tests.reliability.harness import TcpProxy


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
    assert predicate(), what


def waiting(hub: Hub, count: int) -> bool:
    """``count`` subscribers have read where they start and wait for events."""
    queues = list(hub._queues)
    return len(queues) >= count and all(len(q._getters) > 0 for q in queues)  # type: ignore[attr-defined]


async def expect_columns(sub: Subscriber, op_id: str, new: list[Snap]) -> None:
    for snap in new:
        message = await sub.next(op_id)
        assert message["type"] == "next", message
        column = message["payload"]["data"]["heatmapUpdated"]
        assert column["at"] == snap.at.isoformat()
        assert column["price"] == snap.price
        long_usd = np.frombuffer(base64.b64decode(column["long"]), "<f4")
        np.testing.assert_array_equal(long_usd, snap.long_usd)


async def subscribe_both(sub: Subscriber) -> None:
    await sub.start("total", HEATMAP_UPDATED, {"symbol": SYMBOL, "exchanges": None})
    await sub.start("binance", HEATMAP_UPDATED, {"symbol": SYMBOL, "exchanges": ["binanceusdm"]})


async def test_subscribers_get_the_columns_written_while_the_listener_was_cut_off(
    live: Live,  # noqa: F811
) -> None:
    proxy = await TcpProxy.for_database(live.url).start()  # TCP, or the embedded socket
    app: Starlette = build_app(live.engine, proxy.url(live.url))
    hub: Hub = app.state.hub
    newest = {scope: snapshots(live.stored, scope)[-1].ts for scope in ("binanceusdm", "all")}
    try:
        async with LiveServer(app) as server:
            ws = await connect(server)
            try:
                sub = Subscriber(ws)
                await subscribe_both(sub)
                await until(lambda: waiting(hub, 2), 20, "two subscribers waiting")
                assert hub.listening and proxy.connections == 1

                await proxy.cut()  # the listener's connection is reset; reconnects are refused
                await until(lambda: not hub.listening, 10, "the listener to notice the loss")
                report = await ingest_the_rest_and_materialize(live)  # announced to nobody here
                assert report.snapshots_written > 0 and not hub.listening
                assert not sub.inbox.get("binance") and not sub.inbox.get("total")

                await proxy.restore()
                await until(lambda: hub.reconnects == 1 and hub.listening, 20, "reconnected")
                for op_id, scope in (("binance", "binanceusdm"), ("total", "all")):
                    new = [s for s in snapshots(live.stored, scope) if s.ts > newest[scope]]
                    assert len(new) >= 11  # the hour held back
                    await expect_columns(sub, op_id, new)
                await sub.nothing_more(1.0)  # each column once
                assert proxy.connections == 2  # one reconnection, no storm
            finally:
                await ws.close()
    finally:
        await app.state.hub.close()
        await proxy.close()


async def test_the_listener_reconnects_by_itself_after_the_server_ends_its_session(
    live: Live,  # noqa: F811
) -> None:
    app: Starlette = build_app(live.engine, live.url)
    hub: Hub = app.state.hub
    newest = {scope: snapshots(live.stored, scope)[-1].ts for scope in ("binanceusdm", "all")}
    try:
        async with LiveServer(app) as server:
            ws = await connect(server)
            try:
                sub = Subscriber(ws)
                await subscribe_both(sub)
                await until(lambda: waiting(hub, 2), 20, "two subscribers waiting")
                pid = hub._conn.get_server_pid()
                with psycopg.connect(live.url, autocommit=True) as admin:
                    ended = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
                assert ended == (True,)
                await until(lambda: hub.reconnects == 1 and hub.listening, 20, "reconnected")
                assert hub._conn.get_server_pid() != pid
                # nothing was written meanwhile: the catch-up finds nothing, and sends nothing
                await ingest_the_rest_and_materialize(live)
                for op_id, scope in (("binance", "binanceusdm"), ("total", "all")):
                    new = [s for s in snapshots(live.stored, scope) if s.ts > newest[scope]]
                    assert len(new) >= 11
                    await expect_columns(sub, op_id, new)
                await sub.nothing_more(1.0)
                assert len(hub._queues) == 2  # the same subscriptions, no new client needed
            finally:
                await ws.close()
    finally:
        await app.state.hub.close()
