"""The heatmap model: open interest → leveraged positions → liquidation levels, bar by bar.

Public API (the materialization job, the backtest and calibration use it)::

    params = ModelParams.default()            # shipped calibrated values (engine/params.json)
    bars = Bars(timestamp, open, high, low, close, open_interest_usd)   # numpy arrays, epoch ms
    grid = PriceGrid(bucket_size=10.0)                    # maps.grid
    result = simulate(bars, params, grid, tiers, state=None, snapshot_every=None,
                      snapshot_sink=None)
    result.state                 # EngineState after the last bar; .to_bytes() / .from_bytes()
    result.predicted_long_usd    # per bar: long notional liquidated in that bar
    result.predicted_short_usd
    result.snapshots             # list[Snapshot] for bars where snapshot_every is True
                                 # (empty when snapshot_sink is given: blocks go to the sink)

The model, per bar ``u`` (bar-open timestamps; open interest is the value at bar end):

1. **Consumption.** The bar trades through ``[low, high]`` extended to the previous close (so a
   gap between bars counts as traded through). Longs with ``LP ≥ low`` and shorts with
   ``LP ≤ high`` are liquidated; their current notional is the bar's predicted liquidations.
   This uses only the state after ``u−1`` and bar ``u``'s range (walk-forward).
2. **Closes and decay.** Open interest is tracked in contracts (``OI_usd / close``) so price moves
   alone do not open or close anything. A decrease closes that fraction of every open position
   (proportional); an optional half-life decays all positions by the elapsed time.
   **Turnover** (``turnover_per_day``, a Poisson rate) closes the fraction
   ``1 − exp(−rate·Δt)`` of every position and reopens as many contracts at this bar: trading
   that net open interest does not show, and what keeps fresh levels near the price for small
   moves to reach.
3. **Opens.** An increase (plus the turnover) opens that many contracts as *both* a long and a
   short (weighted by the side split: even, taker-flow share or candle direction), at the entry
   price (close, typical price, the bar's VWAP or spread over its range), spread over the leverage
   distribution (``engine.leverage_profile``); each level's liquidation price comes from the
   market's tier table. On a fresh state, the first bar opens ``seed_fraction`` of its open
   interest. Positions whose remaining fraction falls below ``prune_fraction`` are dropped.

Snapshots (heatmaps) are the open notional per grid bucket after the bar, over the full span
the leverage profile reaches (``ModelParams.span``: at least ±30 % of the price, wide enough
that 99.5 % of each side's profile weight lies in its inner three quarters), per side and split
by leverage band (``maps.bands``: ≤ 10x, 10–25x, 25–50x, 50–100x, > 100x, from each cohort's
leverage level); a side's total is the exact integer sum of its bands.

Why it is fast and exact: positions are cohorts with exact liquidation prices (``cohorts``);
closes and decay are one global log-scale (``drivers``); deaths are found for all cohorts at
once (``fates``), so there is no per-position Python loop; the heatmap is kept in integer units
(``units``, ``blocks``, ``heatmap``), so an incremental run from a saved state (``state``) is
bit-for-bit a full recompute. ``params``, ``bars`` and ``snapshots`` hold the inputs and outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.leverage_profile import LeverageProfile
from engine.model.arrays import BoolArray, FloatArray
from engine.model.bars import Bars
from engine.model.cohorts import concat_state, new_cohorts
from engine.model.drivers import bar_drivers
from engine.model.fates import cohort_fates, predict_only, predicted_liquidations
from engine.model.heatmap import advance_book
from engine.model.params import MODEL_NAME, ModelParams
from engine.model.snapshots import Snapshot, SnapshotBlock, SnapshotSink
from engine.model.state import EngineState, empty_state
from engine.tiers import MarginTiers
from maps.grid import PriceGrid

__all__ = [
    "MODEL_NAME",
    "Bars",
    "EngineState",
    "ModelParams",
    "SimulationResult",
    "Snapshot",
    "SnapshotBlock",
    "SnapshotSink",
    "simulate",
]


@dataclass
class SimulationResult:
    """What a run returns: the state after its last bar, per-bar liquidations, snapshots."""

    state: EngineState | None
    predicted_long_usd: FloatArray
    predicted_short_usd: FloatArray
    snapshots: list[Snapshot] = field(default_factory=list)


def simulate(
    bars: Bars,
    params: ModelParams,
    grid: PriceGrid,
    tiers: MarginTiers,
    state: EngineState | None = None,
    snapshot_every: BoolArray | None = None,
    snapshot_sink: SnapshotSink | None = None,
    *,
    keep_state: bool = True,
    profile: LeverageProfile | None = None,
) -> SimulationResult:
    """Run the model over ``bars`` continuing from ``state`` (see the module docstring).

    ``snapshot_sink`` receives ``SnapshotBlock``s as they are produced instead of collecting
    ``Snapshot``s in the result (for long runs). ``keep_state=False`` skips building the final
    state and heatmap (backtests that only need predicted liquidations). ``profile`` overrides
    the leverage profile computed from ``params`` and ``tiers`` (calibration reuses one).
    """
    n = len(bars)
    if n > CHUNK_BARS and (keep_state or snapshot_every is not None):
        # long runs go in chunks: a chunked run equals a single one exactly (the same property
        # incremental runs rely on), and it keeps the cohort arrays small and in cache
        return _simulate_chunked(
            bars, params, grid, tiers, state, snapshot_every, snapshot_sink, keep_state, profile
        )
    if state is None:
        state = empty_state(grid)
    elif (state.bucket_size, state.grid_origin) != (grid.bucket_size, grid.origin):
        raise ValueError("the saved state was built on a different price grid")
    if snapshot_every is not None:
        snapshot_every = np.asarray(snapshot_every, dtype=bool)
        if snapshot_every.shape != (n,):
            raise ValueError("snapshot_every must be one boolean per bar")
        if not snapshot_every.any():
            snapshot_every = None
    if n == 0:
        return SimulationResult(state, np.zeros(0), np.zeros(0))
    if profile is None:
        profile = params.profile(tiers)
    drivers = bar_drivers(bars, params, state)
    if not keep_state and snapshot_every is None and len(state.side) == 0:
        # predictions only, from a fresh state: the same numbers without every cohort in memory
        long_only, short_only = predict_only(drivers, profile, params)
        return SimulationResult(None, long_only, short_only)
    new = new_cohorts(drivers, profile, params)
    cohorts = concat_state(state, new)
    fates = cohort_fates(cohorts, drivers, params)
    long_usd, short_usd = predicted_liquidations(cohorts, fates, drivers)
    collected: list[Snapshot] = []
    if not keep_state and snapshot_every is None:
        return SimulationResult(None, long_usd, short_usd)

    def collect(block: SnapshotBlock) -> None:
        collected.extend(
            Snapshot(
                s.timestamp,
                s.price,
                s.bucket_origin_index,
                s.long.copy(),
                s.short.copy(),
                s.long_bands.copy(),
                s.short_bands.copy(),
            )
            for s in block
        )

    emit = snapshot_sink or collect
    span = params.span(profile)
    final = advance_book(bars, grid, span, state, cohorts, fates, drivers, snapshot_every, emit)
    return SimulationResult(final if keep_state else None, long_usd, short_usd, collected)


CHUNK_BARS = 16_384


def _simulate_chunked(
    bars: Bars,
    params: ModelParams,
    grid: PriceGrid,
    tiers: MarginTiers,
    state: EngineState | None,
    snapshot_every: BoolArray | None,
    snapshot_sink: SnapshotSink | None,
    keep_state: bool,
    profile: LeverageProfile | None,
) -> SimulationResult:
    if profile is None:
        profile = params.profile(tiers)
    longs: list[FloatArray] = []
    shorts: list[FloatArray] = []
    snapshots: list[Snapshot] = []
    for a in range(0, len(bars), CHUNK_BARS):
        b = min(a + CHUNK_BARS, len(bars))
        mask = None if snapshot_every is None else np.asarray(snapshot_every)[a:b]
        part = simulate(
            bars.slice(a, b), params, grid, tiers, state, mask, snapshot_sink, profile=profile
        )
        state = part.state
        longs.append(part.predicted_long_usd)
        shorts.append(part.predicted_short_usd)
        snapshots.extend(part.snapshots)
    return SimulationResult(
        state if keep_state else None, np.concatenate(longs), np.concatenate(shorts), snapshots
    )
