"""Fixtures for the reliability tests: real servers, real ``liqmap`` processes, loopback only."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.conftest import create_database, drop_database
from tests.reliability.harness import PrivatePostgres, replay_pipeline

BTC = "BTC/USDT:USDT"
BINANCE_CSV = Path("binance") / "BTCUSDT_perp_5m_klines_oi_funding.csv"


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this module's own, which its tests may stop and start."""
    with PrivatePostgres() as server:
        yield server


def fresh_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def csv_bar_times(shared_data: Path) -> list[datetime]:
    """Open times of every 5m bar in the shared Binance file (what a replay must store)."""
    with (shared_data / BINANCE_CSV).open(newline="") as handle:
        return [
            datetime.fromtimestamp(int(row["timestamp"]) / 1000, tz=UTC)
            for row in csv.DictReader(handle)
        ]


def query_all(url: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return list(conn.execute(sql, params).fetchall())


def query_one(url: str, sql: str, *params: object) -> object:
    rows = query_all(url, sql, *params)
    return rows[0][0] if rows else None


@pytest.fixture(scope="session")
def replayed_template(
    server_url: str, shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database filled by the real main job, once per run: ``liqmap up --replay --once``
    (migrate, ingest the shared 4-week window, import realized liquidations, materialize).
    Tests work on copies of it (:func:`clone_database`), never on it."""
    url = create_database(server_url, "liqmap_test_rel")
    replay_pipeline(url, shared_data, tmp_path_factory.mktemp("replay") / "up.log")
    yield url
    drop_database(server_url, url)


def clone_database(server_url: str, template_url: str, prefix: str = "liqmap_test_rel") -> str:
    """A copy of ``template_url`` on the same server (``CREATE DATABASE … TEMPLATE``)."""
    from liqmap.database import with_database

    template = urlsplit(template_url).path.lstrip("/")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return with_database(server_url, name)


def fingerprint(url: str) -> dict[str, tuple[int, int]]:
    """Row count and a hash sum of every row, per table: equal fingerprints = unchanged data."""
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
            )
        ]
        out: dict[str, tuple[int, int]] = {}
        for table in tables:
            count, total = conn.execute(
                f'SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM "{table}" t'
            ).fetchone()  # type: ignore[misc]
            out[table] = (int(count), int(total))
        return out
