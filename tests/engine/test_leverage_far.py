"""The low-leverage ('far') component of the leverage distribution: by hand, against the
plain-Python reference, and its effect on the book's reach."""

from __future__ import annotations

import numpy as np
import pytest

from engine.leverage_profile import leverage_levels
from engine.model import Bars, ModelParams, simulate
from engine.reference import leverage_table
from engine.tiers import MarginTiers
from maps.grid import PriceGrid
from tests.engine.test_model import assert_matches_reference


def test_far_component_by_hand() -> None:
    # main: levels 5 and 20, weights ∝ 1/5 and 1/20 → 0.8 and 0.2, times (1 − 0.2);
    # far: one level at 2.5 with the remaining 0.2
    levels, weights = leverage_levels(2, 5.0, 20.0, 1.0, far_share=0.2, far_min=2.5, far_levels=1)
    assert levels.tolist() == pytest.approx([2.5, 5.0, 20.0])
    assert weights.tolist() == pytest.approx([0.2, 0.64, 0.16])
    # two far levels: 2.5·(5/2.5)^(0/2) = 2.5 and 2.5·2^(1/2) ≈ 3.5355, 0.1 each
    levels, weights = leverage_levels(2, 5.0, 20.0, 1.0, far_share=0.2, far_min=2.5, far_levels=2)
    assert levels.tolist() == pytest.approx([2.5, 3.5355339, 5.0, 20.0])
    assert weights.tolist() == pytest.approx([0.1, 0.1, 0.64, 0.16])
    # no far share: exactly the single power law
    a = leverage_levels(3, 5.0, 20.0, 1.0)
    b = leverage_levels(3, 5.0, 20.0, 1.0, far_share=0.0, far_min=2.0, far_levels=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_far_component_is_validated() -> None:
    with pytest.raises(ValueError, match="leverage_far_share"):
        ModelParams(leverage_far_share=1.0)
    with pytest.raises(ValueError, match="leverage_far_levels"):
        ModelParams(leverage_min=5.0, leverage_far_share=0.1, leverage_far_levels=0)
    with pytest.raises(ValueError, match="leverage_far_min"):
        ModelParams(leverage_min=5.0, leverage_far_share=0.1, leverage_far_min=0.5)


def test_far_component_is_empty_when_the_power_law_reaches_as_far(tiers: MarginTiers) -> None:
    """leverage_min lowered to 2x (a wider span) with far_min 3x: the power law covers 2–3x
    already, so all the weight stays on it, in the profile and in the reference alike."""
    params = ModelParams(leverage_levels=6, leverage_min=2.0, leverage_far_share=0.15)
    plain = ModelParams(leverage_levels=6, leverage_min=2.0)
    a, b = params.profile(tiers), plain.profile(tiers)
    assert np.array_equal(a.leverage, b.leverage) and np.array_equal(a.weight, b.weight)
    assert leverage_table(params, tiers) == leverage_table(plain, tiers)


def test_reference_table_matches_the_profile(tiers: MarginTiers) -> None:
    params = ModelParams(
        leverage_levels=6, leverage_min=5.0, leverage_alpha=2.5, leverage_far_share=0.15
    )
    profile = params.profile(tiers)
    table = leverage_table(params, tiers)
    assert [lev for lev, _ in table] == pytest.approx(profile.leverage.tolist(), rel=1e-12)
    assert [w for _, w in table] == pytest.approx(profile.weight.tolist(), rel=1e-12)
    assert sum(w for lev, w in table if lev < 5.0) == pytest.approx(0.15)


def test_engine_matches_reference_with_a_far_component(
    binance_5m: Bars,
    tiers: MarginTiers,
) -> None:
    params = ModelParams(
        leverage_levels=4,
        leverage_min=5.0,
        leverage_far_share=0.2,
        leverage_far_min=3.0,
        leverage_far_levels=2,
        turnover_per_day=2.0,
    )
    bars = binance_5m.slice(1000, 1300)
    mask = np.zeros(len(bars), dtype=bool)
    mask[::10] = True
    assert_matches_reference(bars, params, PriceGrid(bucket_size=10.0), tiers, mask)


def test_far_component_moves_book_out_without_changing_predictions(
    binance_5m: Bars,
    tiers: MarginTiers,
) -> None:
    """Far levels (≈21–33 % from entry) are hardly reached in this 4-week window, so the
    predictions almost only scale by (1 − share) — correlations unchanged to 4 decimals —
    while the book gains USD beyond 20 % of price."""
    base = ModelParams(leverage_levels=10, leverage_min=5.0, leverage_alpha=2.5)
    far = ModelParams(**{**base.to_dict(), "leverage_far_share": 0.15, "leverage_far_min": 3.0})
    grid = PriceGrid(bucket_size=10.0)
    a = simulate(binance_5m, base, grid, tiers)
    b = simulate(binance_5m, far, grid, tiers)
    for side in ("predicted_long_usd", "predicted_short_usd"):
        pa, pb = getattr(a, side), getattr(b, side)
        share_kept = pb.sum() / pa.sum()
        assert 0.85 - 1e-12 <= share_kept < 0.86  # (1 − 0.15), plus the few far levels reached
        assert np.corrcoef(pa, pb)[0, 1] > 0.9999

    def beyond_20(result: object) -> float:
        state = result.state  # type: ignore[attr-defined]
        usd = state.notional_at_birth * np.exp(state.log_scale - state.log_scale_at_birth)
        dist = np.abs(state.liquidation_price / state.last_close - 1.0)
        return float(usd[dist > 0.2].sum() / usd.sum())

    assert beyond_20(b) > beyond_20(a) + 0.05
