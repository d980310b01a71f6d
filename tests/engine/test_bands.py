"""Leverage bands: the band of a leverage, hand-built cohorts, the reference, exact sums."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest

from engine.liquidation import isolated_liquidation_price
from engine.model import Bars, EngineState, ModelParams, simulate
from engine.model.cohorts import channels
from engine.reference import leverage_band as reference_band
from engine.reference import simulate_reference
from engine.tiers import MarginTiers
from maps.bands import BANDS, LEVERAGE_BANDS, leverage_band
from maps.grid import PriceGrid
from tests.engine.test_model import FIVE_MIN, make_bars, one_level


def test_band_of_boundary_leverages() -> None:
    leverage = [1.0, 5.0, 10.0, 10.0001, 25.0, 25.5, 50.0, 50.1, 100.0, 100.01, 200.0]
    want = [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert leverage_band(leverage).tolist() == want
    assert [reference_band(x) for x in leverage] == want
    assert len(LEVERAGE_BANDS) == BANDS == 5
    with pytest.raises(ValueError):
        leverage_band([np.nan])


def test_cohorts_of_known_leverage_land_in_their_band(tiers: MarginTiers) -> None:
    # two levels, 8x and 150x, equal weights: 2 contracts opened at 100 are 200 USD per side,
    # 100 USD at each level; 8x is band 0 (≤ 10x) and 150x band 4 (> 100x)
    params = one_level(leverage_levels=2, leverage_min=8.0, leverage_max=150.0)
    profile = params.profile(tiers)
    assert profile.leverage.tolist() == [8.0, 150.0]
    bars = make_bars(
        [
            (0, 100, 100, 100, 100, 1000),
            (FIVE_MIN, 100, 100.01, 99.99, 100, 1002),  # +2 contracts at close 100
        ]
    )
    grid = PriceGrid(0.05)
    result = simulate(bars, params, grid, tiers, snapshot_every=np.array([False, True]))
    (snap,) = result.snapshots
    for side, bands, total in ((1, snap.long_bands, snap.long), (-1, snap.short_bands, snap.short)):
        assert bands.shape == (BANDS, len(total))
        for leverage, band in ((8.0, 0), (150.0, 4)):
            lp = isolated_liquidation_price(side, 100.0, leverage, 100.0, tiers).item()
            k = grid.index_of_scalar(lp) - snap.bucket_origin_index
            assert bands[band, k] == pytest.approx(100.0, rel=1e-12)
            assert bands[band].sum() == pytest.approx(100.0, rel=1e-12)  # nothing elsewhere
        assert not bands[1:4].any()  # no level between 10x and 100x
        assert np.array_equal(bands.sum(axis=0), total)  # one band per bucket: exact
    state = result.state
    assert state is not None
    assert sorted(zip(state.side.tolist(), state.band.tolist(), strict=True)) == [
        (-1, 0),
        (-1, 4),
        (1, 0),
        (1, 4),
    ]


def test_bands_match_the_reference_on_real_data(binance_5m: Bars, tiers: MarginTiers) -> None:
    # 2x..200x over 8 levels: every band holds levels
    params = ModelParams(leverage_levels=8, turnover_per_day=2.0, half_life_hours=6.0)
    assert set(leverage_band(params.profile(tiers).leverage).tolist()) == set(range(BANDS))
    bars = binance_5m.slice(3000, 3200)
    mask = np.zeros(len(bars), dtype=bool)
    mask[::9] = True
    mask[-1] = True
    grid = PriceGrid(bucket_size=10.0)
    fast = simulate(bars, params, grid, tiers, snapshot_every=mask)
    ref = simulate_reference(bars, params, grid, tiers, snapshot_every=mask.tolist())
    from engine.model.units import QUANTUM_PER_OI

    # the same tolerance as the totals' reference test: half a quantum per open cohort
    quantum = QUANTUM_PER_OI * float(bars.open_interest_usd.max())
    per_bar = 2 * params.leverage_levels
    for i, (f, r) in enumerate(zip(fast.snapshots, ref.snapshots, strict=True)):
        floor = 0.5 * quantum * per_bar * (int(np.flatnonzero(mask)[i]) + 1)
        for got, want in ((f.long_bands, r.long_bands), (f.short_bands, r.short_bands)):
            want_arr = np.asarray(want)
            atol = max(1e-9 * float(want_arr.max(initial=0.0)), floor)
            np.testing.assert_allclose(got, want_arr, rtol=1e-9, atol=atol)
    last = np.asarray(ref.snapshots[-1].long_bands)
    assert (last.sum(axis=1) > 0).all()  # every band holds USD by the end


def _units_from_cohorts(state: EngineState) -> np.ndarray:
    """The state's heatmap rebuilt cohort by cohort: channel × bucket sums of their units."""
    width = state.band_units.shape[1]
    out = np.zeros((2 * BANDS, width), dtype=np.int64)
    for side, band, bucket, units in zip(
        state.side.tolist(),
        state.band.tolist(),
        state.bucket.tolist(),
        state.units.tolist(),
        strict=True,
    ):
        out[band + (BANDS if side < 0 else 0), bucket - state.units_origin] += units
    return out


