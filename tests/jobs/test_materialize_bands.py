"""Leverage bands as the materializer stores them (real replayed Binance data, real PostgreSQL):
they sum to the totals, the aggregate sums them too, and a state from before bands is
recomputed."""

from __future__ import annotations

import io

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.model import ModelParams
from jobs.materialize import materialize_symbol
from jobs.runtime import Runtime
from maps.bands import BANDS
from models import heatmap_store as hs
from models.records import to_datetime
from tests.jobs.test_materialize import EXCHANGE, SYMBOL, ingest, stored

# Per stored bucket the total and each band are float32 roundings of float64 sums of the same
# integer units: |Σ bands − total| ≤ 2⁻²⁴·(Σ bands + total) ≈ 1.2e-7 relative, plus float64
# noise. Reading spreads a stored bucket over its grid buckets, dividing both alike.
FLOAT32_RTOL = 3e-7


async def _series(rt: Runtime, scope: str) -> int:
    async with rt.engine.connect() as conn:
        return await hs.ensure_series(conn, SYMBOL, scope, 50.0)


def _assert_bands_sum_to_totals(snap: hs.Snapshot) -> None:
    assert snap.bands is not None and len(snap.bands) == BANDS
    for band in snap.bands:
        assert band.first == snap.vector.first
        assert band.long_usd.size == snap.vector.long_usd.size
    for side in ("long_usd", "short_usd"):
        total = getattr(snap.vector, side)
        summed = np.sum([getattr(b, side) for b in snap.bands], axis=0)
        np.testing.assert_allclose(summed, total, rtol=FLOAT32_RTOL, atol=1e-9)


async def test_stored_bands_sum_to_the_totals_and_the_aggregate_sums_them(
    runtime: Runtime, db: AsyncEngine
) -> None:
    await ingest(runtime)
    await materialize_symbol(runtime, SYMBOL)
    market = await _series(runtime, EXCHANGE)
    total = await _series(runtime, hs.AGGREGATE_SCOPE)
    async with db.connect() as conn:
        mine = await hs.snapshots_after(conn, market, "1h", to_datetime(0))
        agg = await hs.snapshots_after(conn, total, "1h", to_datetime(0))
    assert len(mine) > 100 and len(agg) == len(mine)
    version = ModelParams.default().version
    assert version == "oi-delta-cohorts-v3"
    near_price = 0
    for m, a in zip(mine, agg, strict=True):
        assert m.model_version == a.model_version == version
        _assert_bands_sum_to_totals(m)
        _assert_bands_sum_to_totals(a)
        # one member with open interest: the aggregate's bands are its bands (float32 storage)
        assert m.bands is not None and a.bands is not None
        for mb, ab in zip(m.bands, a.bands, strict=True):
            np.testing.assert_allclose(ab.long_usd, mb.long_usd, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(ab.short_usd, mb.short_usd, rtol=1e-6, atol=1e-6)
        # the highest band (> 100x) sits nearer the price than the lowest (≤ 10x)
        grid = (m.vector.first + np.arange(m.vector.long_usd.size) + 0.5) * m.bucket_size
        dist = np.abs(grid / m.price - 1.0)
        high, low = m.bands[4].long_usd, m.bands[0].long_usd
        if high.sum() > 0 and low.sum() > 0:
            near_price += (dist @ high) / high.sum() < (dist @ low) / low.sum()
    assert near_price > 0.9 * len(mine)


async def test_a_state_from_before_bands_is_recomputed(runtime: Runtime, db: AsyncEngine) -> None:
    await ingest(runtime)
    await materialize_symbol(runtime, SYMBOL)
    before = await stored(db)
    # the saved state rewritten as format 1 (no bands), under the same model version
    async with db.begin() as conn:
        (sid, blob) = (
            await conn.execute(text("SELECT series_id, state FROM engine_states LIMIT 1"))
        ).one()
        with np.load(io.BytesIO(blob)) as z:
            arrays = {k: z[k] for k in z.files if k not in ("band", "band_units")}
        arrays["ints"] = arrays["ints"].copy()
        arrays["ints"][0] = 1
        old = io.BytesIO()
        np.savez(old, **arrays)
        await conn.execute(
            text("UPDATE engine_states SET state = :s WHERE series_id = :id"),
            {"s": old.getvalue(), "id": sid},
        )
    report = await materialize_symbol(runtime, SYMBOL)
    assert report.series[0].full_recompute
    assert await stored(db) == before
