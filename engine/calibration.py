"""Calibration: pick the model's free parameters on development data, scored walk-forward.

A ``Dataset`` is one market's bars plus realized liquidations, possibly on coarser bars (e.g. the
model runs on 5m bars and is scored on 30m realized liquidations: predictions are summed into
the realized bar that contains them). Every dataset is split in time: parameters are chosen on
the *tune* part only and the *validation* part is reported beside it, so the figures show how the
choice generalizes to data it was not tuned on.

The objective rewards beating the baseline on all four figures (Pearson and Spearman, longs and
shorts) at once: per dataset the worst of the four model−baseline differences plus a fifth of
their mean, summed over datasets. Optionally a small penalty keeps the USD-weighted distance of
the model's open levels from price close to a measured one (Hyperliquid's real liquidation
prices): ``distance_weight`` × mean |ln(model quantile / target quantile)|. The search is a
coordinate descent over a small discrete grid of the few free parameters, so the calibration is
cheap to rerun and hard to overfit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.backtest import Score, baseline_predictions, model_predictions, score
from engine.model import Bars, ModelParams
from engine.tiers import MarginTiers

FloatArray = npt.NDArray[np.float64]

# the grid searched per parameter (the starting value is always included)
SEARCH_SPACE: dict[str, list[Any]] = {
    "turnover_per_day": [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
    "leverage_alpha": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5],
    "leverage_max": [100.0, 150.0, 200.0, 230.0, 245.0],
    "leverage_min": [1.5, 2.0, 3.0, 5.0, 8.0, 12.0],
    "half_life_hours": [0.0, 6.0, 12.0, 24.0, 72.0, 168.0],
    "seed_fraction": [0.0, 0.25, 0.5, 1.0],
    "side": [("even", 0.0), ("candle", 0.25), ("candle", 0.5), ("taker", 0.5)],
    "entry": [("close", 1), ("typical", 1), ("range", 3)],
    # the low-leverage component (leverage_profile.leverage_levels): far levels are rarely
    # reached in a few weeks, so the distance-from-price match is what sets these
    "leverage_far_share": [0.0, 0.05, 0.1, 0.15, 0.2, 0.3],
    "leverage_far_min": [3.0, 3.5, 4.0],  # Hyperliquid BTC levels reach 25–29 % (≈3.5x)
}


@dataclass(frozen=True)
class Dataset:
    """Bars the model runs on and realized liquidations on bars ``realized_timestamp``.

    ``realized_bars`` are the candles at the realized bars' resolution (for the baseline, which
    is defined on the scored bars); identical to ``bars`` when both have the same timestamps.
    """

    name: str
    bars: Bars
    realized_bars: Bars
    realized_long: FloatArray
    realized_short: FloatArray
    tune: npt.NDArray[np.bool_]  # over realized bars
    validate: npt.NDArray[np.bool_]
    realized_period_ms: int | None = None  # needed when bars are finer than realized bars

    def __post_init__(self) -> None:
        n = len(self.realized_bars)
        for name in ("realized_long", "realized_short", "tune", "validate"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{self.name}: {name} must have one value per realized bar")


def split_masks(
    timestamp: npt.NDArray[np.int64], split_ms: int, warmup: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Tune = after the warm-up and before ``split_ms``; validate = from ``split_ms`` on."""
    after_warmup = np.arange(len(timestamp)) >= max(warmup, 1)
    return after_warmup & (timestamp < split_ms), after_warmup & (timestamp >= split_ms)


def aggregate_to(
    bar_ts: npt.NDArray[np.int64],
    values: FloatArray,
    realized_ts: npt.NDArray[np.int64],
    period_ms: int,
) -> FloatArray:
    """Sum per-bar values into the realized bar ``[open, open + period)`` containing each bar."""
    slot = np.searchsorted(realized_ts, bar_ts, side="right") - 1
    inside = slot >= 0
    inside[inside] &= bar_ts[inside] < realized_ts[slot[inside]] + period_ms
    sums = np.bincount(slot[inside], weights=values[inside], minlength=len(realized_ts))
    return sums.astype(np.float64)


