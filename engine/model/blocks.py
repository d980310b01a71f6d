"""Snapshot blocks: the unit book after each snapshot bar, as dense rows in USD.

A block's rows are the book before the block plus running sums of the run's events (births add
units, deaths subtract them), all integers, so the order of additions does not matter.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from engine.model.arrays import BoolArray, FloatArray, IntArray
from engine.model.bars import Bars
from engine.model.drivers import BarDrivers
from engine.model.snapshots import SnapshotBlock, SnapshotSink
from engine.model.units import Epoch, UnitBook

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


class Scratch:
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

    One vectorized add per row rather than ``cumsum(axis=0)``, which walks a C-ordered block
    column by column and is slower here; blocks have at most BLOCK_ROWS rows.
    """
    for i in range(1, units.shape[0]):
        np.add(units[i], units[i - 1], out=units[i])


def run_snapshots(
    book: UnitBook,
    epoch: Epoch,
    drivers: BarDrivers,
    bars: Bars,
    events: tuple[npt.NDArray[np.int64], IntArray, npt.NDArray[np.int8], IntArray],
    mask: BoolArray,
    lo: IntArray,
    hi: IntArray,
    emit: SnapshotSink,
    scratch: Scratch,
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
