"""Walk-forward backtest: model and baseline predictions scored against realized liquidations.

Pure arrays in, numbers out. The walk-forward property comes from the model itself: the
prediction for bar ``t`` is the notional the engine state after bar ``t−1`` has within bar ``t``'s
range; realized liquidations are only ever passed to the scoring functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.leverage_profile import LeverageProfile
from engine.model import Bars, ModelParams, simulate
from engine.tiers import MarginTiers
from maps.grid import PriceGrid

FloatArray = npt.NDArray[np.float64]


def baseline_predictions(bars: Bars) -> tuple[FloatArray, FloatArray]:
    """``long_t = OI_{t−1}·max(0, (open_t − low_t)/open_t)``, short with ``high_t − open_t``.

    ``OI_{t−1}`` is the open interest at the end of the previous row; bar 0 has none (NaN).
    """
    oi_prev = np.concatenate(([np.nan], bars.open_interest_usd[:-1]))
    long_usd = oi_prev * np.maximum(0.0, (bars.open - bars.low) / bars.open)
    short_usd = oi_prev * np.maximum(0.0, (bars.high - bars.open) / bars.open)
    return long_usd, short_usd


def pearson(x: FloatArray, y: FloatArray) -> float:
    if len(x) < 2:
        return math.nan
    xc, yc = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(np.dot(xc, xc)) * float(np.dot(yc, yc)))
    return float(np.dot(xc, yc) / denom) if denom > 0 else math.nan


def average_ranks(x: FloatArray) -> FloatArray:
    """Ranks 1..n, ties sharing their mean rank (``scipy.stats.rankdata``'s default), NaN → all
    NaN. numpy only: importing scipy.stats costs a backtest more than its whole model run."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0 or np.isnan(x).any():
        return np.full(n, math.nan)
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    first = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    stop = np.append(first[1:], n)
    ranks = np.empty(n)
    ranks[order] = np.repeat((first + stop + 1) / 2.0, stop - first)
    return ranks


def spearman(x: FloatArray, y: FloatArray) -> float:
    """Pearson correlation of average ranks (ties share their mean rank)."""
    if len(x) < 2:
        return math.nan
    return pearson(average_ranks(x), average_ranks(y))


@dataclass(frozen=True)
class SideScore:
    pearson: float
    spearman: float

    def to_dict(self) -> dict[str, float | None]:
        return {
            "pearson": None if math.isnan(self.pearson) else self.pearson,
            "spearman": None if math.isnan(self.spearman) else self.spearman,
        }


@dataclass(frozen=True)
class Score:
    long: SideScore
    short: SideScore

    def to_dict(self) -> dict[str, Any]:
        return {"long": self.long.to_dict(), "short": self.short.to_dict()}

    def figures(self) -> tuple[float, float, float, float]:
        return (self.long.pearson, self.long.spearman, self.short.pearson, self.short.spearman)


def score(
    predicted_long: FloatArray,
    predicted_short: FloatArray,
    realized_long: FloatArray,
    realized_short: FloatArray,
    scored: npt.NDArray[np.bool_],
) -> Score:
    def side(p: FloatArray, r: FloatArray) -> SideScore:
        return SideScore(pearson(p[scored], r[scored]), spearman(p[scored], r[scored]))

    return Score(side(predicted_long, realized_long), side(predicted_short, realized_short))


def scored_mask(n: int, warmup: int) -> npt.NDArray[np.bool_]:
    """Bars after the warm-up; bar 0 is never scored (the baseline needs ``OI_{t−1}``)."""
    mask = np.zeros(n, dtype=bool)
    mask[max(warmup, 1) :] = True
    return mask


@dataclass(frozen=True)
class BacktestResult:
    bars: int
    predicted_long_usd: FloatArray
    predicted_short_usd: FloatArray
    model: Score
    baseline: Score

    def to_dict(self, params: ModelParams) -> dict[str, Any]:
        return {
            "bars": self.bars,
            "model": self.model.to_dict(),
            "baseline": self.baseline.to_dict(),
            "params": params.to_dict(),
        }


def model_predictions(
    bars: Bars,
    params: ModelParams,
    tiers: MarginTiers,
    profile: LeverageProfile | None = None,
) -> tuple[FloatArray, FloatArray]:
    # the grid only matters for heatmaps; predictions use exact liquidation prices
    result = simulate(
        bars, params, PriceGrid(bucket_size=1.0), tiers, keep_state=False, profile=profile
    )
    return result.predicted_long_usd, result.predicted_short_usd


def backtest(
    bars: Bars,
    realized_long: FloatArray,
    realized_short: FloatArray,
    params: ModelParams,
    tiers: MarginTiers,
    warmup: int = 48,
) -> BacktestResult:
    long_usd, short_usd = model_predictions(bars, params, tiers)
    base_long, base_short = baseline_predictions(bars)
    scored = scored_mask(len(bars), warmup)
    return BacktestResult(
        bars=int(scored.sum()),
        predicted_long_usd=long_usd,
        predicted_short_usd=short_usd,
        model=score(long_usd, short_usd, realized_long, realized_short, scored),
        baseline=score(base_long, base_short, realized_long, realized_short, scored),
    )


def sum_by_period(
    timestamp: npt.NDArray[np.int64], values: FloatArray, period_ms: int
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Sum values into periods ``floor(ts / period)·period`` (e.g. 5m predictions → 30m)."""
    keys = (timestamp // period_ms) * period_ms
    starts, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(starts)).astype(np.float64)
    return starts, sums
