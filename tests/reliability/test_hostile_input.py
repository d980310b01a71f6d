"""Hostile input against a real ``liqmap serve`` over loopback, on data the real jobs produced.

* property-based fuzzing from the committed SDL (hypothesis-graphql, valid and invalid
  documents) and of the data queries' arguments: never a 5xx, never ``INTERNAL``;
* documents over the limits (depth, aliases, tokens, nesting, huge lists), bodies over the size
  limit (413), bodies slower than their deadline (408), request heads slower than theirs,
  clients that read nothing of their answer and websockets that never send ``connection_init``
  (closed in time) are refused quickly while the server keeps answering;
* SQL-injection strings in every string argument of every query and subscription change nothing
  in the database and come back as ``BAD_USER_INPUT``/``NOT_FOUND``;
* API keys: revoked, wrong and missing keys are refused, only sha256 hashes are stored, and no
  key ever appears in the server's logs (run at DEBUG).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import hypothesis_graphql
import psycopg
import pytest
import websockets
from graphql import GraphQLList, GraphQLNonNull, GraphQLScalarType, Undefined, build_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes

from tests.conftest import drop_database
from tests.reliability.conftest import clone_database, fingerprint
from tests.reliability.harness import LIQMAP, REPO, ApiProcess, liqmap_env

pytestmark = pytest.mark.slow

SDL = (REPO / "schema.graphql").read_text()
SCHEMA = build_schema(SDL)
CLIENT_CODES = {
    "BAD_USER_INPUT",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "NOT_FOUND",
    "RANGE_TOO_LARGE",
    "QUERY_TOO_COMPLEX",
}
# Random examples on every run (a failure prints the seed that reproduces it: pytest
# --hypothesis-seed=N), bounded in number so the three fuzz tests take about a minute
FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ANSWER_WITHIN_S = 2.0
WINDOW_START = datetime(2026, 5, 25, tzinfo=UTC)
WINDOW_END = datetime(2026, 6, 23, tzinfo=UTC)


@pytest.fixture(scope="module")
def hostile_url(server_url: str, replayed_template: str) -> Iterator[str]:
    url = clone_database(server_url, replayed_template)
    yield url
    drop_database(server_url, url)


@pytest.fixture(scope="module")
def open_api(hostile_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    env = liqmap_env(
        hostile_url,
        api_ws_init_timeout_seconds=2,
        api_request_head_timeout_seconds=2,
        api_request_body_timeout_seconds=2,
        api_response_send_timeout_seconds=2,
    )
    api = ApiProcess(env, tmp_path_factory.mktemp("open-api") / "api.log")
    try:
        api.wait_ready()
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="module")
def http(open_api: ApiProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=open_api.url, timeout=30) as client:
        yield client


def codes(body: dict[str, Any]) -> set[str]:
    return {e.get("extensions", {}).get("code") for e in body.get("errors") or []}


def check_answer(response: httpx.Response) -> dict[str, Any]:
    """The contract for any input: a JSON GraphQL answer, no 5xx, only client-error codes,
    within :data:`ANSWER_WITHIN_S` (httpx's ``elapsed``: the request sent to the answer read)."""
    elapsed = response.elapsed.total_seconds()
    assert elapsed < ANSWER_WITHIN_S, (elapsed, str(response.request.content[:500]))
    assert response.status_code < 500, (response.status_code, response.text[:500])
    body = response.json()
    assert isinstance(body, dict) and ("data" in body or "errors" in body), body
    found = codes(body)
    assert found <= CLIENT_CODES, (found, response.text[:1000])
    for leak in ("Traceback", "[SQL:", "sqlalchemy", "asyncpg", "psycopg"):
        assert leak not in response.text, response.text[:1000]
    return body


# --- property-based fuzzing --------------------------------------------------------------------
# instants anywhere in years 1..9999, in any zone (offsets move year 1 into year 0 and 9999
# into 10000), the edges themselves, inside the data's window, and text that is no instant
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
EDGES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-05:00",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "2199-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
]


def _instants() -> st.SearchStrategy[str]:
    inside = st.datetimes(
        min_value=WINDOW_START.replace(tzinfo=None), max_value=WINDOW_END.replace(tzinfo=None)
    ).map(lambda d: d.replace(tzinfo=UTC).isoformat())
    anywhere = st.builds(
        lambda d, zone: d.replace(tzinfo=zone).isoformat(), st.datetimes(), ZONES
    )  # st.datetimes() spans years 1..9999
    return st.one_of(inside, anywhere, st.sampled_from(EDGES), st.text(max_size=40))


def _datetime_nodes() -> st.SearchStrategy[Any]:
    return _instants().map(nodes.String)


