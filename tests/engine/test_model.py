"""The heatmap model: hand-calculated cases, the plain-Python reference, exact incremental runs."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.liquidation import isolated_liquidation_price
from engine.model import Bars, EngineState, ModelParams, SnapshotBlock, simulate
from engine.model.drivers import bar_drivers
from engine.model.params import PARAMS_FILE
from engine.model.state import empty_state
from engine.model.units import epochs
from engine.reference import simulate_reference
from engine.tiers import MarginTiers
from maps.grid import BucketVector, PriceGrid, add_vectors

FIVE_MIN = 300_000
HOUR = 3_600_000


def one_level(**changes: object) -> ModelParams:
    """A single 10x level, no turnover/decay/seed: every number can be worked out by hand."""
    base = ModelParams(
        leverage_levels=1,
        leverage_min=10.0,
        leverage_max=10.0,
        turnover_per_day=0.0,
        half_life_hours=0.0,
        seed_fraction=0.0,
        position_usd=10_000.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def make_bars(rows: list[tuple[int, float, float, float, float, float]]) -> Bars:
    """rows of (timestamp, open, high, low, close, open interest in contracts)."""
    a = np.array(rows, dtype=np.float64)
    return Bars(a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5] * a[:, 4])


def test_hand_calculated_liquidations(tiers: MarginTiers) -> None:
    # 1 contract opened at 100 as a long and a short, 10x isolated, Binance tier 1 (0.4 %, cum 0)
    # for a 10,000 USD position: long LP = (10000 − 1000)/(100·0.996) = 90.3614…,
    # short LP = (10000 + 1000)/(100·1.004) = 109.5617…
    bars = make_bars(
        [
            (0, 100, 100, 100, 100, 1000),
            (FIVE_MIN, 100, 100.2, 99.8, 100, 1001),  # +1 contract at close 100
            (2 * FIVE_MIN, 100, 100.5, 90.3, 95, 900.9),  # low reaches the long LP; −10 % OI
            (3 * FIVE_MIN, 95, 109.5, 94, 105, 900.9),  # high just short of the short LP
            (4 * FIVE_MIN, 105, 109.6, 104, 106, 900.9),  # reaches it
        ]
    )
    result = simulate(bars, one_level(), PriceGrid(1.0), tiers)
    # the long is liquidated in full (consumption happens before the bar's closes)
    np.testing.assert_allclose(result.predicted_long_usd, [0, 0, 100.0, 0, 0], rtol=1e-12)
    # the short lost 10 % to the proportional close in bar 2: 90 USD left when reached
    np.testing.assert_allclose(result.predicted_short_usd, [0, 0, 0, 0, 90.0], rtol=1e-12)
    assert result.state is not None and result.state.open_cohorts == 0
    # the bars were built around these LPs: the engine's own liquidation prices, against the
    # hand calculation above, and the wicks that reach (or just miss) them
    long_lp, short_lp = (
        isolated_liquidation_price(side, 100.0, 10.0, 100.0, tiers).item() for side in (1, -1)
    )
    assert long_lp == pytest.approx(9000 / 99.6, rel=1e-12)  # 90.3614…
    assert short_lp == pytest.approx(11000 / 100.4, rel=1e-12)  # 109.5617…
    assert 90.3 <= long_lp < 99.8  # bar 2's low reaches it, bar 1's does not
    assert 109.5 < short_lp <= 109.6  # bar 3's high stops short, bar 4's reaches it


def test_decay_counts_elapsed_time_across_a_gap(tiers: MarginTiers) -> None:
    bars = make_bars(
        [
            (0, 100, 100, 100, 100, 1000),
            (FIVE_MIN, 100, 100, 100, 100, 1001),
            (FIVE_MIN + 2 * HOUR, 100, 101, 99, 100, 1001),  # 2 hours later: a gap
            (2 * FIVE_MIN + 2 * HOUR, 100, 101, 90, 100, 1001),
        ]
    )
    result = simulate(bars, one_level(half_life_hours=1.0), PriceGrid(1.0), tiers)
    # two half-lives passed before the bar that reaches the long: 100 · 2**-2
    np.testing.assert_allclose(result.predicted_long_usd, [0, 0, 0, 25.0], rtol=1e-12)


def test_turnover_reopens_what_it_closes(tiers: MarginTiers) -> None:
    bars = make_bars(
        [
            (0, 100, 100, 100, 100, 1000),
            (HOUR * 24, 100, 100, 100, 100, 1000),  # one day at 0.2/day: 1 − e^−0.2 turns over
            (HOUR * 24 + FIVE_MIN, 100, 101, 90, 100, 1000),
        ]
    )
    params = one_level(turnover_per_day=0.2)
    result = simulate(bars, params, PriceGrid(1.0), tiers)
    # 181.269… contracts reopened at 100 (nothing was open to close) → 18,126.92 USD per side
    reopened = 1000 * (1 - math.exp(-0.2)) * 100
    assert reopened == pytest.approx(18_126.92, abs=0.01)
    np.testing.assert_allclose(result.predicted_long_usd, [0, 0, reopened], rtol=1e-12)


def test_seed_fraction_opens_initial_open_interest(tiers: MarginTiers) -> None:
    bars = make_bars([(0, 100, 100, 100, 100, 1000), (FIVE_MIN, 100, 120, 80, 100, 1000)])
    result = simulate(bars, one_level(seed_fraction=0.5), PriceGrid(1.0), tiers)
    np.testing.assert_allclose(result.predicted_long_usd, [0, 50_000.0], rtol=1e-12)
    np.testing.assert_allclose(result.predicted_short_usd, [0, 50_000.0], rtol=1e-12)


def test_leverage_ratio_shortcut_matches_the_exchange_formula(tiers: MarginTiers) -> None:
    # LP/EP does not depend on EP at a fixed position notional: compare with direct calls
    params = ModelParams(leverage_levels=12, leverage_min=2, leverage_max=240, leverage_alpha=1)
    profile = params.profile(tiers)
    for entry in (64_543.0, 77_587.2, 3.1):
        qty = np.full_like(profile.leverage, params.position_usd / entry)
        ep = np.full_like(profile.leverage, entry)
        direct_long = isolated_liquidation_price(1, ep, profile.leverage, qty, tiers)
        direct_short = isolated_liquidation_price(-1, ep, profile.leverage, qty, tiers)
        np.testing.assert_allclose(entry * profile.long_ratio, direct_long, rtol=1e-12)
        np.testing.assert_allclose(entry * profile.short_ratio, direct_short, rtol=1e-12)
    assert math.isclose(profile.weight.sum(), 1.0)


def assert_matches_reference(
    bars: Bars, params: ModelParams, grid: PriceGrid, tiers: MarginTiers, mask: np.ndarray
) -> None:
    fast = simulate(bars, params, grid, tiers, snapshot_every=mask)
    ref = simulate_reference(bars, params, grid, tiers, snapshot_every=mask.tolist())
    np.testing.assert_allclose(fast.predicted_long_usd, ref.predicted_long_usd, rtol=1e-9, atol=0)
    np.testing.assert_allclose(fast.predicted_short_usd, ref.predicted_short_usd, rtol=1e-9, atol=0)
    assert len(fast.snapshots) == len(ref.snapshots) == int(mask.sum())
    # heatmap buckets are sums of cohorts rounded to integer multiples of a quantum of at most
    # 1e-15 · open interest (engine.model.units.QUANTUM_PER_OI), each off by at most half a quantum:
    # a bucket is compared relative to the snapshot's largest bucket, but never finer than half
    # a quantum per cohort that can be open by then (two sides × levels × entry points per bar)
    from engine.model.units import QUANTUM_PER_OI

    quantum = QUANTUM_PER_OI * float(bars.open_interest_usd.max())
    per_bar = 2 * params.leverage_levels * params.entry_points
    bar_of = {int(t): i for i, t in enumerate(bars.timestamp)}
    for f, r in zip(fast.snapshots, ref.snapshots, strict=True):
        floor = 0.5 * quantum * per_bar * (bar_of[int(f.timestamp)] + 1)
        assert (f.timestamp, f.price, f.bucket_origin_index) == (
            r.timestamp,
            r.price,
            r.bucket_origin_index,
        )
        for got, want in ((f.long, r.long), (f.short, r.short)):
            want_arr = np.asarray(want)
            atol = max(1e-9 * float(want_arr.max(initial=0.0)), floor)
            np.testing.assert_allclose(got, want_arr, rtol=1e-9, atol=atol)
    assert fast.state is not None
    assert fast.state.open_cohorts == len(ref.open_positions)


@pytest.mark.parametrize(
    "params",
    [
        ModelParams(leverage_levels=8),
        ModelParams(
            leverage_levels=6,
            leverage_alpha=1.5,
            turnover_per_day=4.0,
            half_life_hours=3.0,
            seed_fraction=0.5,
            prune_fraction=1e-4,
        ),
        ModelParams(
            leverage_levels=5,
            leverage_max=245,
            entry_price="range",
            entry_points=3,
            side_split="candle",
            side_skew=0.5,
        ),
        ModelParams(leverage_levels=4, entry_price="typical", turnover_per_day=1.0),
        ModelParams(leverage_levels=6, entry_price="vwap", turnover_per_day=2.0),
    ],
)
def test_engine_matches_reference_on_real_data(
    binance_5m: Bars, tiers: MarginTiers, params: ModelParams
) -> None:
    bars = binance_5m.slice(2000, 2300)
    mask = np.zeros(len(bars), dtype=bool)
    mask[::7] = True
    mask[-1] = True
    assert_matches_reference(bars, params, PriceGrid(bucket_size=10.0), tiers, mask)


@st.composite
def random_market(draw: st.DrawFn) -> tuple[Bars, ModelParams, PriceGrid, np.ndarray]:
    n = draw(st.integers(2, 25))
    steps = draw(st.lists(st.sampled_from([FIVE_MIN, HOUR, 6 * HOUR, 86_400_000]), min_size=n))
    ts = np.cumsum([0, *steps[: n - 1]]).astype(np.int64) + 1_700_000_000_000
    moves = draw(st.lists(st.floats(-0.03, 0.03), min_size=n, max_size=n))
    wicks = draw(st.lists(st.tuples(st.floats(0, 0.02), st.floats(0, 0.02)), min_size=n))
    oi_moves = draw(st.lists(st.floats(-0.2, 0.2), min_size=n, max_size=n))
    price = draw(st.floats(0.5, 100_000))
    oi = draw(st.floats(1e3, 1e10))
    opens, highs, lows, closes, ois = [], [], [], [], []
    for i in range(n):
        o = price
        c = o * (1 + moves[i])
        highs.append(max(o, c) * (1 + wicks[i][0]))
        lows.append(min(o, c) * (1 - wicks[i][1]))
        opens.append(o)
        closes.append(c)
        oi *= 1 + oi_moves[i]
        ois.append(oi)
        price = c
    volume = np.array(draw(st.lists(st.floats(0, 1e6), min_size=n, max_size=n)))
    buy_share = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    # traded value: a price anywhere from a bit below the low to a bit above the high (clipped)
    where = np.array(draw(st.lists(st.floats(-0.1, 1.1), min_size=n, max_size=n)))
    vwap = np.array(lows) + (np.array(highs) - np.array(lows)) * where
    bars = Bars(
        ts,
        np.array(opens),
        np.array(highs),
        np.array(lows),
        np.array(closes),
        np.array(ois),
        volume=volume,
        taker_buy_volume=volume * buy_share,
        quote_volume=volume * vwap,
    )
    entry = draw(
        st.sampled_from([("close", 1), ("typical", 1), ("vwap", 1), ("range", 2), ("range", 3)])
    )
    lev_min = draw(st.floats(1.5, 20.0))  # 1x longs have no liquidation price
    params = ModelParams(
        leverage_levels=draw(st.integers(1, 6)),
        leverage_min=lev_min,
        leverage_max=draw(st.floats(lev_min, 245.0)),
        leverage_alpha=draw(st.floats(-1.0, 3.0)),
        position_usd=draw(st.sampled_from([1_000.0, 10_000.0, 5e6])),
        side_split=draw(st.sampled_from(["even", "taker", "candle"])),
        side_skew=draw(st.floats(0.0, 1.0)),
        entry_price=entry[0],
        entry_points=entry[1],
        half_life_hours=draw(st.sampled_from([0.0, 0.5, 24.0])),
        turnover_per_day=draw(st.sampled_from([0.0, 0.3, 5.0])),
        seed_fraction=draw(st.floats(0.0, 1.0)),
        prune_fraction=draw(st.sampled_from([1e-9, 1e-2, 0.3])),
        span_mass=draw(st.floats(0.5, 1.0)),
        span_min_fraction=draw(st.floats(0.01, 0.5)),
        span_room=draw(st.floats(0.0, 0.5)),
    )
    grid = PriceGrid(
        bucket_size=float(np.median(closes)) * draw(st.floats(1e-4, 0.05)),
        origin=draw(st.floats(-10.0, 10.0)),
    )
    mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return bars, params, grid, mask


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(market=random_market())
def test_engine_matches_reference_on_random_inputs(
    tiers: MarginTiers, market: tuple[Bars, ModelParams, PriceGrid, np.ndarray]
) -> None:
    bars, params, grid, mask = market
    assert_matches_reference(bars, params, grid, tiers, mask)


def run_in_pieces(
    bars: Bars,
    params: ModelParams,
    grid: PriceGrid,
    tiers: MarginTiers,
    mask: np.ndarray,
    cuts: list[int],
) -> tuple[np.ndarray, np.ndarray, list, bytes]:
    state: EngineState | None = None
    longs, shorts, snaps = [], [], []
    bounds = [0, *cuts, len(bars)]
    for a, b in itertools.pairwise(bounds):
        out = simulate(bars.slice(a, b), params, grid, tiers, state=state, snapshot_every=mask[a:b])
        assert out.state is not None
        state = EngineState.from_bytes(out.state.to_bytes())  # persisted between runs
        longs.append(out.predicted_long_usd)
        shorts.append(out.predicted_short_usd)
        snaps.extend(out.snapshots)
    assert state is not None
    return np.concatenate(longs), np.concatenate(shorts), snaps, state.to_bytes()


def assert_identical(full: tuple, pieces: tuple) -> None:
    assert np.array_equal(full[0], pieces[0])
    assert np.array_equal(full[1], pieces[1])
    assert len(full[2]) == len(pieces[2])
    for a, b in zip(full[2], pieces[2], strict=True):
        assert (a.timestamp, a.price, a.bucket_origin_index) == (
            b.timestamp,
            b.price,
            b.bucket_origin_index,
        )
        assert np.array_equal(a.long, b.long) and np.array_equal(a.short, b.short)
    assert full[3] == pieces[3]


def test_incremental_runs_equal_a_full_run_exactly(binance_5m: Bars, tiers: MarginTiers) -> None:
    bars = binance_5m.slice(0, 1500)
    # a 2-hour half-life re-bases the integer heatmap many times within 1,500 bars
    params = ModelParams(leverage_levels=10, half_life_hours=2.0, turnover_per_day=2.0)
    state0 = empty_state(PriceGrid(10.0))
    assert len(epochs(bar_drivers(bars, params, state0), bars, state0)) > 5
    grid = PriceGrid(bucket_size=10.0)
    mask = np.zeros(len(bars), dtype=bool)
    mask[::3] = True
    full = simulate(bars, params, grid, tiers, snapshot_every=mask)
    assert full.state is not None
    full_t = (
        full.predicted_long_usd,
        full.predicted_short_usd,
        full.snapshots,
        full.state.to_bytes(),
    )
    for cuts in ([1], [749], [1499], [100, 101, 102, 900], list(range(50, 1500, 137))):
        assert_identical(full_t, run_in_pieces(bars, params, grid, tiers, mask, cuts))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(market=random_market(), cut_fraction=st.floats(0.0, 1.0))
def test_incremental_equals_full_on_random_inputs(
    tiers: MarginTiers,
    market: tuple[Bars, ModelParams, PriceGrid, np.ndarray],
    cut_fraction: float,
) -> None:
    bars, params, grid, mask = market
    cut = min(len(bars) - 1, max(1, round(cut_fraction * len(bars))))
    full = simulate(bars, params, grid, tiers, snapshot_every=mask)
    assert full.state is not None
    full_t = (
        full.predicted_long_usd,
        full.predicted_short_usd,
        full.snapshots,
        full.state.to_bytes(),
    )
    assert_identical(full_t, run_in_pieces(bars, params, grid, tiers, mask, [cut]))


def test_snapshot_sink_receives_the_same_snapshots(binance_5m: Bars, tiers: MarginTiers) -> None:
    bars = binance_5m.slice(0, 600)
    params = ModelParams(leverage_levels=6)
    grid = PriceGrid(bucket_size=25.0)
    mask = np.ones(len(bars), dtype=bool)
    collected = simulate(bars, params, grid, tiers, snapshot_every=mask).snapshots
    blocks: list[SnapshotBlock] = []
    streamed = []

    def sink(block: SnapshotBlock) -> None:
        blocks.append(block)
        streamed.extend((s.timestamp, s.long.copy(), s.short.copy()) for s in block)

    result = simulate(bars, params, grid, tiers, snapshot_every=mask, snapshot_sink=sink)
    assert result.snapshots == [] and len(blocks) > 1
    assert [t for t, _, _ in streamed] == [s.timestamp for s in collected]
    for (_, lo, sh), snap in zip(streamed, collected, strict=True):
        assert np.array_equal(lo, snap.long) and np.array_equal(sh, snap.short)


def test_state_levels_equal_the_last_snapshot(binance_5m: Bars, tiers: MarginTiers) -> None:
    bars = binance_5m.slice(0, 300)
    params = ModelParams(leverage_levels=6)
    grid = PriceGrid(bucket_size=10.0)
    mask = np.zeros(len(bars), dtype=bool)
    mask[-1] = True
    result = simulate(bars, params, grid, tiers, snapshot_every=mask)
    assert result.state is not None
    levels = result.state.levels(grid, float(bars.close[-1]), params.span(params.profile(tiers)))
    snap = result.snapshots[-1]
    assert levels.bucket_origin_index == snap.bucket_origin_index
    assert np.array_equal(levels.long, snap.long) and np.array_equal(levels.short, snap.short)


def test_price_grid_indices_and_windows() -> None:
    grid = PriceGrid(bucket_size=10.0, origin=5.0)
    assert grid.index_of(np.array([5.0, 14.999, 15.0, 4.999])).tolist() == [0, 0, 1, -1]
    assert grid.lower_price(np.array([0, 3])).tolist() == [5.0, 35.0]
    # ±10 % around 100: 90 … 110 → buckets of [85,95) … [105,115)
    assert grid.window(100.0, 0.1) == (8, 11)
    with pytest.raises(ValueError):
        PriceGrid(bucket_size=0.0)


def test_add_vectors_sums_on_the_shared_grid() -> None:
    a = BucketVector(10, np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.0]))
    b = BucketVector(12, np.array([10.0, 20.0]), np.array([5.0, 5.0]))
    # b is an inverse venue reporting coin notional: 2 USD per unit
    total = add_vectors([a, b], usd_per_unit=[1.0, 2.0])
    assert total.first == 10
    assert total.long_usd.tolist() == [1.0, 2.0, 23.0, 40.0]
    assert total.short_usd.tolist() == [0.0, 1.0, 10.0, 10.0]


def test_params_round_trip_and_shipped_defaults() -> None:
    params = ModelParams.default()
    assert ModelParams.from_dict(params.to_dict()) == params
    shipped = json.loads(PARAMS_FILE.read_text())["params"]
    assert params.to_dict() == shipped
    with pytest.raises(ValueError, match="unknown model parameters"):
        ModelParams.from_dict({**params.to_dict(), "leverage": 3})
    with pytest.raises(ValueError):
        ModelParams(side_split="bogus")  # type: ignore[arg-type]


def test_bars_reject_unsorted_or_ragged_input() -> None:
    with pytest.raises(ValueError, match="increasing"):
        make_bars([(FIVE_MIN, 1, 1, 1, 1, 1), (0, 1, 1, 1, 1, 1)])
    with pytest.raises(ValueError, match="values"):
        Bars(np.array([0, 1]), np.ones(2), np.ones(2), np.ones(2), np.ones(1), np.ones(2))
    with pytest.raises(ValueError, match="close must be a positive finite price"):
        make_bars([(0, 1, 1, 1, 1, 1), (FIVE_MIN, 1, 1, 1, float("nan"), 1)])
    with pytest.raises(ValueError, match="open_interest_usd"):
        make_bars([(0, 1, 1, 1, 1, -1)])


def test_state_must_continue_forward_on_the_same_grid(tiers: MarginTiers) -> None:
    bars = make_bars([(0, 100, 100, 100, 100, 1000), (FIVE_MIN, 100, 100, 100, 100, 1001)])
    state = simulate(bars, one_level(), PriceGrid(1.0), tiers).state
    with pytest.raises(ValueError, match="not after"):
        simulate(bars, one_level(), PriceGrid(1.0), tiers, state=state)
    with pytest.raises(ValueError, match="different price grid"):
        simulate(bars.slice(1, 2), one_level(), PriceGrid(2.0), tiers, state=state)


def test_long_runs_in_chunks_equal_one_pass(
    binance_5m: Bars, tiers: MarginTiers, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.model

    bars = binance_5m.slice(0, 900)
    params = ModelParams(leverage_levels=8, half_life_hours=2.0)
    grid = PriceGrid(bucket_size=10.0)
    mask = np.zeros(len(bars), dtype=bool)
    mask[::4] = True
    one = simulate(bars, params, grid, tiers, snapshot_every=mask)
    monkeypatch.setattr(engine.model, "CHUNK_BARS", 128)
    chunked = simulate(bars, params, grid, tiers, snapshot_every=mask)
    assert one.state is not None and chunked.state is not None
    assert_identical(
        (one.predicted_long_usd, one.predicted_short_usd, one.snapshots, one.state.to_bytes()),
        (
            chunked.predicted_long_usd,
            chunked.predicted_short_usd,
            chunked.snapshots,
            chunked.state.to_bytes(),
        ),
    )


def test_vwap_entry_is_value_over_volume_inside_the_range() -> None:
    from engine.model.drivers import entry_prices

    bars = Bars(
        np.array([0, 300_000, 600_000, 900_000], dtype=np.int64),
        np.array([100.0, 100.0, 100.0, 100.0]),
        np.array([110.0, 110.0, 110.0, 110.0]),
        np.array([90.0, 90.0, 90.0, 90.0]),
        np.array([105.0, 105.0, 105.0, 105.0]),
        np.ones(4),
        volume=np.array([2.0, 2.0, 0.0, 4.0]),
        quote_volume=np.array([204.0, 300.0, 0.0, np.nan]),
    )
    # 204/2 = 102; 300/2 = 150 lies above the high → 110; no volume / no value → typical 101.67
    typical = (110.0 + 90.0 + 105.0) / 3.0
    got = entry_prices(bars, ModelParams(entry_price="vwap"))[:, 0]
    assert got.tolist() == pytest.approx([102.0, 110.0, typical, typical], rel=1e-15)
    no_value = Bars(bars.timestamp, bars.open, bars.high, bars.low, bars.close, np.ones(4))
    assert entry_prices(no_value, ModelParams(entry_price="vwap"))[:, 0] == pytest.approx(
        [typical] * 4, rel=1e-15
    )
