"""Fixtures for the reliability tests: real servers, real ``liqmap`` processes, loopback only."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tests.reliability.harness import PrivatePostgres

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
