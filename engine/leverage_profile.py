"""The leverage distribution new positions are spread over, and its liquidation distances.

New exposure is split over ``n`` leverage levels on a geometric grid from ``leverage_min`` to
``leverage_max`` with weights proportional to ``leverage**-alpha`` (``alpha = 0``: uniform in
log-leverage). Levels may exceed the venue's maximum leverage on purpose: an isolated position
with a given leverage is also the stand-in for cross-margin accounts whose margin left for this
position is that thin, which is what puts liquidation levels within a few tenths of a percent of
price.

Each level's liquidation price is computed once per tier table with the exchange formula
(``engine.liquidation.isolated_liquidation_price``) for a representative position of
``position_usd`` notional. With the notional fixed at entry, ``LP / EP`` does not depend on
``EP`` (the tier is chosen at notional ``position_usd · LP/EP``), so the hot loop only multiplies
entry prices by these ratios.

Inverse (coin-margined) contracts are sized in USD contracts and their tiers are keyed on coin
notional, ``position_usd / LP``, which does depend on the price level: their ratios are solved at
a ``reference_price`` (the materializer uses the market's close when the tier table was fetched).
Away from tier boundaries the inverse ratio is exactly price-free, ``(1 ± m)/(1 ± 1/L)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.tiers import MarginTiers

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LeverageProfile:
    """Levels with usable liquidation prices: leverage, weight (sums to 1), LP/EP per side."""

    leverage: FloatArray
    weight: FloatArray
    long_ratio: FloatArray
    short_ratio: FloatArray


def leverage_levels(
    count: int,
    leverage_min: float,
    leverage_max: float,
    alpha: float,
    far_share: float = 0.0,
    far_min: float = 1.0,
    far_levels: int = 0,
) -> tuple[FloatArray, FloatArray]:
    """Geometric leverage grid and weights ∝ leverage**-alpha, normalized to sum 1.

    With ``far_share > 0`` a second, low-leverage component takes that share of the weight:
    ``far_levels`` levels on a geometric grid from ``far_min`` up to (not including)
    ``leverage_min``, equal weights. They are the patient, low-leverage positions whose
    liquidation prices sit 20–35 % from entry (Hyperliquid's top traders hold a tenth to a
    fifth of their USD beyond ±20 %: docs/model.md, "Shape"); a single power law cannot put
    mass there without also moving the near-price levels the accuracy fit depends on.
    Levels come out in increasing leverage (the far component first). When ``far_min`` is not
    below ``leverage_min`` the power law already reaches that far: the far component is empty
    and the power law keeps all the weight.
    """
    if count < 1:
        raise ValueError("at least one leverage level is needed")
    if not (1.0 <= leverage_min <= leverage_max):
        raise ValueError("need 1 <= leverage_min <= leverage_max")
    if not 0.0 <= far_share < 1.0:
        raise ValueError("far_share must be within [0, 1)")
    if count == 1:
        levels = np.array([leverage_min], dtype=np.float64)
    else:
        levels = np.geomspace(leverage_min, leverage_max, count)
    weights = levels ** (-alpha)
    weights = weights / weights.sum()
    if far_share == 0.0 or far_min >= leverage_min:
        return levels, weights
    if far_levels < 1 or far_min < 1.0:
        raise ValueError("a far component needs far_levels >= 1 and far_min >= 1")
    far = np.geomspace(far_min, leverage_min, far_levels + 1)[:-1]
    far_weights = np.full(far_levels, far_share / far_levels)
    return np.concatenate([far, levels]), np.concatenate([far_weights, (1.0 - far_share) * weights])


def liquidation_profile(
    count: int,
    leverage_min: float,
    leverage_max: float,
    alpha: float,
    tiers: MarginTiers,
    position_usd: float,
    *,
    inverse: bool = False,
    reference_price: float = 1.0,
    far_share: float = 0.0,
    far_min: float = 1.0,
    far_levels: int = 0,
) -> LeverageProfile:
    """Levels whose long and short liquidation prices both exist and lie on the losing side.

    A level whose LP would be on the wrong side of entry (leverage beyond 1/MMR) or absent
    (long LP ≤ 0) cannot be liquidated by a price move, so it is left out and the remaining
    weights renormalized. ``inverse`` uses the coin-margined formula with tiers in coin,
    solved at ``reference_price`` (see the module docstring).
    """
    from engine.liquidation import isolated_liquidation_price

    levels, weights = leverage_levels(
        count, leverage_min, leverage_max, alpha, far_share, far_min, far_levels
    )
    if inverse:
        if not reference_price > 0:
            raise ValueError("an inverse profile needs a positive reference price")
        entry = np.full_like(levels, reference_price)
        contracts = np.full_like(levels, position_usd)  # one-dollar contracts: Q·CS = notional

        def ratio(side: int) -> FloatArray:
            lp = isolated_liquidation_price(
                side, entry, levels, contracts, tiers, inverse=True, contract_size=1.0
            )
            return np.asarray(lp, dtype=np.float64) / reference_price

        long_ratio, short_ratio = ratio(1), ratio(-1)
    else:
        ones = np.ones_like(levels)
        quantity = np.full_like(levels, position_usd)  # entry price 1 → notional = position_usd
        long_ratio = np.asarray(
            isolated_liquidation_price(1, ones, levels, quantity, tiers), dtype=np.float64
        )
        short_ratio = np.asarray(
            isolated_liquidation_price(-1, ones, levels, quantity, tiers), dtype=np.float64
        )
    usable = (
        np.isfinite(long_ratio)
        & np.isfinite(short_ratio)
        & (long_ratio > 0)
        & (long_ratio < 1)
        & (short_ratio > 1)
    )
    if not usable.any():
        raise ValueError("no leverage level has a usable liquidation price for this tier table")
    w = weights[usable]
    return LeverageProfile(
        leverage=levels[usable],
        weight=w / w.sum(),
        long_ratio=long_ratio[usable],
        short_ratio=short_ratio[usable],
    )
