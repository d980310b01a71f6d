"""Snapshot blocks: the unit book after each snapshot bar, as dense rows in USD.

Rows are kept per channel (side × leverage band), each over the columns it occupies only (a band
covers a fraction of the window: together about 1.2 windows on bench/bench_engine.py's bars,
against 10 if each were dense); a side's row is the integer sum of its bands.

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
BLOCK_CELLS = 1 << 19  # cells of a block's dense long and short rows


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
        self.side_units = np.zeros(0, dtype=np.int64)
        self.long = np.zeros(0)
        self.short = np.zeros(0)

    def take(self, rows: int, width: int) -> tuple[IntArray, FloatArray, FloatArray]:
        """A side's units and the long and short USD, each of shape (rows, width)."""
        cells = rows * width
        if len(self.long) < cells:
            self.side_units = np.zeros(cells, dtype=np.int64)
            self.long = np.zeros(cells)
            self.short = np.zeros(cells)
        return (
            self.side_units[:cells].reshape(rows, width),
            self.long[:cells].reshape(rows, width),
            self.short[:cells].reshape(rows, width),
        )


def _channel_rows(
    channel: int,
    rows: int,
    held: IntArray | None,
    held_at: int,
    ev_channel: IntArray,
    ev_column: IntArray,
    ev_row: IntArray,
    ev_units: IntArray,
) -> tuple[int, IntArray]:
    """One channel's block rows over its extent only: ``(offset, rows × extent)`` units, the
    book's columns (``held``, from block column ``held_at``) plus the running sum of its
    events. The extent spans every column the book or an event of this channel touches, so the
    channel is zero in every other column of the block."""
    own = ev_channel == channel
    column, row, units = ev_column[own], ev_row[own], ev_units[own]
    held_nz = np.flatnonzero(held[channel]) if held is not None else np.zeros(0, np.intp)
    starts = [int(column.min())] if len(column) else []
    stops = [int(column.max()) + 1] if len(column) else []
    if len(held_nz):
        starts.append(held_at + int(held_nz[0]))
        stops.append(held_at + int(held_nz[-1]) + 1)
    if not starts:
        return 0, np.zeros((rows, 0), dtype=np.int64)
    offset, extent = min(starts), max(stops) - min(starts)
    out = np.zeros((rows, extent), dtype=np.int64)
    if held is not None and len(held_nz):
        x, y = int(held_nz[0]), int(held_nz[-1]) + 1
        out[0, held_at + x - offset : held_at + y - offset] = held[channel, x:y]
    np.add.at(out.reshape(-1), row * extent + (column - offset), units)
    np.cumsum(out, axis=0, out=out)  # row i: the book after snapshot i (integers: exact)
    return offset, out


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
        scale = epoch.quantum * np.exp(drivers.log_scale[sel] - epoch.ref_log_scale)
        side_units, out_long, out_short = scratch.take(count, width)
        ch_in, rel_in, row_in, un_in = ch[inside], bkt[inside] - first, row[inside], un[inside]
        # the book's columns inside the block window
        a = max(first, book.origin)
        b = min(first + width, book.origin + book.units.shape[1])
        held = book.units[:, a - book.origin : b - book.origin] if b > a else None
        channels = [
            _channel_rows(c, count, held, a - first, ch_in, rel_in, row_in, un_in)
            for c in range(CHANNELS)
        ]
        # a side's total: the exact integer sum of its bands, then scaled like each band
        for side, out in ((slice(0, BANDS), out_long), (slice(BANDS, CHANNELS), out_short)):
            side_units[...] = 0
            for offset, units in channels[side]:
                side_units[:, offset : offset + units.shape[1]] += units
            np.multiply(side_units, scale[:, None], out=out)
        bands = tuple((offset, units * scale[:, None]) for offset, units in channels)
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
                bands=bands,
            )
        )
    book.add(ev_bucket[e0:], ev_channel[e0:], ev_units[e0:])
