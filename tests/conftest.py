"""Test fixtures: a real PostgreSQL for every run, in a fresh database of its own.

``DATABASE_URL`` (or ``LIQMAP_TEST_DATABASE_URL``) names the server to use; without it an embedded
PostgreSQL is started under a temporary folder. Either way the run creates a database named
``liqmap_test_<random>``, migrates it, and drops it at the end, so runs never see each other.
"""

from __future__ import annotations

import csv
import gc
import os
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from liqmap.database import (
    create_engine,
    database_name,
    normalize_url,
    start_embedded_server,
    with_database,
)

REPO = Path(__file__).resolve().parent.parent


BINANCE_BTC_CSV = Path("binance") / "BTCUSDT_perp_5m_klines_oi_funding.csv"


def shared_data_dir() -> Path:
    return Path(os.environ.get("LIQMAP_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "README.md").exists():
        pytest.fail(f"real exchange data not found at {path}; set LIQMAP_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def binance_rows(shared_data: Path) -> list[dict[str, str]]:
    """The rows of the real Binance BTC 5m file, read once per run (the engine's, the adapters'
    and the jobs' tests all check against it; none of them changes it)."""
    with (shared_data / BINANCE_BTC_CSV).open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An admin URL on a real PostgreSQL server (external if configured, else embedded)."""
    url = os.environ.get("LIQMAP_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return normalize_url(url)
    data_dir = tmp_path_factory.mktemp("embedded-pg")
    return with_database(start_embedded_server(data_dir), "postgres")


def create_database(server_url: str, prefix: str = "liqmap_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


def drop_database(server_url: str, url: str) -> None:
    name = database_name(url)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def empty_database_url(server_url: str) -> Iterator[str]:
    """A fresh database with no schema at all (for migration tests)."""
    url = create_database(server_url, "liqmap_test_empty")
    yield url
    drop_database(server_url, url)


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh, fully migrated database for this test run."""
    from liqmap import migrations

    url = create_database(server_url)
    migrations.upgrade(url)
    yield url
    drop_database(server_url, url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url, pool_size=5)
    yield eng
    await eng.dispose()


LIQMAP_TABLES = (
    "api_keys, candles, engine_states, exchanges, funding_rates, heatmap_series, "
    "heatmap_snapshots, ingest_watermarks, job_runs, known_liquidations, known_snapshots, "
    "liquidation_events, margin_tiers, markets, open_interest, realized_liquidations, "
    "swept_levels"
)


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncEngine:
    """The run's database, emptied of liqmap data before the test."""
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {LIQMAP_TABLES} RESTART IDENTITY CASCADE"))
    return engine


# The unit tier: tests that need no PostgreSQL, no subprocess server and no browser. A test is
# in it unless its fixtures reach a database server (``server_url``; ``private_pg`` and
# ``socket_pg`` start a PostgreSQL of their own) or it is marked otherwise; `pytest -m unit`
# runs it alone (README, "Tests").
SERVER_FIXTURES = {"server_url", "private_pg", "socket_pg"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if SERVER_FIXTURES & set(fixtures) or item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """Collect with the cyclic garbage collector paused.

    Collecting imports every test module and what it imports (ccxt's ~100 exchange classes,
    SQLAlchemy, Strawberry, scipy): about a million objects that live as long as the run. While
    that heap grows, CPython walks all of it again in a full collection every time it has grown
    by a quarter, a dozen times (~1.5 s on this machine, more than any single import) to free
    nothing. Paused, the first full collection after collecting walks it once.
    """
    gc.disable()
    try:
        return (yield)
    finally:
        gc.enable()
