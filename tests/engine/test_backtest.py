"""Backtest metrics, the walk-forward property, and calibration helpers."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from engine.backtest import (
    backtest,
    baseline_predictions,
    model_predictions,
    pearson,
    scored_mask,
    spearman,
    sum_by_period,
)
from engine.calibration import (
    Dataset,
    aggregate_to,
    calibrate,
    evaluate,
    hyperliquid_distances,
    margin_over_baseline,
    split_masks,
    weighted_quantiles,
)
from engine.model import Bars, ModelParams
from engine.tiers import MarginTiers


@pytest.fixture(scope="module")
def regime(shared_data: Path) -> tuple[Bars, np.ndarray, np.ndarray]:
    """CoinGlass 30m regime file: spot OHLC, Binance OI (close), realized liquidations."""
    with (shared_data / "coinglass" / "BTC_regime_30m.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))

    def col(name: str) -> np.ndarray:
        return np.array([float(r[name]) for r in rows])

    bars = Bars(
        np.array([int(r["timestamp"]) for r in rows], dtype=np.int64),
        col("price_open"),
        col("price_high"),
        col("price_low"),
        col("price_close"),
        col("oi_close"),
    )
    return bars, col("liquidation_long_usd"), col("liquidation_short_usd")


def test_correlations_match_scipy() -> None:
    rng = np.random.default_rng(7)
    x = rng.lognormal(size=500)
    y = x * rng.lognormal(size=500)
    x[:100] = 0.0  # ties, like quiet bars predicted at zero
    assert math.isclose(pearson(x, y), stats.pearsonr(x, y).statistic, rel_tol=1e-12)
    assert math.isclose(spearman(x, y), stats.spearmanr(x, y).statistic, rel_tol=1e-12)
    assert math.isnan(pearson(np.ones(5), y[:5]))


def test_baseline_formula_by_hand() -> None:
    bars = Bars(
        np.array([0, 1, 2]),
        open=np.array([100.0, 100.0, 50.0]),
        high=np.array([101.0, 104.0, 50.0]),
        low=np.array([99.0, 98.0, 45.0]),
        close=np.array([100.0, 100.0, 46.0]),
        open_interest_usd=np.array([1e6, 2e6, 3e6]),
    )
    long_usd, short_usd = baseline_predictions(bars)
    # bar 1: OI_0 · (100−98)/100 and OI_0 · (104−100)/100; bar 2: OI_1 · 5/50 and 0
    assert math.isnan(long_usd[0]) and math.isnan(short_usd[0])
    assert long_usd[1:].tolist() == [1e6 * 0.02, 2e6 * 0.1]
    assert short_usd[1:].tolist() == [1e6 * 0.04, 0.0]


def test_predictions_are_walk_forward(regime: tuple, tiers: MarginTiers) -> None:
    bars, _, _ = regime
    params = ModelParams.default()
    full_long, full_short = model_predictions(bars, params, tiers)
    t = 300
    # the prediction for bar t is the same when nothing after bar t exists …
    head_long, head_short = model_predictions(bars.slice(0, t + 1), params, tiers)
    assert np.array_equal(head_long, full_long[: t + 1])
    assert np.array_equal(head_short, full_short[: t + 1])
    # … and does not move when bar t's close and end-of-bar open interest change
    close = bars.close.copy()
    oi = bars.open_interest_usd.copy()
    close[t] = min(bars.high[t], close[t] * 1.001)
    oi[t] *= 1.5
    changed = Bars(bars.timestamp, bars.open, bars.high, bars.low, close, oi)
    moved_long, moved_short = model_predictions(changed, params, tiers)
    assert moved_long[t] == full_long[t] and moved_short[t] == full_short[t]
    assert not np.array_equal(moved_long[t + 1 :], full_long[t + 1 :])


def test_backtest_scores_only_after_warmup(regime: tuple, tiers: MarginTiers) -> None:
    bars, real_long, real_short = regime
    params = ModelParams.default()
    result = backtest(bars, real_long, real_short, params, tiers, warmup=48)
    assert result.bars == len(bars) - 48
    keep = scored_mask(len(bars), 48)
    want = stats.spearmanr(result.predicted_long_usd[keep], real_long[keep]).statistic
    assert math.isclose(result.model.long.spearman, want, rel_tol=1e-12)
    base_long, _ = baseline_predictions(bars)
    want = stats.pearsonr(base_long[keep], real_long[keep]).statistic
    assert math.isclose(result.baseline.long.pearson, want, rel_tol=1e-12)
    report = result.to_dict(params)
    assert set(report) == {"bars", "model", "baseline", "params"}
    assert set(report["model"]) == {"long", "short"}
    assert set(report["model"]["long"]) == {"pearson", "spearman"}
    json.dumps(report)


def test_sum_by_period_and_aggregate_to() -> None:
    ts = np.array([0, 300, 600, 1800, 2100, 5400], dtype=np.int64) * 1000
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    starts, sums = sum_by_period(ts, values, 1_800_000)
    assert starts.tolist() == [0, 1_800_000, 5_400_000]
    assert sums.tolist() == [6.0, 9.0, 6.0]
    # realized bars at 0 and 1.8M only: the bar at 5.4M belongs to neither
    realized = np.array([0, 1_800_000], dtype=np.int64)
    assert aggregate_to(ts, values, realized, 1_800_000).tolist() == [6.0, 9.0]


def test_split_masks_and_margin() -> None:
    ts = np.arange(10, dtype=np.int64)
    tune, val = split_masks(ts, 6, warmup=2)
    assert np.flatnonzero(tune).tolist() == [2, 3, 4, 5]
    assert np.flatnonzero(val).tolist() == [6, 7, 8, 9]
    from engine.backtest import Score, SideScore

    model = Score(SideScore(0.8, 0.7), SideScore(0.6, 0.5))
    base = Score(SideScore(0.5, 0.6), SideScore(0.5, 0.6))
    # differences 0.3, 0.1, 0.1, −0.1: worst −0.1 plus 0.2 · mean 0.1
    assert math.isclose(margin_over_baseline(model, base), -0.1 + 0.2 * 0.1)


def test_weighted_quantiles_by_hand() -> None:
    values = np.array([0.3, 0.1, 0.2])
    weights = np.array([1.0, 1.0, 2.0])
    # CDF: 0.1 → 0.25, 0.2 → 0.75, 0.3 → 1.0
    assert weighted_quantiles(values, weights, [0.2, 0.25, 0.5, 0.8]) == [0.1, 0.1, 0.2, 0.3]


def test_hyperliquid_distances_read_real_levels(shared_data: Path) -> None:
    path = shared_data / "hyperliquid" / "top_trader_liq_levels_dev.jsonl"
    first = json.loads(path.read_text().splitlines()[0])
    dist, usd = hyperliquid_distances([first])
    btc = first["data"]["BTC"]
    level = btc["longLiquidations"][0]
    want = abs(level["price"] - btc["currentPrice"]) / btc["currentPrice"]
    assert math.isclose(dist[0], want) and usd[0] == level["value"]
    n_levels = sum(
        1
        for coin in first["data"].values()
        for key in ("longLiquidations", "shortLiquidations")
        for lv in coin[key]
        if lv["value"] > 0
    )
    assert len(dist) == n_levels


def test_calibration_never_ends_below_its_start(regime: tuple, tiers: MarginTiers) -> None:
    bars, real_long, real_short = regime
    bars = bars.slice(0, 400)
    tune, val = split_masks(bars.timestamp, int(bars.timestamp[250]), warmup=48)
    data = Dataset("regime", bars, bars, real_long[:400], real_short[:400], tune, val)
    start = ModelParams(leverage_levels=10)
    space = {"turnover_per_day": [0.5, 4.0], "leverage_alpha": [0.0, 1.5]}
    result = calibrate([data], tiers, start, search_space=space, passes=2)
    before = evaluate(data, start, tiers)
    assert result.objective >= margin_over_baseline(before.tune_model, before.tune_baseline)
    assert result.params.leverage_levels == 10
    assert result.trials <= 1 + 2 * 2 * 2