CUSTOM_SCALARS = {"DateTime": _datetime_nodes()}


@FUZZ
@given(query=hypothesis_graphql.from_schema(SDL, custom_scalars=CUSTOM_SCALARS))
def test_fuzzed_valid_documents_never_fail_internally(http: httpx.Client, query: str) -> None:
    check_answer(http.post("/graphql", json={"query": query}))


@FUZZ
@given(
    query=hypothesis_graphql.from_schema(
        SDL, custom_scalars=CUSTOM_SCALARS, mode=hypothesis_graphql.Mode.NEGATIVE
    )
)
def test_fuzzed_invalid_documents_are_client_errors(http: httpx.Client, query: str) -> None:
    body = check_answer(http.post("/graphql", json={"query": query}))
    assert body.get("errors"), f"an invalid document was accepted: {query}"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


times = _instants()
HUGE = [1e9, 5e11, 5e13, 1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 0.0, -0.0]
prices = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(HUGE),
)
# multiples of the BTC grid step (50) from one step to far past any price, and anything else
buckets = st.one_of(prices, st.integers(1, 10**14).map(lambda k: 50.0 * k))
ints = st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-5, 500))


def _cursor_text(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


cursors = st.one_of(
    st.none(),
    st.text(max_size=30),
    times,
    st.integers().map(lambda n: _cursor_text(f"ts:{n}")),  # any size: overflow, year 0
    st.sampled_from(["ts:" + "9" * 5000, "ts:1e400", "ts:nan", "id:1"]).map(_cursor_text),
    st.binary(max_size=30).map(lambda b: base64.urlsafe_b64encode(b).decode()),
)
maybe = st.one_of
DATA_QUERIES = {
    "liquidationLevels": (
        """query ($at: DateTime, $lo: Float, $hi: Float, $b: Float, $min: Float!, $n: Int!) {
          liquidationLevels(symbol: "BTC/USDT:USDT", at: $at, priceMin: $lo, priceMax: $hi,
                            bucketSize: $b) {
            at price levels { price longUsd intensity } clusters(minUsd: $min, limit: $n) {
              side low high usd } maxPainLong { price } } }""",
        st.fixed_dictionaries(
            {
                "at": maybe(st.none(), times),
                "lo": prices,
                "hi": prices,
                "b": buckets,
                "min": st.one_of(st.floats(-1e12, 1e12), st.sampled_from(HUGE)),
                "n": ints,
            }
        ),
    ),
    "heatmap": (
        """query ($s: DateTime!, $e: DateTime, $i: Interval, $lo: Float, $hi: Float, $b: Float,
                  $enc: MatrixEncoding!) {
          heatmap(symbol: "BTC/USDT:USDT", start: $s, end: $e, interval: $i, priceMin: $lo,
                  priceMax: $hi, bucketSize: $b, encoding: $enc) {
            start stepSeconds columns rows priceMin priceStep maxUsd } }""",
        st.fixed_dictionaries(
            {
                "s": times,
                "e": maybe(st.none(), times),
                "i": maybe(
                    st.none(),
                    st.sampled_from(
                        ["FIVE_MINUTES", "FIFTEEN_MINUTES", "THIRTY_MINUTES", "ONE_HOUR", "ONE_DAY"]
                    ),
                ),
                "lo": prices,
                "hi": prices,
                "b": buckets,
                "enc": st.sampled_from(["FLOAT32_BASE64", "JSON"]),
            }
        ),
    ),
    "snapshots": (
        """query ($s: DateTime!, $e: DateTime, $r: SnapshotResolution!, $n: Int!, $a: String) {
          snapshots(symbol: "BTC/USDT:USDT", start: $s, end: $e, resolution: $r, first: $n,
                    after: $a) { edges { cursor node { at price } } pageInfo { hasNextPage } } }""",
        st.fixed_dictionaries(
            {
                "s": times,
                "e": maybe(st.none(), times),
                "r": st.sampled_from(["FIVE_MINUTES", "ONE_HOUR"]),
                "n": ints,
                "a": cursors,
            }
        ),
    ),
    "longShortSplit": (
        """query ($at: DateTime, $w: Float!) {
          longShortSplit(symbol: "BTC/USDT:USDT", at: $at, withinPct: $w) {
            longUsd shortUsd ratio } }""",
        st.fixed_dictionaries(
            {
                "at": maybe(st.none(), times),
                "w": st.one_of(
                    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(HUGE)
                ),
            }
        ),
    ),
}


@FUZZ
@given(data=st.data())
def test_fuzzed_arguments_of_the_data_queries(http: httpx.Client, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(DATA_QUERIES)))
    query, variables = DATA_QUERIES[name]
    drawn = data.draw(variables)
    check_answer(http.post("/graphql", json={"query": query, "variables": drawn}))


