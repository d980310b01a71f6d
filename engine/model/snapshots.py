"""Heatmap snapshots: the open notional per grid bucket over the model's span after a bar.

``SnapshotBlock`` holds consecutive snapshots as dense rows, so a long run hands them to a sink
without building one object per bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.model.arrays import FloatArray, IntArray


@dataclass(frozen=True)
class Snapshot:
    """One bar's heatmap window.

    ``price`` is the bar's close; ``bucket_origin_index`` is the absolute grid index of
    ``long[0]``/``short[0]`` (lower price edge ``grid.origin + index·bucket_size``); ``long`` and
    ``short`` are USD notional per bucket over the model's span around the close,
    ``close·(1 − below) .. close·(1 + above)`` (``ModelParams.span``). ``long_bands`` and
    ``short_bands`` (shape ``(5, width)``) split them by leverage band (``maps.bands``); each
    side's row is the sum of its bands exactly in the engine's integer units.
    """

    timestamp: int
    price: float
    bucket_origin_index: int
    long: FloatArray
    short: FloatArray
    long_bands: FloatArray
    short_bands: FloatArray


@dataclass(frozen=True)
class SnapshotBlock:
    """Consecutive snapshots sharing dense ``long``/``short`` rows over columns from ``first``.

    Row ``i`` holds snapshot ``i`` over absolute buckets ``first .. first+width``; its own window
    is ``[lo[i], hi[i])``. ``bands`` holds each channel (long bands, then short bands:
    ``maps.bands``) over its own extent only, as ``(offset from first, rows × extent)``: a
    band occupies a fraction of the window (the high leverages near the price, the low ones far
    from it), and zero outside. Iterate to get ``Snapshot`` views (the totals without copies,
    each snapshot's bands dense over its window). The arrays are reused for the next block: a
    sink that keeps values must copy them.
    """

    timestamp: npt.NDArray[np.int64]
    price: FloatArray
    lo: IntArray
    hi: IntArray
    first: int
    long: npt.NDArray[np.float64]
    short: npt.NDArray[np.float64]
    bands: tuple[tuple[int, npt.NDArray[np.float64]], ...]

    def __len__(self) -> int:
        return len(self.timestamp)

    def row_bands(self, row: int, a: int, b: int) -> FloatArray:
        """One snapshot's channels over block columns ``[a, b)``, dense (zeros outside each
        channel's extent): shape ``(channels, b − a)``."""
        out = np.zeros((len(self.bands), b - a))
        for c, (offset, values) in enumerate(self.bands):
            x, y = max(a, offset), min(b, offset + values.shape[1])
            if y > x:
                out[c, x - a : y - a] = values[row, x - offset : y - offset]
        return out

    def __iter__(self) -> Iterator[Snapshot]:
        half = len(self.bands) // 2
        for i in range(len(self.timestamp)):
            a, b = int(self.lo[i]) - self.first, int(self.hi[i]) - self.first
            bands = self.row_bands(i, a, b)
            yield Snapshot(
                int(self.timestamp[i]),
                float(self.price[i]),
                int(self.lo[i]),
                self.long[i, a:b],
                self.short[i, a:b],
                bands[:half],
                bands[half:],
            )


SnapshotSink = Callable[[SnapshotBlock], None]
