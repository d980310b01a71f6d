"""The heatmap model: open interest → leveraged positions → liquidation levels, bar by bar.

Public API (used by the materialization job and the backtest)::

    params = ModelParams.default()            # shipped calibrated values (engine/params.json)
    params.to_dict() / ModelParams.from_dict(d); params.version
    bars = Bars(timestamp, open, high, low, close, open_interest_usd,
                volume=None, taker_buy_volume=None)       # numpy arrays, bar-open epoch ms
    grid = PriceGrid(bucket_size=10.0)                    # maps.grid
    result = simulate(bars, params, grid, tiers, state=None, snapshot_every=None,
                      snapshot_sink=None)
    result.state                 # EngineState after the last bar; .to_bytes() / .from_bytes()
    result.predicted_long_usd    # per bar: long notional liquidated in that bar
    result.predicted_short_usd
    result.snapshots             # list[Snapshot] for bars where snapshot_every is True
                                 # (empty when snapshot_sink is given: blocks go to the sink)

``Snapshot``: ``timestamp``, ``price`` (the bar's close), ``bucket_origin_index`` (absolute grid
index of ``long[0]``/``short[0]``; lower price edge = ``grid.origin + index·bucket_size``),
``long``/``short`` (USD notional per bucket over ``close·(1 ± params.window_fraction)``).

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

Snapshots (heatmaps) are the open notional per grid bucket after the bar, over the window.

Implementation: every (bar, side, entry point, leverage level) is a *cohort* with its own exact
liquidation price. Closes and decay act on all positions alike, so they are one global log-scale
``L``; a cohort's notional at bar ``u`` is ``w·exp(L_u − L_birth)``. A cohort dies at the first
later bar whose range reaches its LP — found for all cohorts at once by binary lifting over a
sparse table of running lows/highs — or when pruned; no per-position Python loop. Heatmap
buckets are kept as int64 multiples of a quantum so that sums do not depend on the order of
additions: an incremental run from a saved state is bit-for-bit a full recompute.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from engine.leverage_profile import LeverageProfile
from engine.model.arrays import BoolArray, FloatArray, IntArray
from engine.model.bars import Bars
from engine.model.cohorts import Cohorts, concat_state, new_cohorts
from engine.model.drivers import BarDrivers, bar_drivers
from engine.model.fates import Fates, cohort_fates, predicted_liquidations
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

# Heatmap units: int64 multiples of QUANTUM_PER_OI·(open interest at the epoch start). An epoch
# restarts when the global scale has fallen by REBASE_LOG or open interest grew OI_GROWTH-fold,
# which bounds units to ≈ (book / OI)·e^REBASE_LOG / QUANTUM_PER_OI ≪ 2**63.
QUANTUM_PER_OI = 1e-15
REBASE_LOG = 7.0
OI_GROWTH_REBASE = 64.0
MAX_UNITS = 2.0**62


@dataclass
class SimulationResult:
    state: EngineState | None
    predicted_long_usd: FloatArray
    predicted_short_usd: FloatArray
    snapshots: list[Snapshot] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# heatmap epochs and snapshots


@dataclass(frozen=True)
class Epoch:
    start: int  # first bar (its closes/prunes happen before the epoch's units are set)
    stop: int
    ref_log_scale: float
    quantum: float
    oi_basis: float
    rebuilt: bool  # units recomputed from the open cohorts at ``start``


def epochs(drivers: BarDrivers, bars: Bars, state: EngineState) -> list[Epoch]:
    """Split the run where heatmap units are re-based (decided bar by bar, so split-invariant)."""
    n = len(bars)
    out: list[Epoch] = []
    oi_usd = bars.open_interest_usd
    neg_l = -drivers.log_scale

    def fresh_epoch(at: int) -> tuple[float, float, float]:
        basis = max(float(oi_usd[at]), 1.0)
        return float(drivers.log_scale[at]), basis * QUANTUM_PER_OI, basis

    if state.last_timestamp < 0:
        start, rebuilt, search_from = 0, True, 1
        ref, quantum, basis = fresh_epoch(0)
    else:
        start, rebuilt, search_from = 0, False, 0
        ref, quantum, basis = state.ref_log_scale, state.quantum, state.oi_basis
    while True:
        by_scale = int(np.searchsorted(neg_l, -(ref - REBASE_LOG), side="right"))
        grown = np.flatnonzero(oi_usd[search_from:] > OI_GROWTH_REBASE * basis)
        by_oi = search_from + int(grown[0]) if len(grown) else n
        nxt = max(min(by_scale, by_oi), search_from)
        if nxt >= n:
            out.append(Epoch(start, n, ref, quantum, basis, rebuilt))
            return out
        if nxt > start:
            out.append(Epoch(start, nxt, ref, quantum, basis, rebuilt))
        start, rebuilt, search_from = nxt, True, nxt + 1
        ref, quantum, basis = fresh_epoch(nxt)


def cohort_units(
    notional: FloatArray, log_scale_at_birth: FloatArray, ref: float, quantum: float
) -> IntArray:
    units = np.rint(notional * np.exp(ref - log_scale_at_birth) / quantum)
    if len(units) and units.max() >= MAX_UNITS:
        raise OverflowError("heatmap units overflow: open interest or book size out of range")
    return units.astype(np.int64)


@dataclass
class UnitBook:
    """Dense int64 heatmap per side over absolute buckets ``origin .. origin+len``."""

    origin: int
    long: IntArray
    short: IntArray

    def add(self, bucket: IntArray, side: npt.NDArray[np.int8], units: IntArray) -> None:
        longs = side == 1
        np.add.at(self.long, bucket[longs] - self.origin, units[longs])
        np.add.at(self.short, bucket[~longs] - self.origin, units[~longs])


BLOCK_ROWS = 128
BLOCK_CELLS = 1 << 19


def _blocks(lo: IntArray, hi: IntArray) -> Iterator[tuple[int, int]]:
    """Snapshot ranges of at most BLOCK_ROWS whose union window fits BLOCK_CELLS cells."""
    a, stop = 0, len(lo)
    while a < stop:
        b = min(a + BLOCK_ROWS, stop)
        while b - a > 1 and (hi[a:b].max() - lo[a:b].min()) * (b - a) > BLOCK_CELLS:
            b = a + (b - a) // 2
        yield a, b
        a = b


class _Scratch:
    """Reused buffers for snapshot blocks (avoids page-faulting fresh arrays per block)."""

    def __init__(self) -> None:
        self.units = np.zeros(0, dtype=np.int64)
        self.long = np.zeros(0)
        self.short = np.zeros(0)

    def take(self, rows: int, width: int) -> tuple[IntArray, FloatArray, FloatArray]:
        cells = rows * width
        if len(self.units) < cells:
            self.units = np.zeros(cells, dtype=np.int64)
            self.long = np.zeros(cells)
            self.short = np.zeros(cells)
        units = self.units[:cells].reshape(rows, width)
        return (
            units,
            self.long[:cells].reshape(rows, width),
            self.short[:cells].reshape(rows, width),
        )


def _running_sum_rows(units: IntArray) -> None:
    """In place, row ``i`` becomes the sum of rows ``0..i`` (integers: exact in any order).

    One vectorized add per row: numpy's ``cumsum(axis=0)`` walks a C-ordered block column by
    column and is over twice as slow here; blocks have at most BLOCK_ROWS rows.
    """
    for i in range(1, units.shape[0]):
        np.add(units[i], units[i - 1], out=units[i])


def _run_snapshots(
    book: UnitBook,
    epoch: Epoch,
    drivers: BarDrivers,
    bars: Bars,
    events: tuple[npt.NDArray[np.int64], IntArray, npt.NDArray[np.int8], IntArray],
    mask: BoolArray,
    lo: IntArray,
    hi: IntArray,
    emit: SnapshotSink,
    scratch: _Scratch,
) -> None:
    """Advance ``book`` through the epoch's bars, emitting snapshots for bars in ``mask``.

    ``events`` = (bar, bucket, side, ±units) sorted by bar. A block's row ``i`` is the book after
    its ``i``-th snapshot bar: the book before the block plus the running sum of the events up to
    that bar (integers, so the order of additions does not matter).
    """
    ev_bar, ev_bucket, ev_side, ev_units = events
    rows = np.flatnonzero(mask[epoch.start : epoch.stop]) + epoch.start
    e0 = 0
    for ra, rb in _blocks(lo[rows], hi[rows]):
        sel = rows[ra:rb]
        e1 = int(np.searchsorted(ev_bar, sel[-1], side="right"))
        first = int(lo[sel].min())
        width = int(hi[sel].max()) - first
        bkt, sd, un = ev_bucket[e0:e1], ev_side[e0:e1], ev_units[e0:e1]
        cell = np.searchsorted(sel, ev_bar[e0:e1], side="left") * width + (bkt - first)
        inside = (bkt >= first) & (bkt < first + width)
        scale = epoch.quantum * np.exp(drivers.log_scale[sel] - epoch.ref_log_scale)
        out_units, out_long, out_short = scratch.take(len(sel), width)
        flat = out_units.reshape(-1)
        for units, side_value, out in ((book.long, 1, out_long), (book.short, -1, out_short)):
            flat[:] = 0
            a = max(first, book.origin)
            b = min(first + width, book.origin + len(units))
            if b > a:
                out_units[0, a - first : b - first] = units[a - book.origin : b - book.origin]
            pick = inside & (sd == side_value)
            np.add.at(flat, cell[pick], un[pick])
            _running_sum_rows(out_units)
            np.multiply(out_units, scale[:, None], out=out)
        book.add(bkt, sd, un)
        e0 = e1
        emit(
            SnapshotBlock(
                timestamp=bars.timestamp[sel],
                price=bars.close[sel],
                lo=lo[sel],
                hi=hi[sel],
                first=first,
                long=out_long,
                short=out_short,
            )
        )
    book.add(ev_bucket[e0:], ev_side[e0:], ev_units[e0:])


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
    new = new_cohorts(drivers, profile, params)
    cohorts = concat_state(state, new)
    fates = cohort_fates(cohorts, drivers, params)
    long_usd, short_usd = predicted_liquidations(cohorts, fates, drivers)
    collected: list[Snapshot] = []
    if not keep_state and snapshot_every is None:
        return SimulationResult(None, long_usd, short_usd)

    def collect(block: SnapshotBlock) -> None:
        collected.extend(
            Snapshot(s.timestamp, s.price, s.bucket_origin_index, s.long.copy(), s.short.copy())
            for s in block
        )

    emit = snapshot_sink or collect
    final = _advance_book(bars, grid, params, state, cohorts, fates, drivers, snapshot_every, emit)
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


def _run_epoch(
    book: UnitBook,
    epoch: Epoch,
    drivers: BarDrivers,
    bars: Bars,
    cohorts: Cohorts,
    bucket: IntArray,
    units: IntArray,
    death: npt.NDArray[np.int64],
    dying: npt.NDArray[np.int64],
    born: npt.NDArray[np.int64],
    mask: BoolArray,
    lo: IntArray,
    hi: IntArray,
    emit: SnapshotSink,
    scratch: _Scratch,
) -> None:
    """Events of one epoch (deaths subtract, births add units) sorted by bar, then the book."""
    ev_rows = np.concatenate([dying, born])
    ev_bar = np.concatenate([death[dying], cohorts.birth[born]])
    ev_sign = np.concatenate(
        [np.full(len(dying), -1, dtype=np.int64), np.ones(len(born), np.int64)]
    )
    order = np.argsort(ev_bar, kind="stable")
    ev_rows = ev_rows[order]
    events = (
        ev_bar[order],
        bucket[ev_rows],
        cohorts.side[ev_rows],
        units[ev_rows] * ev_sign[order],
    )
    _run_snapshots(book, epoch, drivers, bars, events, mask, lo, hi, emit, scratch)


def _advance_book(
    bars: Bars,
    grid: PriceGrid,
    params: ModelParams,
    state: EngineState,
    cohorts: Cohorts,
    fates: Fates,
    drivers: BarDrivers,
    snapshot_every: BoolArray | None,
    emit: SnapshotSink,
) -> EngineState:
    """Integer heatmap through the run (snapshots on the way) and the state after the last bar.

    Cohorts are in birth order, so each epoch's births are a slice; the cohorts that matter in
    an epoch are those open at its start plus its births, so the work per epoch is proportional
    to the open book, not to all cohorts ever created.
    """
    n = len(bars)
    n_state = len(state.side)
    bucket = np.empty(len(cohorts.side), dtype=np.int64)
    bucket[:n_state] = state.bucket
    bucket[n_state:] = grid.index_of(cohorts.liquidation_price[n_state:])
    death = fates.death
    if snapshot_every is not None:
        lo = grid.index_of(bars.close * (1.0 - params.window_fraction))
        hi = grid.index_of(bars.close * (1.0 + params.window_fraction)) + 1
        mask = snapshot_every
    else:
        lo = hi = np.zeros(n, dtype=np.int64)
        mask = np.zeros(n, dtype=bool)
    # one dense book covering every bucket any cohort of this run occupies
    span_lo = [int(bucket.min())] if len(bucket) else []
    span_hi = [int(bucket.max()) + 1] if len(bucket) else []
    if len(state.long_units):
        span_lo.append(state.units_origin)
        span_hi.append(state.units_origin + len(state.long_units))
    origin = min(span_lo, default=0)
    size = max(span_hi, default=0) - origin
    units = np.zeros(len(cohorts.side), dtype=np.int64)
    units[:n_state] = state.units
    epoch_list = epochs(drivers, bars, state)
    book = UnitBook(origin, np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64))
    if not epoch_list[0].rebuilt and len(state.long_units):
        off = state.units_origin - origin
        book.long[off : off + len(state.long_units)] = state.long_units
        book.short[off : off + len(state.short_units)] = state.short_units
    birth_slices = np.searchsorted(cohorts.birth, [e.start for e in epoch_list] + [n])
    scratch = _Scratch()
    if len(epoch_list) == 1 and not epoch_list[0].rebuilt:
        # the common incremental case: one epoch continuing the saved book, no index lists
        epoch = epoch_list[0]
        units[n_state:] = cohort_units(
            cohorts.notional_at_birth[n_state:],
            cohorts.log_scale_at_birth[n_state:],
            epoch.ref_log_scale,
            epoch.quantum,
        )
        dying = np.flatnonzero(death < n)
        _run_epoch(
            book,
            epoch,
            drivers,
            bars,
            cohorts,
            bucket,
            units,
            death,
            dying,
            np.arange(n_state, len(units)),
            mask,
            lo,
            hi,
            emit,
            scratch,
        )
    else:
        open_rows = np.arange(n_state, dtype=np.int64)  # open before the first epoch's births
        for i, epoch in enumerate(epoch_list):
            s, e = epoch.start, epoch.stop
            born = np.arange(birth_slices[i], birth_slices[i + 1], dtype=np.int64)
            if epoch.rebuilt:
                # open at the rebase: not dead by bar ``s`` (its hits, closes and prunes included)
                open_rows = open_rows[death[open_rows] > s]
                units[open_rows] = cohort_units(
                    cohorts.notional_at_birth[open_rows],
                    cohorts.log_scale_at_birth[open_rows],
                    epoch.ref_log_scale,
                    epoch.quantum,
                )
                book.long[:] = 0
                book.short[:] = 0
                book.add(bucket[open_rows], cohorts.side[open_rows], units[open_rows])
            units[born] = cohort_units(
                cohorts.notional_at_birth[born],
                cohorts.log_scale_at_birth[born],
                epoch.ref_log_scale,
                epoch.quantum,
            )
            first_death_bar = s + 1 if epoch.rebuilt else s
            candidates = np.concatenate([open_rows, born])
            cand_death = death[candidates]
            dying = candidates[(cand_death >= first_death_bar) & (cand_death < e)]
            _run_epoch(
                book,
                epoch,
                drivers,
                bars,
                cohorts,
                bucket,
                units,
                death,
                dying,
                born,
                mask,
                lo,
                hi,
                emit,
                scratch,
            )
            open_rows = candidates[cand_death >= e]
    last = epoch_list[-1]
    alive = death >= n  # open after the last bar, in birth order
    nz = np.flatnonzero((book.long != 0) | (book.short != 0))
    a, b = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, 0)
    # an empty book has no place on the grid: origin 0, so equal states serialize equally
    units_origin = origin + a if len(nz) else 0
    return EngineState(
        bucket_size=grid.bucket_size,
        grid_origin=grid.origin,
        last_timestamp=int(bars.timestamp[-1]),
        last_close=float(bars.close[-1]),
        last_oi_contracts=float(drivers.oi_contracts[-1]),
        log_scale=float(drivers.log_scale[-1]),
        ref_log_scale=last.ref_log_scale,
        quantum=last.quantum,
        oi_basis=last.oi_basis,
        side=cohorts.side[alive],
        liquidation_price=cohorts.liquidation_price[alive],
        notional_at_birth=cohorts.notional_at_birth[alive],
        log_scale_at_birth=cohorts.log_scale_at_birth[alive],
        bucket=bucket[alive],
        units=units[alive],
        units_origin=units_origin,
        long_units=book.long[a:b].copy(),
        short_units=book.short[a:b].copy(),
    )
