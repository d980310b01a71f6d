"""Standard GraphQL clients, unmodified, against a real ``liqmap serve`` process.

* Python ``gql`` over HTTP (httpx) and over websockets, with both subprotocols Strawberry speaks
  (graphql-transport-ws and the legacy graphql-ws);
* npm ``graphql-ws`` (``node/subscribe.mjs``) over graphql-transport-ws.

The subscriptions receive real events: the server runs over a copy of the subscription tests'
database (the replayed window with its last hour held back); the test ingests and materializes
the held-back bars one at a time with the real job functions, each write announced by the
materializer's NOTIFY, until every client has received two columns. Clients connect on their own
time, so no fixed sleep is needed: a client that was not subscribed yet gets the next bar. Each
column received is compared with the snapshot the materializer stored (plain SQL).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api.interop.conftest import serve
from tests.api.pipeline import BAR, SYMBOL, Stored
from tests.api.test_subscriptions import Live, live, live_template, snapshots  # noqa: F401
from tests.reliability.harness import ApiProcess, running

LATEST = """query Latest($symbol: String!, $exchanges: [String!]) {
  liquidationMap(symbol: $symbol, exchanges: $exchanges) {
    at price bucketSize totalLongUsd levels { price longUsd shortUsd }
  }
}"""

COLUMNS = """subscription Columns($symbol: String!, $exchanges: [String!]) {
  heatmapUpdated(symbol: $symbol, exchanges: $exchanges) {
    at price priceMin priceStep rows long short
  }
}"""
VARIABLES = {"symbol": SYMBOL, "exchanges": ["binanceusdm"]}
WANTED = 2  # columns each client must receive


async def test_gql_over_http_reads_the_stored_map_and_reports_error_codes(
    api_server: ApiProcess, stored: Stored
) -> None:
    # gql is imported by the tests that use it: collecting the unit tier need not load it
    from gql import Client, GraphQLRequest
    from gql.transport.exceptions import TransportQueryError
    from gql.transport.httpx import HTTPXAsyncTransport

    transport = HTTPXAsyncTransport(url=f"{api_server.url}/graphql")
    async with Client(transport=transport, fetch_schema_from_transport=True) as session:
        data = await session.execute(GraphQLRequest(LATEST, variable_values=VARIABLES))
        snap = stored.latest("binanceusdm")
        found = data["liquidationMap"]
        assert found["at"] == snap.at.isoformat()
        assert found["price"] == snap.price and found["bucketSize"] == snap.bucket_size
        assert found["totalLongUsd"] == pytest.approx(float(snap.long_usd.sum()), rel=1e-6)
        nonzero = [lvl for lvl in found["levels"] if lvl["longUsd"] or lvl["shortUsd"]]
        assert len(nonzero) == int(np.count_nonzero(snap.long_usd + snap.short_usd))
        # gql validated the document against the introspected schema; errors keep their code
        with pytest.raises(TransportQueryError) as refused:
            await session.execute(
                GraphQLRequest(LATEST, variable_values={**VARIABLES, "exchanges": ["binance"]})
            )
        assert refused.value.errors is not None
        assert refused.value.errors[0]["extensions"]["code"] == "NOT_FOUND"


@pytest.fixture
def served_live(live: Live, tmp_path: Path) -> Any:  # noqa: F811
    server = serve(live.url, tmp_path / "serve.log")
    with running(server):
        yield server


async def gql_subscriber(url: str, subprotocol: str, out: list[dict[str, Any]]) -> None:
    from gql import Client, GraphQLRequest
    from gql.transport.websockets import WebsocketsTransport

    transport = WebsocketsTransport(url=url, subprotocols=[subprotocol])
    async with Client(transport=transport) as session:
        request = GraphQLRequest(COLUMNS, variable_values=VARIABLES)
        async for result in session.subscribe(request):
            out.append(result["heatmapUpdated"])
            if len(out) >= WANTED:
                return


async def node_subscriber(folder: Path, url: str, out: list[dict[str, Any]], log: list[str]) -> int:
    node = shutil.which("node")
    assert node is not None
    process = await asyncio.create_subprocess_exec(
        node,
        str(folder / "subscribe.mjs"),
        url,
        COLUMNS,
        json.dumps(VARIABLES),
        str(WANTED),
        cwd=folder,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        async for raw in process.stdout:
            line = raw.decode().strip()
            log.append(line)
            if line.startswith("{"):
                message = json.loads(line)
                if message["event"] == "next":
                    assert "errors" not in message["result"], message
                    out.append(message["result"]["data"]["heatmapUpdated"])
        return await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def materialize_up_to(state: Live, until: Any) -> None:
    """The worker's steps for the bars before ``until``: ingest, then materialize."""
    from jobs.ingest import ingest_dataset
    from jobs.materialize import materialize_symbol

    rt = state.runtime()
    try:
        for dataset in ("candles", "open_interest", "funding"):
            until_ms = int(until.timestamp() * 1000)
            result = await ingest_dataset(rt, "binanceusdm", SYMBOL, dataset, until_ms=until_ms)
            assert result.status == "succeeded", result
        await materialize_symbol(rt, SYMBOL)
    finally:
        await rt.close()
        await rt.engine.dispose()


