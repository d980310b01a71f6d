"""Every way of not reaching the database is ``SERVICE_UNAVAILABLE`` (HTTP 503), never INTERNAL.

The exceptions are the drivers' own, produced for real: asyncpg and psycopg connecting to a
Unix-socket folder without a server (``FileNotFoundError``), to a loopback port nobody listens
on (``ConnectionRefusedError``), a session ended by the server (``pg_terminate_backend``), and
the API in front of a private PostgreSQL reached over its Unix socket, stopped under it, with
and without required API keys. Errors that are not about the connection stay what they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import psycopg
import pytest
from sqlalchemy import text

from api import auth
from api.app import create_app
from liqmap import migrations
from liqmap.database import create_engine, is_connection_error
from tests.api.settings import api_settings
from tests.reliability.conftest import fresh_database
from tests.reliability.harness import PrivatePostgres, free_port

QUERY = {"query": "{ exchanges { id } }"}


async def raised(coro: object) -> BaseException:
    try:
        await coro  # type: ignore[misc]
    except BaseException as exc:
        return exc
    raise AssertionError("no error")


@pytest.mark.unit
async def test_the_drivers_connection_failures_are_connection_errors(tmp_path: Path) -> None:
    no_socket = f"postgresql://postgres@/postgres?host={tmp_path}&port=5999"
    refused = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"

    missing_socket = await raised(asyncpg.connect(dsn=no_socket, timeout=5))
    assert isinstance(missing_socket, FileNotFoundError)  # what a stopped local server gives
    assert is_connection_error(missing_socket)
    refused_tcp = await raised(asyncpg.connect(dsn=refused, timeout=5))
    assert isinstance(refused_tcp, ConnectionRefusedError) and is_connection_error(refused_tcp)

    engine = create_engine(no_socket, pool_size=1)
    try:
        wrapped = await raised(engine.connect().__aenter__())
    finally:
        await engine.dispose()
    assert isinstance(wrapped.__cause__ or wrapped, OSError) or wrapped.__context__
    assert is_connection_error(wrapped)

    for url in (no_socket, refused):
        with pytest.raises(psycopg.OperationalError) as failed:
            psycopg.connect(url, connect_timeout=5)
        assert is_connection_error(failed.value)

    # not the connection: a file that is missing, a statement that is wrong, a plain bug
    missing_file = await raised(asyncio.to_thread((tmp_path / "nope.csv").read_text))
    assert isinstance(missing_file, FileNotFoundError) and not is_connection_error(missing_file)
    assert not is_connection_error(ValueError("bad"))
    assert not is_connection_error(PermissionError(13, "denied"))


@pytest.fixture(scope="module")
def socket_pg() -> Iterator[PrivatePostgres]:
    with PrivatePostgres() as server:
        yield server


async def test_a_terminated_session_is_a_connection_error(socket_pg: PrivatePostgres) -> None:
    if not socket_pg.is_running():
        socket_pg.start()
    conn = await asyncpg.connect(dsn=socket_pg.url)
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        with psycopg.connect(socket_pg.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        ended = await raised(conn.fetchval("SELECT 1"))
        assert is_connection_error(ended), repr(ended)
        closed = await raised(conn.fetchval("SELECT 1"))  # the same handle, used again
        assert type(closed).__name__ == "InterfaceError" and is_connection_error(closed)
    finally:
        await conn.close()


@pytest.mark.parametrize("keys", [False, True], ids=["open", "keys-required"])
async def test_the_api_answers_503_when_its_unix_socket_server_is_down(
    socket_pg: PrivatePostgres, keys: bool
) -> None:
    if not socket_pg.is_running():
        socket_pg.start()
    name = f"sock_{int(keys)}"
    fresh_database(socket_pg.url, name)
    url = f"postgresql://postgres@/{name}?host={socket_pg.root}&port={socket_pg.port}"
    await asyncio.to_thread(migrations.upgrade, url)
    engine = create_engine(url, pool_size=2)
    try:
        key, _ = await auth.create_key(engine, "ops", 100)
        settings = api_settings(
            require_api_keys=keys, api_key_cache_seconds=0.0, api_cache_entries=0
        )
        app = create_app(settings, engine, database_url=url)
        headers = {"X-API-Key": key}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=20
        ) as client:
            up = await client.post("/graphql", json=QUERY, headers=headers)
            assert up.status_code == 200, up.text
            socket_pg.stop("fast")
            try:
                assert not (socket_pg.root / f".s.PGSQL.{socket_pg.port}").exists()
                for sent in (headers, {}):
                    down = await client.post("/graphql", json=QUERY, headers=sent)
                    if keys and not sent:
                        # no key: refused before the database is needed
                        assert down.status_code == 401, down.text
                        continue
                    assert down.status_code == 503, down.text
                    codes = [e["extensions"]["code"] for e in down.json()["errors"]]
                    assert codes == ["SERVICE_UNAVAILABLE"]
                    assert down.headers["retry-after"].isdigit()
                    assert "Traceback" not in down.text and str(socket_pg.root) not in down.text
            finally:
                socket_pg.start()
            again = await client.post("/graphql", json=QUERY, headers=headers)
            assert again.status_code == 200, again.text
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