@dataclass(frozen=True)
class Evaluation:
    tune_model: Score
    tune_baseline: Score
    validate_model: Score
    validate_baseline: Score

    def to_dict(self) -> dict[str, Any]:
        return {
            "tune": {"model": self.tune_model.to_dict(), "baseline": self.tune_baseline.to_dict()},
            "validate": {
                "model": self.validate_model.to_dict(),
                "baseline": self.validate_baseline.to_dict(),
            },
        }


def evaluate(dataset: Dataset, params: ModelParams, tiers: MarginTiers) -> Evaluation:
    long_usd, short_usd = model_predictions(dataset.bars, params, tiers)
    if len(dataset.bars) != len(dataset.realized_bars) or not np.array_equal(
        dataset.bars.timestamp, dataset.realized_bars.timestamp
    ):
        ts = dataset.realized_bars.timestamp
        if dataset.realized_period_ms is None:
            raise ValueError(f"{dataset.name}: realized_period_ms is needed to aggregate bars")
        period = dataset.realized_period_ms
        long_usd = aggregate_to(dataset.bars.timestamp, long_usd, ts, period)
        short_usd = aggregate_to(dataset.bars.timestamp, short_usd, ts, period)
    base_long, base_short = baseline_predictions(dataset.realized_bars)
    rl, rs = dataset.realized_long, dataset.realized_short
    return Evaluation(
        score(long_usd, short_usd, rl, rs, dataset.tune),
        score(base_long, base_short, rl, rs, dataset.tune),
        score(long_usd, short_usd, rl, rs, dataset.validate),
        score(base_long, base_short, rl, rs, dataset.validate),
    )


def margin_over_baseline(model: Score, baseline: Score) -> float:
    """Worst of the four model−baseline differences plus a fifth of their mean."""
    diffs = [m - b for m, b in zip(model.figures(), baseline.figures(), strict=True)]
    if any(math.isnan(d) for d in diffs):
        return -math.inf
    return min(diffs) + 0.2 * sum(diffs) / len(diffs)


def _apply(params: ModelParams, name: str, value: Any) -> ModelParams:
    if name == "side":
        split, skew = value
        return replace(params, side_split=split, side_skew=skew)
    if name == "entry":
        entry, points = value
        return replace(params, entry_price=entry, entry_points=points)
    return replace(params, **{name: value})


def _current(params: ModelParams, name: str) -> Any:
    if name == "side":
        return (params.side_split, params.side_skew)
    if name == "entry":
        return (params.entry_price, params.entry_points)
    return getattr(params, name)


@dataclass(frozen=True)
class CalibrationResult:
    params: ModelParams
    objective: float
    evaluations: dict[str, Evaluation]
    trials: int


