"""Migration 0010: a v2 snapshot (no bands) reads as before; a v3 one reads its leverage bands
back on the grid, and a band-filtered column is the bands' sum."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import numpy as np
import pytest

from liqmap.database import create_engine
from maps import bands, compact
from maps.grid import BucketVector
from models import heatmap_store as hs
from tests.conftest import drop_database
from tests.models.legacy import upgraded_with_snapshot

BAR = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
LATER = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
V2_LONG = [0.0, 1.5, 2.5, 0.25]
V2_SHORT = [4.0, 0.0, 0.0, 8.0]


@pytest.fixture
async def upgraded(server_url: str) -> AsyncIterator[str]:
    """A database with one v2 snapshot (graded, fine 2) written at 0009, then upgraded."""
    url = upgraded_with_snapshot(
        server_url,
        "liqmap_test_m10",
        "0009",
        "resolution, ts, price, bucket_origin, bucket_size, long_usd, short_usd, "
        "long_total_usd, short_total_usd, model_version, fine_buckets, center_index, "
        "compact_first",
        "'1h', %s, 60075.0, 59950.0, 50.0, %s, %s, 4.25, 12.0, 'oi-delta-cohorts-v2', 2, 1201, -2",
        (BAR, V2_LONG, V2_SHORT),
    )
    try:
        yield url
    finally:
        drop_database(server_url, url)


async def test_v2_rows_have_no_bands_and_v3_rows_read_theirs_back(upgraded: str) -> None:
    engine = create_engine(upgraded, pool_size=2)
    try:
        async with engine.begin() as conn:
            sid = await hs.ensure_series(conn, "BTC/USDT:USDT", "binanceusdm", 50.0)
            (v2,) = await hs.snapshots_at(conn, [sid], BAR, "5m")
            assert v2.model_version == "oi-delta-cohorts-v2" and v2.bands is None
            # fine 2 around 1201: stored −2..1 are single grid buckets −2..1 from it
            assert v2.vector.first == 1199 == 59950 / 50
            assert v2.vector.long_usd.tolist() == V2_LONG
            assert v2.vector.short_usd.tolist() == V2_SHORT
            assert await hs.snapshot_band_columns(conn, sid, "1h", [BAR], 0b11000) == {BAR: None}

            # a v3 row: 300 grid buckets around 60,000 (bucket 1200), fine 10, ten band rows
            rng = np.random.default_rng(10)
            rows = rng.random((bands.CHANNELS, 300)) * 1e6
            rows[4, :100] = 0.0  # > 100x: nothing far below the price
            rows[0, 120:180] = 0.0  # ≤ 10x: nothing near it
            grid = BucketVector(1050, rows[:5].sum(axis=0), rows[5:].sum(axis=0))
            q0, graded = compact.encode_rows(1050, rows, 1200, 10)
            packed = compact.encode(grid, 1200, 10)
            assert q0 == packed.q_first
            row = hs.SnapshotRow.of(
                LATER,
                "1h",
                60010.0,
                50.0,
                compact.CompactVector(
                    1200, 10, q0, packed.long_usd, packed.short_usd, bands=graded
                ),
                "oi-delta-cohorts-v3",
            )
            assert row.band_usd is not None
            await hs.write_snapshots(conn, sid, [row])
            (v3,) = await hs.snapshots_at(conn, [sid], LATER, "5m")
            assert v3.model_version == "oi-delta-cohorts-v3" and v3.bands is not None
            # brute force: every grid bucket gets its stored bucket's float32 USD / width
            first, width = compact.compact_edges(q0 + np.arange(graded.shape[1]), 10)
            expected = np.repeat(graded.astype(np.float32).astype(np.float64) / width, width, 1)
            assert v3.vector.first == 1200 + int(first[0])
            for b in range(bands.BANDS):
                assert v3.bands[b].first == v3.vector.first
                np.testing.assert_array_equal(v3.bands[b].long_usd, expected[b])
                np.testing.assert_array_equal(v3.bands[b].short_usd, expected[bands.BANDS + b])
                # every USD of the band kept, to float32 precision
                assert v3.bands[b].long_usd.sum() == pytest.approx(rows[b].sum(), rel=1e-6)
            # a high-leverage column (50–100x and > 100x): those bands summed, on the grid
            (col,) = (await hs.snapshot_band_columns(conn, sid, "1h", [LATER], 0b11000)).values()
            assert col is not None and col.first == v3.vector.first
            want_long = expected[3] + expected[4]
            want_short = expected[8] + expected[9]
            np.testing.assert_allclose(col.long_usd, want_long, rtol=1e-6)
            np.testing.assert_allclose(col.short_usd, want_short, rtol=1e-6)
            # every band: the totals (to float32 precision)
            (full,) = (await hs.snapshot_columns(conn, sid, "1h", [LATER])).values()
            (every,) = (
                await hs.snapshot_band_columns(conn, sid, "1h", [LATER], bands.FULL_MASK)
            ).values()
            assert every is not None
            np.testing.assert_allclose(every.long_usd, full.long_usd, rtol=3e-7)
            # the blob keeps each band's non-zero range only (> 100x starts near the price)
            kept = [np.flatnonzero(r) for r in graded]
            assert len(row.band_usd) == 80 + 4 * sum(int(k[-1]) + 1 - int(k[0]) for k in kept)
            assert len(row.band_usd) < 80 + bands.CHANNELS * graded.shape[1] * 4
    finally:
        await engine.dispose()
