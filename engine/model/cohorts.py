"""Cohorts: the positions a bar opens, spread over sides, entry points and leverage levels.

Every (bar, side, entry point, leverage level) is a cohort with its own exact liquidation price
from the market's tier table; a cohort's notional at bar ``u`` is ``w·exp(L_u − L_birth)``. Its
leverage band (``maps.bands``) follows from its level's leverage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.leverage_profile import LeverageProfile
from engine.model.arrays import FloatArray
from engine.model.drivers import BarDrivers
from engine.model.params import ModelParams
from engine.model.state import EngineState
from maps.bands import BANDS, leverage_band


@dataclass(frozen=True)
class Cohorts:
    """Structure-of-arrays of cohorts; ``birth`` is the bar index (−1 = from the saved state),
    ``band`` the leverage band (``maps.bands``) of the cohort's level."""

    side: npt.NDArray[np.int8]
    band: npt.NDArray[np.int8]
    liquidation_price: FloatArray
    notional_at_birth: FloatArray
    log_scale_at_birth: FloatArray
    birth: npt.NDArray[np.int64]


def new_cohorts(drivers: BarDrivers, profile: LeverageProfile, params: ModelParams) -> Cohorts:
    """Cohorts opened by each bar, ordered by bar, side (long first), entry point, level."""
    opening = np.flatnonzero(drivers.opened_contracts > 0)
    m = drivers.entry.shape[1]
    lev = len(profile.weight)
    shape = (len(opening), 2, m, lev)
    share = drivers.long_share[opening]
    side_share = np.stack([2.0 * share, 2.0 * (1.0 - share)], axis=1)  # (nb, 2)
    entry = drivers.entry[opening]  # (nb, m)
    # notional per (bar, side, entry point, level): contracts/m · entry · side share · weight
    per_entry = drivers.opened_contracts[opening, None] * (1.0 / m) * entry  # (nb, m)
    notional = np.empty(shape)
    np.multiply(
        (per_entry[:, None, :] * side_share[:, :, None])[:, :, :, None],
        profile.weight[None, None, None, :],
        out=notional,
    )
    ratios = np.stack([profile.long_ratio, profile.short_ratio])  # (2, lev)
    lp = np.empty(shape)
    np.multiply(entry[:, None, :, None], ratios[:, None, :][None], out=lp)
    side = np.empty(shape, dtype=np.int8)
    side[:, 0] = 1
    side[:, 1] = -1
    band = np.empty(shape, dtype=np.int8)
    band[...] = leverage_band(profile.leverage)[None, None, None, :]
    birth = np.empty(shape, dtype=np.int64)
    birth[...] = opening[:, None, None, None]
    born_scale = np.empty(shape)
    born_scale[...] = drivers.log_scale[opening][:, None, None, None]
    cohorts = Cohorts(
        side=side.reshape(-1),
        band=band.reshape(-1),
        liquidation_price=lp.reshape(-1),
        notional_at_birth=notional.reshape(-1),
        log_scale_at_birth=born_scale.reshape(-1),
        birth=birth.reshape(-1),
    )
    keep = cohorts.notional_at_birth > 0
    if keep.all():
        return cohorts
    return Cohorts(
        side=cohorts.side[keep],
        band=cohorts.band[keep],
        liquidation_price=cohorts.liquidation_price[keep],
        notional_at_birth=cohorts.notional_at_birth[keep],
        log_scale_at_birth=cohorts.log_scale_at_birth[keep],
        birth=cohorts.birth[keep],
    )


def concat_state(state: EngineState, new: Cohorts) -> Cohorts:
    """The saved state's open cohorts (birth −1) followed by the run's new ones."""
    if len(state.side) == 0:
        return new
    return Cohorts(
        side=np.concatenate([state.side, new.side]),
        band=np.concatenate([state.band, new.band]),
        liquidation_price=np.concatenate([state.liquidation_price, new.liquidation_price]),
        notional_at_birth=np.concatenate([state.notional_at_birth, new.notional_at_birth]),
        log_scale_at_birth=np.concatenate([state.log_scale_at_birth, new.log_scale_at_birth]),
        birth=np.concatenate([np.full(len(state.side), -1, dtype=np.int64), new.birth]),
    )


def channels(side: npt.NDArray[np.int8], band: npt.NDArray[np.int8]) -> npt.NDArray[np.int64]:
    """The unit book's channel of each cohort: long bands ``0..BANDS``, short ``BANDS..2·BANDS``."""
    return band.astype(np.int64) + BANDS * (side < 0)
