"""End to end with data produced by the real jobs: replay ingest → materialize → API.

The FLOAT32_BASE64 heatmap is decoded and compared cell by cell with the snapshot rows the
materializer stored, read back here with plain SQL.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from liqmap.database import DatabaseTarget, create_engine
from tests.api.conftest import build_app
from tests.conftest import create_database, drop_database

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def pipeline_url(server_url: str) -> Iterator[str]:
    from liqmap import migrations

    url = create_database(server_url, "liqmap_test_api_e2e")
    migrations.upgrade(url)
    yield url
    drop_database(server_url, url)


@pytest.fixture(scope="module")
async def pipeline_engine(pipeline_url: str, shared_data: Path) -> AsyncIterator[AsyncEngine]:
    from jobs.pipeline import run_pipeline_once
    from tests.api.settings import api_settings

    settings = api_settings(
        replay_dir=shared_data, exchanges=["binanceusdm"],
        symbols={"binanceusdm": [SYMBOL]},
    )  # fmt: skip
    await run_pipeline_once(settings, DatabaseTarget(pipeline_url, embedded=False))
    engine = create_engine(pipeline_url, pool_size=5)
    yield engine
    await engine.dispose()


async def test_heatmap_from_the_real_pipeline_equals_stored_snapshots(
    pipeline_engine: AsyncEngine, pipeline_url: str
) -> None:
    async with pipeline_engine.connect() as conn:
        sid, bucket = (
            await conn.execute(
                text(
                    "SELECT id, bucket_size FROM heatmap_series WHERE symbol = :s AND scope = 'all'"
                ),
                {"s": SYMBOL},
            )
        ).one()
        rows = (
            await conn.execute(
                text(
                    "SELECT ts, bucket_origin, long_usd, short_usd FROM heatmap_snapshots "
                    "WHERE series_id = :s AND resolution = '1h' ORDER BY ts DESC LIMIT 24"
                ),
                {"s": sid},
            )
        ).all()[::-1]
    assert len(rows) == 24
    start = rows[0].ts + timedelta(minutes=5) - timedelta(hours=1)
    end = rows[-1].ts + timedelta(minutes=5)
    low = min(r.bucket_origin for r in rows)
    high = max(r.bucket_origin + bucket * len(r.long_usd) for r in rows)
    app = build_app(pipeline_engine, pipeline_url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        body = (
            await c.post(
                "/graphql",
                json={
                    "query": """query ($s: DateTime!, $e: DateTime!, $lo: Float!, $hi: Float!) {
                      heatmap(symbol: "BTC/USDT:USDT", start: $s, end: $e, interval: ONE_HOUR,
                              priceMin: $lo, priceMax: $hi) { columns rows priceMin long short }
                      liquidationLevels(symbol: "BTC/USDT:USDT") { at levels { longUsd } }
                    }""",
                    "variables": {"s": start.isoformat(), "e": end.isoformat(), "lo": low,
                                  "hi": high},
                },
            )
        ).json()  # fmt: skip
    await app.state.hub.close()
    assert "errors" not in body, body
    h = body["data"]["heatmap"]
    assert h["columns"] == 24
    first_row = round(h["priceMin"] / bucket)
    for field, index in (("long", 2), ("short", 3)):
        matrix = np.frombuffer(base64.b64decode(h[field]), "<f4").reshape(h["rows"], 24)
        for j, row in enumerate(rows):
            origin = round(row.bucket_origin / bucket) - first_row
            stored = np.asarray(row[index], np.float32)
            np.testing.assert_array_equal(matrix[origin : origin + stored.size, j], stored)
    assert body["data"]["liquidationLevels"]["levels"]
