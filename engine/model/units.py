"""Integer heatmap units: the quantum, epochs of one quantum, and the dense unit book.

Heatmap buckets are int64 multiples of a quantum so that sums do not depend on the order of
additions: an incremental run from a saved state is bit-for-bit a full recompute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.model.arrays import FloatArray, IntArray
from engine.model.bars import Bars
from engine.model.drivers import BarDrivers
from engine.model.state import EngineState
from maps.bands import BANDS

# Heatmap units: int64 multiples of QUANTUM_PER_OI·(open interest at the epoch start). An epoch
# restarts when the global scale has fallen by REBASE_LOG or open interest grew
# OI_GROWTH_REBASE-fold, which bounds units to ≈ (book / OI)·e^REBASE_LOG / QUANTUM_PER_OI ≪ 2**63.
QUANTUM_PER_OI = 1e-15
REBASE_LOG = 7.0
OI_GROWTH_REBASE = 64.0
MAX_UNITS = 2.0**62
CHANNELS = 2 * BANDS  # long bands, then short bands


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
    """Dense int64 heatmap per channel (side × leverage band, ``cohorts.channels``) over
    absolute buckets ``origin .. origin+width``: ``units`` has shape ``(2·BANDS, width)``.

    A side's total is the integer sum of its bands, so totals are exact whatever the split.
    """

    origin: int
    units: IntArray

    @classmethod
    def empty(cls, origin: int, width: int) -> UnitBook:
        return cls(origin, np.zeros((CHANNELS, width), dtype=np.int64))

    @property
    def long(self) -> IntArray:
        return self.units[:BANDS].sum(axis=0)

    @property
    def short(self) -> IntArray:
        return self.units[BANDS:].sum(axis=0)

    def add(self, bucket: IntArray, channel: IntArray, units: IntArray) -> None:
        np.add.at(self.units, (channel, bucket - self.origin), units)
