"""The integer heatmap through a run, snapshots on the way, and the state after its last bar."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.model.arrays import BoolArray, IntArray
from engine.model.bars import Bars
from engine.model.blocks import Scratch, run_snapshots
from engine.model.cohorts import Cohorts, channels
from engine.model.drivers import BarDrivers
from engine.model.fates import Fates
from engine.model.snapshots import SnapshotSink
from engine.model.state import EngineState
from engine.model.units import Epoch, UnitBook, cohort_units, epochs
from maps.grid import PriceGrid


def _run_epoch(
    book: UnitBook,
    epoch: Epoch,
    drivers: BarDrivers,
    bars: Bars,
    cohorts: Cohorts,
    bucket: IntArray,
    channel: IntArray,
    units: IntArray,
    death: npt.NDArray[np.int64],
    dying: npt.NDArray[np.int64],
    born: npt.NDArray[np.int64],
    mask: BoolArray,
    lo: IntArray,
    hi: IntArray,
    emit: SnapshotSink,
    scratch: Scratch,
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
        channel[ev_rows],
        units[ev_rows] * ev_sign[order],
    )
    run_snapshots(book, epoch, drivers, bars, events, mask, lo, hi, emit, scratch)


def advance_book(
    bars: Bars,
    grid: PriceGrid,
    span: tuple[float, float],
    state: EngineState,
    cohorts: Cohorts,
    fates: Fates,
    drivers: BarDrivers,
    snapshot_every: BoolArray | None,
    emit: SnapshotSink,
) -> EngineState:
    """Integer heatmap through the run (snapshots on the way) and the state after the last bar.

    ``span`` = (below, above): the snapshot window, fractions of each bar's close.
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
        lo = grid.index_of(bars.close * (1.0 - span[0]))
        hi = grid.index_of(bars.close * (1.0 + span[1])) + 1
        mask = snapshot_every
    else:
        lo = hi = np.zeros(n, dtype=np.int64)
        mask = np.zeros(n, dtype=bool)
    # one dense book covering every bucket any cohort of this run occupies
    span_lo = [int(bucket.min())] if len(bucket) else []
    span_hi = [int(bucket.max()) + 1] if len(bucket) else []
    saved_width = state.band_units.shape[1]
    if saved_width:
        span_lo.append(state.units_origin)
        span_hi.append(state.units_origin + saved_width)
    origin = min(span_lo, default=0)
    size = max(span_hi, default=0) - origin
    units = np.zeros(len(cohorts.side), dtype=np.int64)
    units[:n_state] = state.units
    epoch_list = epochs(drivers, bars, state)
    channel = channels(cohorts.side, cohorts.band)
    book = UnitBook.empty(origin, size)
    if not epoch_list[0].rebuilt and saved_width:
        off = state.units_origin - origin
        book.units[:, off : off + saved_width] = state.band_units
    birth_slices = np.searchsorted(cohorts.birth, [e.start for e in epoch_list] + [n])
    scratch = Scratch()
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
            channel,
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
                book.units[:] = 0
                book.add(bucket[open_rows], channel[open_rows], units[open_rows])
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
                channel,
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
    nz = np.flatnonzero((book.units != 0).any(axis=0))
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
        band=cohorts.band[alive],
        liquidation_price=cohorts.liquidation_price[alive],
        notional_at_birth=cohorts.notional_at_birth[alive],
        log_scale_at_birth=cohorts.log_scale_at_birth[alive],
        bucket=bucket[alive],
        units=units[alive],
        units_origin=units_origin,
        band_units=book.units[:, a:b].copy(),
    )
