"""Fixtures for job tests: a Runtime on the run's database (the Binance rows: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.runtime import Runtime
from liqmap.settings import Settings


def make_settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "exchanges": ["binanceusdm"],
        "symbols": {"binanceusdm": ["BTC/USDT:USDT"]},
        "retry_initial_s": 0.01,
        "retry_max_s": 0.05,
        "retry_attempts": 4,
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


@pytest.fixture
async def runtime(db: AsyncEngine, shared_data: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(settings=make_settings(replay_dir=shared_data), engine=db)
    yield rt
    await rt.close()


@pytest.fixture
def fresh_database_url(server_url: str) -> Iterator[str]:
    """A database of this test's own, migrated (queue state never leaks between tests)."""
    from liqmap import migrations
    from tests.conftest import create_database, drop_database

    url = create_database(server_url, "liqmap_test_jobs")
    migrations.upgrade(url)
    yield url
    drop_database(server_url, url)
