"""Snapshot blocks: the unit book after each snapshot bar, as dense rows in USD.

Rows are kept per channel (side × leverage band); a side's row is the integer sum of its bands.

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
from engine.model.units import CHANNELS, Epoch, UnitBook
from maps.bands import BANDS

BLOCK_ROWS = 128
BLOCK_CELLS = 1 << 17  # per channel: ten channels (two sides × five leverage bands)


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
        self.bands = np.zeros(0)
        self.side_units = np.zeros(0, dtype=np.int64)
        self.long = np.zeros(0)
        self.short = np.zeros(0)

    def take(
        self, rows: int, width: int
    ) -> tuple[IntArray, FloatArray, IntArray, FloatArray, FloatArray]:
        """(channel units, channel USD) of shape (CHANNELS, rows, width), a side's units and the
        long and short USD of shape (rows, width)."""
        cells = rows * width
        if len(self.long) < cells:
            self.units = np.zeros(CHANNELS * cells, dtype=np.int64)
            self.bands = np.zeros(CHANNELS * cells)
            self.side_units = np.zeros(cells, dtype=np.int64)
            self.long = np.zeros(cells)
            self.short = np.zeros(cells)
        c = CHANNELS * cells
        return (
            self.units[:c].reshape(CHANNELS, rows, width),
            self.bands[:c].reshape(CHANNELS, rows, width),
            self.side_units[:cells].reshape(rows, width),
            self.long[:cells].reshape(rows, width),
            self.short[:cells].reshape(rows, width),
        )


def _running_sum_rows(units: IntArray) -> None:
    """In place, row ``i`` (axis 1, every channel) becomes the sum of rows ``0..i`` (integers:
    exact in any order).

    One vectorized add per row rather than ``cumsum(axis=1)``, which walks a C-ordered block
    column by column and is slower here; blocks have at most BLOCK_ROWS rows.
    """
    for i in range(1, units.shape[1]):
        np.add(units[:, i], units[:, i - 1], out=units[:, i])


def run_snapshots(
    book: UnitBook,
    epoch: Epoch,
    drivers: BarDrivers,
    bars: Bars,
    events: tuple[npt.NDArray[np.int64], IntArray, IntArray, IntArray],
    mask: BoolArray,
    lo: IntArray,
    hi: IntArray,
    emit: SnapshotSink,
    scratch: Scratch,
) -> None:
    """Advance ``book`` through the epoch's bars, emitting snapshots for bars in ``mask``.

    ``events`` = (bar, bucket, channel, ±units) sorted by bar (channel: side × leverage band,
    ``cohorts.channels``). A block's row ``i`` is the book after
    its ``i``-th snapshot bar: the book before the block plus the running sum of the events up to
    that bar (integers, so the order of additions does not matter).
    """
    ev_bar, ev_bucket, ev_channel, ev_units = events
    rows = np.flatnonzero(mask[epoch.start : epoch.stop]) + epoch.start
    e0 = 0
    for ra, rb in _blocks(lo[rows], hi[rows]):
        sel = rows[ra:rb]
        e1 = int(np.searchsorted(ev_bar, sel[-1], side="right"))
        first = int(lo[sel].min())
        width = int(hi[sel].max()) - first
        count = len(sel)
        bkt, ch, un = ev_bucket[e0:e1], ev_channel[e0:e1], ev_units[e0:e1]
        inside = (bkt >= first) & (bkt < first + width)
        row = np.searchsorted(sel, ev_bar[e0:e1], side="left")
        cell = (ch[inside] * count + row[inside]) * width + (bkt[inside] - first)
        scale = epoch.quantum * np.exp(drivers.log_scale[sel] - epoch.ref_log_scale)
        out_units, out_bands, side_units, out_long, out_short = scratch.take(count, width)
        out_units[...] = 0
        a = max(first, book.origin)
        b = min(first + width, book.origin + book.units.shape[1])
        if b > a:
            out_units[:, 0, a - first : b - first] = book.units[
                :, a - book.origin : b - book.origin
            ]
        np.add.at(out_units.reshape(-1), cell, un[inside])
        _running_sum_rows(out_units)
        np.multiply(out_units, scale[None, :, None], out=out_bands)
        # a side's total: the exact integer sum of its bands, then scaled like each band
        for channels, out in ((slice(0, BANDS), out_long), (slice(BANDS, CHANNELS), out_short)):
            np.sum(out_units[channels], axis=0, out=side_units)
            np.multiply(side_units, scale[:, None], out=out)
        book.add(bkt, ch, un)
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
                long_bands=out_bands[:BANDS],
                short_bands=out_bands[BANDS:],
            )
        )
    book.add(ev_bucket[e0:], ev_channel[e0:], ev_units[e0:])