def _rss(pid: int) -> int:
    """Resident bytes of the server process and its children."""
    import psutil

    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


def test_adversarial_inputs_leave_memory_bounded(http: httpx.Client, open_api: ApiProcess) -> None:
    """Every input issue #17 found growing the server (a huge bucketSize on heatmap, snapshots
    and liquidationLevels — 2.6 GB, 23 GB and a MemoryError before; thousands of unknown field
    names — a 70 MB /metrics; distinct large answers — an unbounded response cache; instants
    near year 1 or 9999 and overflowing cursors) leave the server's RSS within +300 MB, and
    every refusal or small answer comes within 2 s."""
    before = _rss(open_api.pid)
    days = '"2026-06-16T00:00:00Z"', '"2026-06-22T00:00:00Z"'
    for bucket in (1e9, 5e11, 5e13):
        for query in (
            f'{{ heatmap(symbol: "BTC/USDT:USDT", start: {days[0]}, end: {days[1]}, '
            f"interval: FIVE_MINUTES, bucketSize: {bucket}) {{ rows columns long }} }}",
            f'{{ heatmap(symbol: "BTC/USDT:USDT", start: "2025-06-01T00:00:00Z", '
            f'end: "2026-06-22T00:00:00Z", bucketSize: {bucket}) {{ rows columns long }} }}',
            f'{{ snapshots(symbol: "BTC/USDT:USDT", start: {days[0]}, first: 100, '
            f"bucketSize: {bucket}) {{ edges {{ node {{ levels {{ price longUsd }} }} }} }} }}",
            f'{{ liquidationLevels(symbol: "BTC/USDT:USDT", bucketSize: {bucket}) '
            "{ levels { price longUsd } } }",
        ):
            body = check_answer(http.post("/graphql", json={"query": query}))
            assert not body.get("errors"), body
    for instant in EDGES[:4]:
        check_answer(
            http.post(
                "/graphql",
                json={
                    "query": 'query ($s: DateTime!) { heatmap(symbol: "BTC/USDT:USDT", '
                    "start: $s) { rows } }",
                    "variables": {"s": instant},
                },
            )
        )
    for cursor in ("ts:" + "9" * 30, "ts:-62135596800000", "ts:" + "9" * 5000):
        check_answer(
            http.post(
                "/graphql",
                json={
                    "query": 'query ($a: String) { snapshots(symbol: "BTC/USDT:USDT", '
                    'start: "2026-06-16T00:00:00Z", after: $a) { edges { cursor } } }',
                    "variables": {"a": _cursor_text(cursor)},
                },
            )
        )
    for i in range(1500):
        query = f"query Q{i} {{ unknown{i} {{ id }} also{i} x{i}: exchanges {{ id }} }}"
        check_answer(http.post("/graphql", json={"query": query}))
    metrics = httpx.get(f"{open_api.url}/metrics").content
    assert len(metrics) < 200_000, len(metrics)
    # distinct large answers (megabytes of JSON each): the response cache keeps its byte budget
    sent = 0
    for k in range(35):  # 35 distinct answers: the same six days, price windows 50 USD apart
        query = BIG_ANSWER.replace("priceMin: 55000", f"priceMin: {55000 - 50 * k}")
        response = http.post("/graphql", json={"query": query}, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200 and len(response.content) > 4_000_000
        sent += len(response.content)
    assert sent > 2 * 128 * 2**20  # twice the response cache's default byte budget
    grown = _rss(open_api.pid) - before
    assert grown < 300 * 2**20, f"server RSS grew by {grown / 2**20:.0f} MB"
    print(f"RSS before {before / 2**20:.0f} MB, grown {grown / 2**20:.0f} MB")


# --- documents and bodies over the limits ------------------------------------------------------
def _fast(http: httpx.Client, limit_s: float = 2.0, **request: Any) -> httpx.Response:
    started = time.perf_counter()
    response = http.post("/graphql", **request)
    elapsed = time.perf_counter() - started
    assert elapsed < limit_s, f"refusal took {elapsed:.2f} s"
    return response


def test_oversized_documents_are_refused_quickly(http: httpx.Client) -> None:
    deeper = "{" + "exchanges { " * 400 + "id" + " }" * 400 + "}"
    cases = {
        "aliases": "{" + " ".join(f"a{i}: exchanges {{ id }}" for i in range(500)) + "}",
        "tokens": "{ exchanges { " + "id " * 5000 + "} }",
        "nested selections": deeper,
        "nested list literal": '{ liquidationLevels(symbol: "BTC/USDT:USDT", exchanges: '
        + "[" * 900
        + '"binanceusdm"'
        + "]" * 900
        + ") { price } }",
        "directives": "{ exchanges " + "@include(if: true) " * 800 + "{ id } }",
        "fragment cycle": "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        "operations": " ".join(f"query q{i} {{ exchanges {{ id }} }}" for i in range(600)),
    }
    for name, query in cases.items():
        body = check_answer(_fast(http, json={"query": query}))
        assert body.get("errors"), name
        expected = {"QUERY_TOO_COMPLEX", "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"}
        assert codes(body) <= expected, (name, body)
    # a deep but legitimate document, through fragments, is still answered
    legit = (
        "{ ...A } fragment A on Query { exchanges { ...B } } "
        "fragment B on Exchange { markets { coverage { dataset } } }"
    )
    assert not check_answer(_fast(http, json={"query": legit})).get("errors")


def test_oversized_bodies_and_lists_are_refused(http: httpx.Client, open_api: ApiProcess) -> None:
    query = (
        'query ($e: [String!]) { liquidationLevels(symbol: "BTC/USDT:USDT", exchanges: $e) '
        "{ price } }"
    )
    huge_list = {"query": query, "variables": {"e": ["binanceusdm"] * 200_000}}
    response = _fast(http, json=huge_list)
    assert response.status_code == 413
    assert codes(response.json()) == {"QUERY_TOO_COMPLEX"}
    big = b'{"query": "{ exchanges { id } }", "pad": "' + b"x" * 20_000_000 + b'"}'
    response = _fast(http, content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and codes(response.json()) == {"QUERY_TOO_COMPLEX"}
    chunked = (b"x" * 4096 for _ in range(10_000))  # no Content-Length: counted as it arrives
    response = _fast(http, content=chunked, headers={"content-type": "application/json"})
    assert response.status_code == 413 and codes(response.json()) == {"QUERY_TOO_COMPLEX"}
    # the largest list that fits is still answered (duplicates collapse), and quickly
    fits = {"query": query, "variables": {"e": ["binanceusdm"] * 8_000}}
    body = check_answer(_fast(http, json=fits))
    assert body["data"]["liquidationLevels"]["price"] > 0
    # bodies that are JSON but not GraphQL requests, and no JSON at all
    for raw in (b'"text"', b"1", b"null", b"[]", b"[1]", b"{", b"\xff\xfe", b'{"query": 1}'):
        response = _fast(http, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400, (raw, response.status_code, response.text)
        assert codes(response.json()) == {"BAD_USER_INPUT"}, raw
    # a NUL character travels to PostgreSQL only as a refused value (the symbol is looked up
    # there; markets(exchange:) would refuse it before, as an unknown exchange)
    nul = check_answer(
        _fast(http, json={"query": '{ liquidationMap(symbol: "BTC\\u0000") { price } }'})
    )
    assert codes(nul) == {"BAD_USER_INPUT"}
    assert "cannot be used" in nul["errors"][0]["message"]
    assert httpx.get(f"{open_api.url}/health/ready").status_code == 200


async def _served_meanwhile(base_url: str, tasks: Sequence[asyncio.Task[Any]]) -> list[float]:
    """The latencies of a plain query asked every 200 ms until every task is done: what other
    clients get while hostile ones hold their connections (each must be a 200)."""
    latencies = []
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        while not all(t.done() for t in tasks):
            started = time.perf_counter()
            response = await client.post("/graphql", json={"query": "{ exchanges { id } }"})
            assert response.status_code == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.2)
    return latencies


async def _hold_uninitialised(url: str) -> tuple[int | None, float]:
    started = time.perf_counter()
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        with contextlib.suppress(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 15)
        return ws.close_code, time.perf_counter() - started


def test_slow_loris_websockets_are_closed(open_api: ApiProcess) -> None:
    """20 websockets that never send connection_init are closed (4408) after the 2 s set for
    this server, while plain queries keep being answered."""
    ws_url = open_api.url.replace("http://", "ws://") + "/graphql"

    async def scenario() -> tuple[list[tuple[int | None, float]], list[float]]:
        holders = [asyncio.create_task(_hold_uninitialised(ws_url)) for _ in range(20)]
        latencies = await _served_meanwhile(open_api.url, holders)
        return [h.result() for h in holders], latencies

    closed, latencies = asyncio.run(scenario())
    assert all(code == 4408 for code, _ in closed), closed
    assert all(1.5 <= elapsed < 5.0 for _, elapsed in closed), closed
    assert max(latencies) < 1.0, latencies


def test_slow_loris_http_connections_are_closed(open_api: ApiProcess) -> None:
    """Connections that send nothing, or their request head a byte at a time, are closed after
    the 2 s set for this server (uvicorn alone keeps them open for good), while a head that
    arrives in pieces in time, a keep-alive connection between requests and other clients are
    served."""
    port = open_api.port

    async def silent() -> float:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 15) == b""  # closed by the server
        writer.close()
        return time.perf_counter() - started

    async def dribbling() -> tuple[float, int]:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        sent = 0
        try:
            for byte in head:
                writer.write(bytes([byte]))
                await writer.drain()
                sent += 1
                await asyncio.sleep(0.05)
            assert await asyncio.wait_for(reader.read(), 15) == b""
        except ConnectionError:
            pass  # closed while dribbling: the next write found the connection gone
        writer.close()
        return time.perf_counter() - started, sent

    async def pieces_and_keep_alive() -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answers = []
        for _ in range(2):
            writer.write(b"GET /health/live HTTP/1.1\r\n")
            await asyncio.sleep(1.0)  # half the deadline
            writer.write(b"Host: x\r\n\r\n")
            answers.append(await asyncio.wait_for(reader.readuntil(b'"ok"}'), 10))
            await asyncio.sleep(1.5)  # idle between requests: within uvicorn's keep-alive
        writer.close()
        return answers

    async def scenario() -> tuple[list[float], list[tuple[float, int]], list[bytes], list[float]]:
        silent_ones = [asyncio.create_task(silent()) for _ in range(10)]
        dribblers = [asyncio.create_task(dribbling()) for _ in range(10)]
        patient = asyncio.create_task(pieces_and_keep_alive())
        latencies = await _served_meanwhile(open_api.url, [*silent_ones, *dribblers, patient])
        return (
            [t.result() for t in silent_ones],
            [t.result() for t in dribblers],
            patient.result(),
            latencies,
        )

    closed_silent, closed_dribbling, answers, latencies = asyncio.run(scenario())
    assert all(1.5 <= elapsed < 5.0 for elapsed in closed_silent), closed_silent
    # closed after about 2 s, the head unfinished (~40 of its 230 bytes sent)
    assert all(1.5 <= elapsed < 5.0 and sent < 100 for elapsed, sent in closed_dribbling)
    assert len(answers) == 2 and all(a.startswith(b"HTTP/1.1 200") for a in answers), answers
    assert max(latencies) < 1.0, latencies


def test_slow_request_bodies_are_refused_with_408(open_api: ApiProcess) -> None:
    """A body sent a byte at a time — declared by ``Content-Length`` or chunked — is refused with
    408 ``REQUEST_TIMEOUT`` about 2 s after its head (the deadline set for this server; without
    one it holds its connection for as long as it dribbles), while a body that arrives in pieces
    within the deadline is answered and other clients are served meanwhile."""
    port = open_api.port
    document = json.dumps({"query": "{ exchanges { id } }"}).encode()

    async def read_response(reader: asyncio.StreamReader) -> bytes:
        # head, then Content-Length bytes: read as they come, before the dribbler's next byte
        # meets the closed socket (whose reset would discard what was not read yet)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return head + await reader.readexactly(length)

    async def exchange(head: bytes, pieces: list[bytes], pause: float) -> tuple[float, bytes]:
        """Send ``head``, then each piece ``pause`` s apart until the server answers; returns
        the seconds from the head to the answer, and the answer."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        started = time.perf_counter()
        answer = asyncio.create_task(read_response(reader))
        for piece in pieces:
            await asyncio.sleep(pause)
            if answer.done():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(piece)
                await writer.drain()
        data = await asyncio.wait_for(answer, 15)
        elapsed = time.perf_counter() - started
        writer.close()
        return elapsed, data

    def post_head(**headers: str) -> bytes:
        lines = [
            "POST /graphql HTTP/1.1",
            "Host: x",
            "Content-Type: application/json",
            "Connection: close",
            *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    declared = post_head(Content_Length=str(len(document)))
    chunked = post_head(Transfer_Encoding="chunked")

    async def scenario() -> tuple[list[tuple[float, bytes]], list[float]]:
        tasks = [
            # a byte every 100 ms: 2 s carry 20 of its 34 bytes, never the whole
            *(
                asyncio.create_task(exchange(declared, [bytes([b]) for b in document], 0.1))
                for _ in range(5)
            ),
            *(
                asyncio.create_task(exchange(chunked, [chunk(bytes([b])) for b in document], 0.1))
                for _ in range(5)
            ),
            # in two pieces, 0.6 and 1.2 s after the head: within the deadline
            asyncio.create_task(exchange(declared, [document[:10], document[10:]], 0.6)),
            asyncio.create_task(
                exchange(chunked, [chunk(document[:10]), chunk(document[10:]) + b"0\r\n\r\n"], 0.6)
            ),
        ]
        latencies = await _served_meanwhile(open_api.url, tasks)
        return [t.result() for t in tasks], latencies

    results, latencies = asyncio.run(scenario())
    *slow, in_time_declared, in_time_chunked = results
    for elapsed, answer in slow:
        assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert body["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT", body
        assert 1.5 <= elapsed < 5.0, elapsed
    for elapsed, answer in (in_time_declared, in_time_chunked):
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert b'"exchanges"' in answer and elapsed < 5.0
    assert max(latencies) < 1.0, latencies
    # operators see them on /metrics
    metrics = httpx.get(f"{open_api.url}/metrics").text
    assert 'liqmap_http_rejections_total{reason="body_timeout"} 10.0' in metrics, metrics[-2000:]


BIG_ANSWER = (
    '{ heatmap(symbol: "BTC/USDT:USDT", start: "2026-06-16T00:00:00Z", '
    'end: "2026-06-22T00:00:00Z", interval: FIVE_MINUTES, priceMin: 55000, priceMax: 75000, '
    "encoding: JSON) { columns rows long short } }"
)  # six days of 5-minute columns over a wide price range, as JSON numbers: megabytes


def test_clients_that_read_nothing_of_their_answer_are_cut(open_api: ApiProcess) -> None:
    """A client that asks for a big answer and then reads nothing of it is disconnected after
    the 2 s set for this server, its unsent answer dropped — without the deadline the server
    keeps it buffered for as long as the client stays, and enough such clients exhaust its
    memory — while one that reads steadily, however slowly, gets all of it."""
    port = open_api.port
    document = json.dumps({"query": BIG_ANSWER}).encode()
    request = (
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Accept-Encoding: identity\r\nConnection: close\r\n"
        + f"Content-Length: {len(document)}\r\n\r\n".encode()
        + document
    )

    def fetch(pause_s: float, read_bytes: int) -> tuple[int, int]:
        """Send the request, wait ``pause_s``, then read ``read_bytes`` at a time, 50 ms apart,
        until the server closes; returns (the declared body length, the bytes received)."""
        with socket.socket() as sock:
            if pause_s:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
            sock.connect(("127.0.0.1", port))
            sock.sendall(request)
            time.sleep(pause_s)
            sock.settimeout(20)
            data = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(read_bytes):
                    data += chunk
                    if pause_s == 0:
                        time.sleep(0.05)
        head, _, body = data.partition(b"\r\n\r\n")
        declared = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return declared, len(body)

    declared, received = fetch(pause_s=5.0, read_bytes=1 << 20)  # reads nothing for 5 s
    # far more than the kernel's socket buffers hold (tcp_wmem grows to 4 MB here)
    assert declared > 8_000_000, (declared, received)
    assert received < declared, (received, declared)  # cut before it was all sent
    # at most 64 KB every 50 ms (~1.3 MB/s), far slower than the server writes: the answer
    # waits in its buffer for seconds, but the client keeps taking some
    declared, received = fetch(pause_s=0.0, read_bytes=1 << 16)
    assert received == declared, (received, declared)
    metrics = httpx.get(f"{open_api.url}/metrics").text
    assert 'liqmap_http_rejections_total{reason="send_timeout"} 1.0' in metrics, metrics[-2000:]


# --- SQL injection -----------------------------------------------------------------------------
INJECTIONS = [
    "' OR '1'='1",
    "BTC/USDT:USDT' OR 1=1 --",
    '"; DROP TABLE candles; --',
    "'); DELETE FROM heatmap_snapshots; --",
    "binanceusdm'; UPDATE markets SET symbol = 'x'; --",
    "1; SELECT pg_sleep(5)",
    "' UNION SELECT key_hash, prefix FROM api_keys --",
    "%' AND 1=1 AND '%'='",
    "\\'; TRUNCATE job_runs; --",
    "$$; DROP SCHEMA public CASCADE; $$",
]
VALID_ARGS = {
    "symbol": "BTC/USDT:USDT",
    "exchange": "binanceusdm",
    "exchanges": ["binanceusdm"],
    "start": "2026-06-10T00:00:00+00:00",
    "end": "2026-06-10T06:00:00+00:00",
    "withinPct": 5.0,
}


def _unwrap(type_: Any) -> tuple[Any, bool]:
    listed = False
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        listed = listed or isinstance(type_, GraphQLList)
        type_ = type_.of_type
    return type_, listed


def string_arguments(root: str) -> list[tuple[str, str, bool, dict[str, Any]]]:
    """(field, string argument, is a list, the field's arguments with their GraphQL types)."""
    found = []
    root_type = SCHEMA.get_type(root)
    for field_name, field in root_type.fields.items():  # type: ignore[union-attr]
        for arg_name, arg in field.args.items():
            named, listed = _unwrap(arg.type)
            if isinstance(named, GraphQLScalarType) and named.name in {"String", "ID"}:
                found.append((field_name, arg_name, listed, dict(field.args)))
    return found


def injection_document(field: str, arg: str, args: dict[str, Any], operation: str) -> str:
    """The field called with its required arguments (valid values) and ``arg`` as $v."""
    declared = [f"$v: {args[arg].type}"]
    passed = [f"{arg}: $v"]
    for name, spec in args.items():
        if name == arg:
            continue
        # an argument without a default has default_value Undefined (not None): required ones
        # are passed, or the document would only test validation
        if isinstance(spec.type, GraphQLNonNull) and spec.default_value is not Undefined:
            continue
        if isinstance(spec.type, GraphQLNonNull) or name in {"exchange", "end"}:
            declared.append(f"${name}: {spec.type}")
            passed.append(f"{name}: ${name}")
    return (
        f"{operation} ({', '.join(declared)}) {{ {field}({', '.join(passed)}) {{ __typename }} }}"
    )


def test_sql_injection_in_every_string_argument_changes_nothing(
    http: httpx.Client, open_api: ApiProcess, hostile_url: str
) -> None:
    before = fingerprint(hostile_url)
    queries = string_arguments("Query")
    expected = {"markets", "liquidationLevels", "heatmap", "snapshots", "candles", "sweptLevels"}
    assert {f for f, *_ in queries} >= expected
    calls = 0
    for field, arg, listed, args in queries:
        document = injection_document(field, arg, args, "query")
        for payload in INJECTIONS:
            variables = {k: v for k, v in VALID_ARGS.items() if f"${k}:" in document}
            variables["v"] = [payload] if listed else payload
            started = time.perf_counter()
            body = check_answer(
                http.post("/graphql", json={"query": document, "variables": variables})
            )
            assert time.perf_counter() - started < 2.0, "an injected pg_sleep ran?"
            assert codes(body) <= {"BAD_USER_INPUT", "NOT_FOUND"}, (field, arg, payload, body)
            if not body.get("errors"):  # answered: then with nothing the payload could select
                assert body["data"][field] in (None, []), (field, arg, payload, body)
            calls += 1
    # the same payloads inline in the document text (escaped as GraphQL strings)
    for payload in INJECTIONS:
        literal = json.dumps(payload)
        body = check_answer(
            http.post(
                "/graphql",
                json={
                    "query": f"{{ liquidationMap(symbol: {literal}) {{ price }} "
                    f"markets(exchange: {literal}) {{ symbol }} }}"
                },
            )
        )
        assert codes(body) <= {"NOT_FOUND", "BAD_USER_INPUT"} and body.get("errors"), body
    # and through the subscriptions' string arguments, over graphql-transport-ws
    subscriptions = string_arguments("Subscription")
    assert subscriptions
    outcomes = asyncio.run(_subscribe_injections(open_api, subscriptions))
    assert all(code in {"BAD_USER_INPUT", "NOT_FOUND"} for code in outcomes), outcomes
    assert len(outcomes) == len(subscriptions) * len(INJECTIONS)
    assert calls >= 100
    assert fingerprint(hostile_url) == before
    assert httpx.get(f"{open_api.url}/health/ready").status_code == 200


async def _subscribe_injections(
    api: ApiProcess, fields: list[tuple[str, str, bool, dict[str, Any]]]
) -> list[str]:
    ws_url = api.url.replace("http://", "ws://") + "/graphql"
    outcomes = []
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        n = 0
        for field, arg, listed, args in fields:
            document = injection_document(field, arg, args, "subscription")
            for payload in INJECTIONS:
                n += 1
                variables = {k: v for k, v in VALID_ARGS.items() if f"${k}:" in document}
                variables["v"] = [payload] if listed else payload
                for name in ("minUsd",):
                    if f"${name}:" in document:
                        variables[name] = 1.0
                await ws.send(
                    json.dumps(
                        {
                            "id": str(n),
                            "type": "subscribe",
                            "payload": {"query": document, "variables": variables},
                        }
                    )
                )
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if message.get("id") != str(n):
                        continue
                    if message["type"] == "error":
                        outcomes.append(message["payload"][0]["extensions"]["code"])
                        break
                    if message["type"] == "next" and message["payload"].get("errors"):
                        outcomes.append(message["payload"]["errors"][0]["extensions"]["code"])
                    if message["type"] in {"next", "complete"}:
                        await ws.send(json.dumps({"id": str(n), "type": "complete"}))
                        if message["type"] == "complete" or message["payload"].get("errors"):
                            break
                        outcomes.append("DATA")
                        break
    return outcomes


# --- API keys ----------------------------------------------------------------------------------
def _apikey(url: str, *args: str) -> str:
    result = subprocess.run(
        [str(LIQMAP), "apikey", *args],
        env=liqmap_env(url),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_api_keys_refused_hashed_and_never_logged(hostile_url: str, tmp_path: Path) -> None:
    valid = _apikey(hostile_url, "create", "integration", "--rate-limit", "10000").split()[0]
    revoked = _apikey(hostile_url, "create", "former partner").split()[0]
    revoked_prefix = revoked.split("_")[1]
    _apikey(hostile_url, "revoke", revoked_prefix)
    assert valid.startswith("lqm_") and revoked.startswith("lqm_")
    wrong = valid[:-6] + ("AAAAAA" if not valid.endswith("AAAAAA") else "BBBBBB")
    listing = _apikey(hostile_url, "list")
    assert valid not in listing and valid.split("_", 2)[2] not in listing

    env = liqmap_env(hostile_url, require_api_keys=True, api_key_cache_seconds=0, log_level="DEBUG")
    log = tmp_path / "keyed-api.log"
    api = ApiProcess(env, log)
    query = {"query": '{ liquidationLevels(symbol: "BTC/USDT:USDT") { price } }'}
    try:
        api.wait_ready()
        with httpx.Client(base_url=api.url, timeout=20) as client:

            def status(headers: dict[str, str]) -> tuple[int, set[str]]:
                response = client.post("/graphql", json=query, headers=headers)
                return response.status_code, codes(response.json())

            assert status({"Authorization": f"Bearer {valid}"}) == (200, set())
            assert status({"X-API-Key": valid}) == (200, set())
            for refused in (revoked, wrong, "lqm_zz_" + "x" * 43, "garbage", "' OR 1=1 --"):
                assert status({"X-API-Key": refused}) == (401, {"UNAUTHENTICATED"}), refused
                assert status({"Authorization": f"Bearer {refused}"}) == (
                    401,
                    {"UNAUTHENTICATED"},
                ), refused
            assert status({}) == (401, {"UNAUTHENTICATED"})
            # a key in a plain-HTTP URL is not a credential (and must not be logged either)
            response = client.get("/graphql", params={**query, "api_key": valid})
            assert response.status_code == 401
            ws_ok = asyncio.run(_ws_with_keys(api, [valid], expect_ack=True))
            assert ws_ok == ["connection_ack"], ws_ok
            # revocation takes effect on the running server
            _apikey(hostile_url, "revoke", valid.split("_")[1])
            assert status({"X-API-Key": valid}) == (401, {"UNAUTHENTICATED"})
        # websockets: ?api_key= counts there; revoked and wrong keys never get a connection:
        # closed at once with graphql-transport-ws's 4401 Unauthorized (not a retried 403)
        closes = asyncio.run(_ws_with_keys(api, [revoked, wrong, valid]))
        assert closes == [4401, 4401, 4401], closes
    finally:
        api.stop()

    text = log.read_text(errors="replace")
    assert "request rejected" in text  # the log did capture these requests (at DEBUG)
    for key in (valid, revoked, wrong):
        secret = key.split("_", 2)[2]
        assert key not in text and secret not in text, "an API key reached the logs"
    with psycopg.connect(hostile_url) as conn:
        rows = conn.execute("SELECT prefix, key_hash, row_to_json(k)::text FROM api_keys k")
        stored = {prefix: (digest, whole) for prefix, digest, whole in rows}
    for key in (valid, revoked):
        prefix = key.split("_")[1]
        digest, whole = stored[prefix]
        assert digest == hashlib.sha256(key.encode()).hexdigest()
        assert key.split("_", 2)[2] not in whole


async def _ws_with_keys(
    api: ApiProcess, keys: list[str], expect_ack: bool = False
) -> list[int | str | None]:
    closes: list[int | str | None] = []
    for key in keys:
        url = api.url.replace("http://", "ws://") + f"/graphql?api_key={key}"
        try:
            async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
                await ws.send(json.dumps({"type": "connection_init"}))
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                closes.append(message["type"] if expect_ack else ws.close_code)
        except websockets.ConnectionClosed as exc:
            closes.append(exc.rcvd.code if exc.rcvd else None)
        except websockets.InvalidStatus as exc:
            closes.append(exc.response.status_code)
    return closes
