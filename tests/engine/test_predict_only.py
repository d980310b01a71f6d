"""The predictions-only path (backtests, calibration) against the full cohort path and the
plain-Python reference; average ranks against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from scipy import stats

from engine.backtest import average_ranks, spearman
from engine.model import Bars, ModelParams, simulate
from engine.reference import simulate_reference
from engine.tiers import MarginTiers
from maps.grid import PriceGrid
from tests.engine.test_model import random_market

GRID = PriceGrid(bucket_size=10.0)


def both(bars: Bars, params: ModelParams, tiers: MarginTiers) -> tuple[tuple, tuple]:
    fast = simulate(bars, params, GRID, tiers, keep_state=False)
    full = simulate(bars, params, GRID, tiers, keep_state=True)
    assert fast.state is None and full.state is not None
    return (
        (fast.predicted_long_usd, fast.predicted_short_usd),
        (full.predicted_long_usd, full.predicted_short_usd),
    )


@pytest.mark.parametrize(
    "params",
    [
        ModelParams.default(),
        ModelParams(leverage_levels=12, entry_price="range", entry_points=3),
        ModelParams(leverage_levels=8, side_split="candle", side_skew=0.7, turnover_per_day=2.0),
        # no turnover and no decay: cohorts live until open interest falls, the whole run
        ModelParams(leverage_levels=5, turnover_per_day=0.0, seed_fraction=0.5),
        ModelParams(leverage_levels=5, prune_fraction=0.3, half_life_hours=1.0),
    ],
)
def test_fast_predictions_equal_the_cohort_path_bit_for_bit(
    binance_5m: Bars,
    tiers: MarginTiers,
    params: ModelParams,
) -> None:
    fast, full = both(binance_5m, params, tiers)
    assert np.array_equal(fast[0], full[0]) and np.array_equal(fast[1], full[1])
    assert full[0].sum() > 0 and full[1].sum() > 0  # something was liquidated on both sides


def test_fast_predictions_match_the_reference(
    binance_5m: Bars,
    tiers: MarginTiers,
) -> None:
    bars = binance_5m.slice(3000, 3400)
    params = ModelParams(leverage_levels=10, leverage_min=5.0, turnover_per_day=4.0)
    fast = simulate(bars, params, GRID, tiers, keep_state=False)
    ref = simulate_reference(bars, params, GRID, tiers)
    np.testing.assert_allclose(fast.predicted_long_usd, ref.predicted_long_usd, rtol=1e-9)
    np.testing.assert_allclose(fast.predicted_short_usd, ref.predicted_short_usd, rtol=1e-9)
    assert sum(ref.predicted_long_usd) > 0 and sum(ref.predicted_short_usd) > 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(market=random_market())
def test_fast_predictions_equal_the_cohort_path_on_random_inputs(
    tiers: MarginTiers, market: tuple[Bars, ModelParams, PriceGrid, np.ndarray]
) -> None:
    bars, params, _grid, _mask = market
    fast, full = both(bars, params, tiers)
    assert np.array_equal(fast[0], full[0]) and np.array_equal(fast[1], full[1])


def test_average_ranks_equal_scipy_with_ties() -> None:
    rng = np.random.default_rng(7)
    for x in (
        rng.integers(0, 5, 200).astype(float),  # many ties
        rng.normal(size=300),
        np.array([3.0, 1.0, 3.0, 2.0, 3.0]),
        np.zeros(4),
    ):
        np.testing.assert_array_equal(average_ranks(x), stats.rankdata(x))
    # hand-worked: 1.0 → 1, 2.0 → 2, the three 3.0 share (3 + 4 + 5) / 3 = 4
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [4, 1, 4, 2, 4]
    y = rng.normal(size=300)
    x = y + rng.integers(0, 3, 300)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-12)
    assert np.isnan(average_ranks(np.array([1.0, np.nan]))).all()