DISTANCE_QUANTILES = (0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class DistanceTarget:
    """Measured distance-from-price quantiles (at ``DISTANCE_QUANTILES``) and the model's bars."""

    quantiles: tuple[float, ...]
    bars: Bars
    weight: float = 0.05


def book_distance_quantiles(
    bars: Bars,
    params: ModelParams,
    tiers: MarginTiers,
    quantiles: Sequence[float] = DISTANCE_QUANTILES,
    checkpoints: int = 8,
) -> list[float]:
    """USD-weighted |LP − price|/price quantiles of the open book, pooled over checkpoints."""
    from engine.model import simulate
    from maps.grid import PriceGrid

    grid = PriceGrid(bucket_size=1.0)
    step = max(1, len(bars) // (checkpoints + 1))
    dists: list[FloatArray] = []
    weights: list[FloatArray] = []
    state = None
    for start in range(0, len(bars), step):
        chunk = bars.slice(start, min(start + step, len(bars)))
        state = simulate(chunk, params, grid, tiers, state=state).state
        if state is None or start == 0 or state.open_cohorts == 0:
            continue
        w = state.notional_at_birth * np.exp(state.log_scale - state.log_scale_at_birth)
        d, w = book_distances(state.liquidation_price, w, float(chunk.close[-1]))
        dists.append(d)
        weights.append(w)
    if not dists:
        return [math.nan] * len(quantiles)
    return weighted_quantiles(np.concatenate(dists), np.concatenate(weights), quantiles)


def distance_penalty(model: Sequence[float], target: Sequence[float]) -> float:
    logs = [abs(math.log(m / t)) for m, t in zip(model, target, strict=True) if m > 0 and t > 0]
    return sum(logs) / len(logs) if logs else math.inf


def calibrate(
    datasets: Sequence[Dataset],
    tiers: MarginTiers,
    start: ModelParams,
    *,
    search_space: dict[str, list[Any]] | None = None,
    passes: int = 3,
    distance_target: DistanceTarget | None = None,
    progress: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Coordinate descent on the tune parts: one parameter at a time over its grid."""
    space = SEARCH_SPACE if search_space is None else search_space
    cache: dict[ModelParams, float] = {}

    def objective(p: ModelParams) -> float:
        if p not in cache:
            total = 0.0
            for d in datasets:
                ev = evaluate(d, p, tiers)
                total += margin_over_baseline(ev.tune_model, ev.tune_baseline)
            if distance_target is not None:
                q = book_distance_quantiles(distance_target.bars, p, tiers)
                total -= distance_target.weight * distance_penalty(q, distance_target.quantiles)
            cache[p] = total
        return cache[p]

    best = start
    best_value = objective(best)
    for sweep in range(passes):
        improved = False
        for name, values in space.items():
            for value in values:
                if value == _current(best, name):
                    continue
                try:
                    candidate = _apply(best, name, value)
                except ValueError:
                    continue
                v = objective(candidate)
                if v > best_value + 1e-9:
                    best, best_value, improved = candidate, v, True
                    if progress:
                        progress(f"pass {sweep + 1}: {name}={value!r} → objective {v:.4f}")
        if not improved:
            break
    evaluations = {d.name: evaluate(d, best, tiers) for d in datasets}
    return CalibrationResult(best, best_value, evaluations, len(cache))


# ---------------------------------------------------------------------------------------------
# distance-from-price distributions (Hyperliquid's real liquidation prices vs the model's book


def weighted_quantiles(
    values: FloatArray, weights: FloatArray, quantiles: Sequence[float]
) -> list[float]:
    """Quantiles of the distribution putting ``weights`` on ``values`` (step CDF, lower value)."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cdf = np.cumsum(w) / w.sum()
    return [float(v[min(int(np.searchsorted(cdf, q, side="left")), len(v) - 1)]) for q in quantiles]


def hyperliquid_distances(
    snapshots: Sequence[dict[str, Any]], coins: Sequence[str] | None = None
) -> tuple[FloatArray, FloatArray]:
    """Relative distance |LP − price| / price and USD value of every binned real level.

    ``snapshots`` are the parsed lines of ``hyperliquid/top_trader_liq_levels_dev.jsonl``: per
    coin ``currentPrice`` and ``longLiquidations``/``shortLiquidations`` bins with ``price`` and
    ``value`` (USD). ``coins`` keeps only those coins (default: all).
    """
    dist: list[float] = []
    usd: list[float] = []
    for snap in snapshots:
        for name, coin in snap["data"].items():
            if coins is not None and name not in coins:
                continue
            price = float(coin["currentPrice"])
            if price <= 0:
                continue
            for key in ("longLiquidations", "shortLiquidations"):
                for level in coin.get(key) or []:
                    value = float(level["value"])
                    if value > 0:
                        dist.append(abs(float(level["price"]) - price) / price)
                        usd.append(value)
    return np.asarray(dist), np.asarray(usd)


def book_distances(
    liquidation_price: FloatArray, notional: FloatArray, price: float
) -> tuple[FloatArray, FloatArray]:
    """Relative distance of the model's open levels from ``price`` and their notional."""
    return np.abs(liquidation_price - price) / price, notional
