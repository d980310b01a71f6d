"""The engine state after the last processed bar: open cohorts and the integer heatmap.

Saved between runs (``to_bytes``/``from_bytes``) so that an incremental run continues exactly
where the previous one stopped.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.model.arrays import FloatArray, IntArray
from engine.model.snapshots import Snapshot
from maps.bands import BANDS
from maps.grid import PriceGrid

# 2: cohorts carry their leverage band and the heatmap is kept per side × band (model v3); a
# state of another format is refused (``from_bytes`` raises ValueError): recompute
STATE_FORMAT = 2
CHANNELS = 2 * BANDS


@dataclass
class EngineState:
    """Everything needed to continue after the last processed bar (see ``to_bytes``)."""

    bucket_size: float
    grid_origin: float
    last_timestamp: int
    last_close: float
    last_oi_contracts: float
    log_scale: float
    ref_log_scale: float
    quantum: float
    oi_basis: float
    # open cohorts, in birth order
    side: npt.NDArray[np.int8]
    band: npt.NDArray[np.int8]  # leverage band (maps.bands)
    liquidation_price: FloatArray
    notional_at_birth: FloatArray
    log_scale_at_birth: FloatArray
    bucket: IntArray
    units: IntArray
    # heatmap in quantum units (relative to ref_log_scale), buckets from units_origin, per
    # channel: long bands 0..4, then short bands 0..4 (shape (10, width))
    units_origin: int
    band_units: IntArray

    @property
    def long_units(self) -> IntArray:
        return self.band_units[:BANDS].sum(axis=0)

    @property
    def short_units(self) -> IntArray:
        return self.band_units[BANDS:].sum(axis=0)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        scalars = np.array(
            [
                self.bucket_size,
                self.grid_origin,
                self.last_close,
                self.last_oi_contracts,
                self.log_scale,
                self.ref_log_scale,
                self.quantum,
                self.oi_basis,
            ],
            dtype=np.float64,
        )
        ints = np.array([STATE_FORMAT, self.last_timestamp, self.units_origin], dtype=np.int64)
        np.savez(
            buf,
            scalars=scalars,
            ints=ints,
            side=self.side,
            band=self.band,
            liquidation_price=self.liquidation_price,
            notional_at_birth=self.notional_at_birth,
            log_scale_at_birth=self.log_scale_at_birth,
            bucket=self.bucket,
            units=self.units,
            band_units=self.band_units,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> EngineState:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            s = z["scalars"]
            ints = z["ints"]
            if int(ints[0]) != STATE_FORMAT:
                raise ValueError(f"engine state format {int(ints[0])} is not {STATE_FORMAT}")
            return cls(
                bucket_size=float(s[0]),
                grid_origin=float(s[1]),
                last_timestamp=int(ints[1]),
                last_close=float(s[2]),
                last_oi_contracts=float(s[3]),
                log_scale=float(s[4]),
                ref_log_scale=float(s[5]),
                quantum=float(s[6]),
                oi_basis=float(s[7]),
                side=z["side"],
                band=z["band"],
                liquidation_price=z["liquidation_price"],
                notional_at_birth=z["notional_at_birth"],
                log_scale_at_birth=z["log_scale_at_birth"],
                bucket=z["bucket"],
                units=z["units"],
                units_origin=int(ints[2]),
                band_units=z["band_units"],
            )

    @property
    def open_cohorts(self) -> int:
        return len(self.side)

    def levels(self, grid: PriceGrid, price: float, span: tuple[float, float]) -> Snapshot:
        """The heatmap over ``price·(1 − span[0]) .. price·(1 + span[1])`` (see
        ``ModelParams.span``) as of the last processed bar."""
        lo = grid.index_of_scalar(price * (1.0 - span[0]))
        hi = grid.index_of_scalar(price * (1.0 + span[1])) + 1
        scale = self.quantum * math.exp(self.log_scale - self.ref_log_scale)
        units = _window(self.band_units, self.units_origin, lo, hi)
        bands = np.multiply(units, scale, dtype=np.float64)
        return Snapshot(
            timestamp=self.last_timestamp,
            price=price,
            bucket_origin_index=lo,
            long=units[:BANDS].sum(axis=0) * scale,
            short=units[BANDS:].sum(axis=0) * scale,
            long_bands=bands[:BANDS],
            short_bands=bands[BANDS:],
        )


def _window(units: IntArray, origin: int, lo: int, hi: int) -> IntArray:
    out = np.zeros((units.shape[0], hi - lo), dtype=np.int64)
    a, b = max(lo, origin), min(hi, origin + units.shape[1])
    if b > a:
        out[:, a - lo : b - lo] = units[:, a - origin : b - origin]
    return out


def empty_state(grid: PriceGrid) -> EngineState:
    return EngineState(
        bucket_size=grid.bucket_size,
        grid_origin=grid.origin,
        last_timestamp=-1,
        last_close=math.nan,
        last_oi_contracts=math.nan,
        log_scale=0.0,
        ref_log_scale=0.0,
        quantum=math.nan,
        oi_basis=math.nan,
        side=np.zeros(0, dtype=np.int8),
        band=np.zeros(0, dtype=np.int8),
        liquidation_price=np.zeros(0),
        notional_at_birth=np.zeros(0),
        log_scale_at_birth=np.zeros(0),
        bucket=np.zeros(0, dtype=np.int64),
        units=np.zeros(0, dtype=np.int64),
        units_origin=0,
        band_units=np.zeros((CHANNELS, 0), dtype=np.int64),
    )
