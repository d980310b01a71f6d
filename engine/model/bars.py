"""One market's bars, validated into numpy arrays: the model's input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.model.arrays import FloatArray


def _array(name: str, values: Any) -> FloatArray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array")
    return arr


@dataclass(frozen=True)
class Bars:
    """One market's bars: open timestamps (epoch ms), OHLC, open interest in USD at bar end."""

    timestamp: npt.NDArray[np.int64]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    open_interest_usd: FloatArray
    volume: FloatArray | None = None
    taker_buy_volume: FloatArray | None = None
    quote_volume: FloatArray | None = None  # traded value in quote currency (for the VWAP)

    def __post_init__(self) -> None:
        ts = np.ascontiguousarray(self.timestamp, dtype=np.int64)
        object.__setattr__(self, "timestamp", ts)
        n = len(ts)
        for name in ("open", "high", "low", "close", "open_interest_usd"):
            arr = _array(name, getattr(self, name))
            if len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} values, timestamp has {n}")
            object.__setattr__(self, name, arr)
        for name in ("volume", "taker_buy_volume", "quote_volume"):
            value = getattr(self, name)
            if value is not None:
                arr = _array(name, value)
                if len(arr) != n:
                    raise ValueError(f"{name} has {len(arr)} values, timestamp has {n}")
                object.__setattr__(self, name, arr)
        if n > 1 and not np.all(np.diff(ts) > 0):
            raise ValueError("timestamps must be strictly increasing")
        for name in ("open", "high", "low", "close"):
            bad = np.flatnonzero(~(getattr(self, name) > 0) | ~np.isfinite(getattr(self, name)))
            if len(bad):
                raise ValueError(f"{name} must be a positive finite price (bar {int(bad[0])})")
        bad = np.flatnonzero(~(self.open_interest_usd >= 0) | ~np.isfinite(self.open_interest_usd))
        if len(bad):
            raise ValueError(f"open_interest_usd must be finite and >= 0 (bar {int(bad[0])})")

    def __len__(self) -> int:
        return len(self.timestamp)

    def slice(self, start: int, stop: int) -> Bars:
        def cut(a: FloatArray | None) -> FloatArray | None:
            return None if a is None else a[start:stop]

        return Bars(
            self.timestamp[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.open_interest_usd[start:stop],
            cut(self.volume),
            cut(self.taker_buy_volume),
            cut(self.quote_volume),
        )
