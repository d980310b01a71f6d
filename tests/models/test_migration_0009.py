"""Migration 0009: a v1 snapshot (a plain grid vector) reads as before; a v2 one (graded
buckets) reads back onto the grid with every USD kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import numpy as np
import pytest

from liqmap.database import create_engine
from maps import compact
from maps.grid import BucketVector
from models import heatmap_store as hs
from tests.conftest import drop_database
from tests.models.legacy import upgraded_with_snapshot

BAR = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
V1_LONG = [0.0, 1.5, 2.5, 0.25]
V1_SHORT = [4.0, 0.0, 0.0, 8.0]


@pytest.fixture
async def upgraded(server_url: str) -> AsyncIterator[str]:
    """A database with one v1 snapshot written at 0008, then upgraded to the head."""
    url = upgraded_with_snapshot(
        server_url,
        "liqmap_test_m9",
        "0008",
        "resolution, ts, price, bucket_origin, bucket_size, long_usd, short_usd, "
        "long_total_usd, short_total_usd, model_version",
        "'1h', %s, 60075.0, 60000.0, 50.0, %s, %s, 4.25, 12.0, 'oi-delta-cohorts-v1'",
        (BAR, V1_LONG, V1_SHORT),
    )
    try:
        yield url
    finally:
        drop_database(server_url, url)


async def test_v1_rows_read_as_before_and_v2_rows_read_back_on_the_grid(upgraded: str) -> None:
    engine = create_engine(upgraded, pool_size=2)
    try:
        async with engine.begin() as conn:
            sid = await hs.ensure_series(conn, "BTC/USDT:USDT", "binanceusdm", 50.0)
            (v1,) = await hs.snapshots_at(conn, [sid], BAR, "5m")
            assert v1.model_version == "oi-delta-cohorts-v1"
            assert v1.vector.first == 60000 // 50
            assert v1.vector.long_usd.tolist() == V1_LONG
            assert v1.vector.short_usd.tolist() == V1_SHORT
            columns = await hs.snapshot_columns(conn, sid, "1h", [BAR])
            assert columns[BAR].first == 1200 and columns[BAR].short_usd.tolist() == V1_SHORT

            # a v2 row: 300 grid buckets around a price of 60,000 (bucket 1200), fine 10
            rng = np.random.default_rng(8)
            grid = BucketVector(1050, rng.random(300) * 1e6, rng.random(300) * 1e6)
            packed = compact.encode(grid, 1200, 10)
            later = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
            row = hs.SnapshotRow.of(later, "1h", 60010.0, 50.0, packed, "oi-delta-cohorts-v2")
            assert row.bucket_origin == packed.first_grid * 50.0 <= 1050 * 50.0
            assert len(row.long_usd) < 300 / 2  # graded: far fewer stored buckets
            await hs.write_snapshots(conn, sid, [row])
            (v2,) = await hs.snapshots_at(conn, [sid], later, "5m")
            assert v2.model_version == "oi-delta-cohorts-v2"
            stored32 = compact.CompactVector(
                1200,
                10,
                packed.q_first,
                row.long_usd.astype(np.float64),
                row.short_usd.astype(np.float64),
            )
            expected = compact.decode(stored32)
            assert v2.vector.first == expected.first
            np.testing.assert_array_equal(v2.vector.long_usd, expected.long_usd)
            # every USD kept (float32 storage: to its precision), every near-price bucket as is
            assert v2.vector.long_usd.sum() == pytest.approx(grid.long_usd.sum(), rel=1e-6)
            near = slice(1190 - v2.vector.first, 1210 - v2.vector.first)
            np.testing.assert_allclose(
                v2.vector.short_usd[near], grid.short_usd[1190 - 1050 : 1210 - 1050], rtol=1e-6
            )
            cols = await hs.snapshot_columns(conn, sid, "1h", [later])
            assert cols[later].first == expected.first
            np.testing.assert_array_equal(
                cols[later].long_usd, expected.long_usd.astype(np.float32)
            )
    finally:
        await engine.dispose()