async def test_subscriptions_reach_gql_and_graphql_ws_as_text_frames(
    live: Live,  # noqa: F811
    served_live: ApiProcess,
    node_clients: Path,
) -> None:
    """Strawberry's binary frames made gql abort ("Binary data received") and graphql-ws close
    with 4004; every frame is text now, and each client receives the new columns."""
    from gql.transport.websockets import WebsocketsTransport

    ws_url = served_live.url.replace("http", "ws") + "/graphql"
    before = snapshots(live.stored, "binanceusdm")
    received: dict[str, list[dict[str, Any]]] = {
        "gql graphql-transport-ws": [],
        "gql graphql-ws (legacy)": [],
        "npm graphql-ws": [],
    }
    node_log: list[str] = []
    tasks = {
        "gql graphql-transport-ws": asyncio.create_task(
            gql_subscriber(
                ws_url,
                WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL,
                received["gql graphql-transport-ws"],
            )
        ),
        "gql graphql-ws (legacy)": asyncio.create_task(
            gql_subscriber(
                ws_url, WebsocketsTransport.APOLLO_SUBPROTOCOL, received["gql graphql-ws (legacy)"]
            )
        ),
        "npm graphql-ws": asyncio.create_task(
            node_subscriber(node_clients, ws_url, received["npm graphql-ws"], node_log)
        ),
    }
    try:
        until = before[-1].at + BAR  # one more bar closed after the newest stored
        for _ in range(11):  # the held-back hour
            await materialize_up_to(live, until)
            newest = snapshots(live.stored, "binanceusdm")[-1]
            # each client that is subscribed gets this bar's column: wait for it (or move on)
            for _ in range(100):
                if all(t.done() for t in tasks.values()) or all(
                    any(c["at"] == newest.at.isoformat() for c in got) or tasks[name].done()
                    for name, got in received.items()
                ):
                    break
                await asyncio.sleep(0.05)
            if all(t.done() for t in tasks.values()):
                break
            until += BAR
        async with asyncio.timeout(30):
            results = await asyncio.gather(*tasks.values())
    finally:
        for task in tasks.values():
            task.cancel()
    assert results[2] == 0, node_log  # node exited cleanly after its columns
    assert not any('"closed"' in line and "4004" in line for line in node_log), node_log

    stored = {s.at.isoformat(): s for s in snapshots(live.stored, "binanceusdm")}
    for name, columns in received.items():
        assert len(columns) == WANTED, (name, columns)
        ats = [c["at"] for c in columns]
        assert ats[0] > before[-1].at.isoformat(), (name, ats)  # only new bars
        assert [stored[a].ts for a in ats] == [
            stored[ats[0]].ts + i * timedelta(seconds=BAR.seconds) for i in range(WANTED)
        ], (name, ats)  # consecutive bars, each once
        for column in columns:
            snap = stored[column["at"]]
            assert column["price"] == snap.price, name
            assert column["priceMin"] == snap.bucket_origin
            assert column["priceStep"] == snap.bucket_size
            assert column["rows"] == snap.long_usd.size
            long_usd = np.frombuffer(base64.b64decode(column["long"]), "<f4")
            short_usd = np.frombuffer(base64.b64decode(column["short"]), "<f4")
            np.testing.assert_array_equal(long_usd, snap.long_usd)
            np.testing.assert_array_equal(short_usd, snap.short_usd)
