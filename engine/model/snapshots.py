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
    from it), and zero outside. ``long_bands``/``short_bands`` give them dense,
    ``(5, rows, width)``. Iterate to get ``Snapshot`` views (the totals without copies). The
    arrays are reused for the next block: a sink that keeps values must copy them.
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

    def window_bands(self, a: int, b: int, row: int | None = None) -> FloatArray:
        """Every channel over block columns ``[a, b)``, dense (zeros outside its extent):
        shape ``(channels, rows, b − a)``, or ``(channels, b − a)`` for one ``row``."""
        rows = self.long.shape[0] if row is None else 1
        out = np.zeros((len(self.bands), rows, b - a))
        for c, (offset, values) in enumerate(self.bands):
            x, y = max(a, offset), min(b, offset + values.shape[1])
            if y > x:
                picked = values if row is None else values[row : row + 1]
                out[c, :, x - a : y - a] = picked[:, x - offset : y - offset]
        return out if row is None else out[:, 0]

    @property
    def long_bands(self) -> npt.NDArray[np.float64]:
        half = len(self.bands) // 2
        return self.window_bands(0, self.long.shape[1])[:half]

    @property
    def short_bands(self) -> npt.NDArray[np.float64]:
        half = len(self.bands) // 2
        return self.window_bands(0, self.long.shape[1])[half:]

    def __iter__(self) -> Iterator[Snapshot]:
        half = len(self.bands) // 2
        for i in range(len(self.timestamp)):
            a, b = int(self.lo[i]) - self.first, int(self.hi[i]) - self.first
            bands = self.window_bands(a, b, i)
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