def test_bands_sum_to_the_totals_exactly_in_units(binance_5m: Bars, tiers: MarginTiers) -> None:
    # a 2-hour half-life re-bases the integer heatmap several times: rebuilt books included
    params = ModelParams(leverage_levels=10, half_life_hours=2.0, turnover_per_day=2.0)
    bars = binance_5m.slice(0, 900)
    grid = PriceGrid(bucket_size=10.0)
    mask = np.zeros(len(bars), dtype=bool)
    mask[::5] = True
    state = None
    totals: list[tuple[np.ndarray, np.ndarray]] = []
    for a, b in itertools.pairwise([0, 300, 301, 900]):
        out = simulate(bars.slice(a, b), params, grid, tiers, state=state, snapshot_every=mask[a:b])
        state = out.state
        assert state is not None
        units = _units_from_cohorts(state)
        assert np.array_equal(units, state.band_units)  # every band, to the unit
        # the side totals, summed cohort by cohort without bands, are the bands' sums exactly
        long_units = np.zeros(units.shape[1], dtype=np.int64)
        short_units = np.zeros(units.shape[1], dtype=np.int64)
        np.add.at(
            long_units,
            state.bucket[state.side == 1] - state.units_origin,
            state.units[state.side == 1],
        )
        np.add.at(
            short_units,
            state.bucket[state.side == -1] - state.units_origin,
            state.units[state.side == -1],
        )
        assert np.array_equal(state.long_units, long_units)
        assert np.array_equal(state.short_units, short_units)
        assert np.array_equal(state.band_units[:BANDS].sum(axis=0), long_units)
        totals.extend((s.long, s.long_bands) for s in out.snapshots)
        totals.extend((s.short, s.short_bands) for s in out.snapshots)
    assert len(totals) > 100
    for total, bands in totals:
        # in USD each band is its units times the snapshot's scale: sums agree to rounding
        np.testing.assert_allclose(bands.sum(axis=0), total, rtol=1e-12, atol=0)
    # and the last snapshot in USD is the units times one scale: per band and in total
    assert state is not None
    snap = state.levels(grid, float(bars.close[-1]), params.span(params.profile(tiers)))
    assert np.array_equal(snap.long_bands.sum(axis=0) > 0, snap.long > 0)


def test_channels_are_side_then_band() -> None:
    side = np.array([1, 1, -1, -1], dtype=np.int8)
    band = np.array([0, 4, 0, 4], dtype=np.int8)
    assert channels(side, band).tolist() == [0, 4, 5, 9]


def test_a_state_of_the_previous_format_is_refused(binance_5m: Bars, tiers: MarginTiers) -> None:
    out = simulate(binance_5m.slice(0, 50), ModelParams(leverage_levels=4), PriceGrid(10.0), tiers)
    assert out.state is not None
    blob = out.state.to_bytes()
    assert EngineState.from_bytes(blob).to_bytes() == blob
    with np.load(io.BytesIO(blob)) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["ints"] = arrays["ints"].copy()
    arrays["ints"][0] = 1  # format 1: no bands (model v2)
    old = io.BytesIO()
    np.savez(old, **arrays)
    with pytest.raises(ValueError, match="format 1"):
        EngineState.from_bytes(old.getvalue())


def test_incremental_bands_equal_a_full_run_exactly(binance_5m: Bars, tiers: MarginTiers) -> None:
    from tests.engine.test_model import run_in_pieces

    params = ModelParams(leverage_levels=10, half_life_hours=2.0, turnover_per_day=2.0)
    bars = binance_5m.slice(0, 800)
    grid = PriceGrid(bucket_size=10.0)
    mask = np.zeros(len(bars), dtype=bool)
    mask[::4] = True
    full = simulate(bars, params, grid, tiers, snapshot_every=mask)
    assert full.state is not None
    _, _, snaps, state = run_in_pieces(bars, params, grid, tiers, mask, [1, 333, 334, 700])
    assert state == full.state.to_bytes()
    assert len(snaps) == len(full.snapshots)
    for a, b in zip(full.snapshots, snaps, strict=True):
        assert np.array_equal(a.long_bands, b.long_bands)
        assert np.array_equal(a.short_bands, b.short_bands)
