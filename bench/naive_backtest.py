"""A straightforward numpy implementation of the model's backtest, the baseline for
bench/bench_backtest.py: ``np.loadtxt`` for the CSV files and a Python loop over bars with the
open positions as numpy arrays (each bar: liquidate what its range reaches, scale and prune the
rest, append the bar's new positions), as anyone would first write the model in
``engine/model``'s docstring. Even side split, close as entry price, fresh state.

    .venv/bin/python bench/naive_backtest.py --candles C.csv --open-interest OI.csv \\
        --liquidations L.csv [--predictions OUT.csv]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.backtest import baseline_predictions, score, scored_mask  # noqa: E402
from engine.model import Bars, ModelParams  # noqa: E402
from engine.tiers import load_shipped_binance_tiers  # noqa: E402

DAY_MS = 86_400_000.0
HOUR_MS = 3_600_000.0


def naive_predictions(bars: Bars, params: ModelParams) -> tuple[np.ndarray, np.ndarray]:
    if params.side_split != "even" or params.entry_price != "close":
        raise SystemExit("the naive baseline implements the even split and close entries only")
    tiers, _, _ = load_shipped_binance_tiers("BTC/USDT:USDT")
    profile = params.profile(tiers)
    weight = profile.weight
    ratios = np.concatenate([profile.long_ratio, profile.short_ratio])
    sides = np.concatenate([np.ones(len(weight)), -np.ones(len(weight))])
    weights = np.concatenate([weight, weight])
    n = len(bars)
    long_usd, short_usd = np.zeros(n), np.zeros(n)
    side = np.zeros(0)
    lp = np.zeros(0)
    notional = np.zeros(0)
    born = np.zeros(0)
    log_scale = 0.0
    log_prune = math.log(params.prune_fraction)
    close = bars.close
    oi = bars.open_interest_usd / close
    for u in range(n):
        if u > 0:
            low = min(bars.low[u], close[u - 1])
            high = max(bars.high[u], close[u - 1])
            hit = np.where(side > 0, lp >= low, lp <= high)
            if hit.any():
                amount = notional[hit] * np.exp(log_scale - born[hit])
                is_long = side[hit] > 0
                long_usd[u] = amount[is_long].sum()
                short_usd[u] = amount[~is_long].sum()
                keep = ~hit
                side, lp, notional, born = side[keep], lp[keep], notional[keep], born[keep]
            delta = oi[u] - oi[u - 1]
            elapsed = float(bars.timestamp[u] - bars.timestamp[u - 1])
            closed = min(1.0, max(0.0, -delta / oi[u - 1])) if oi[u - 1] > 0 else 0.0
            churn_log = -params.turnover_per_day * elapsed / DAY_MS
            step = math.log1p(-min(closed, 1.0 - 1e-12)) + churn_log
            if params.half_life_hours > 0:
                step -= math.log(2.0) * elapsed / (params.half_life_hours * HOUR_MS)
            log_scale += step
            opened = max(delta, 0.0) - math.expm1(churn_log) * oi[u - 1]
            alive = log_scale >= born + log_prune
            if not alive.all():
                side, lp, notional, born = side[alive], lp[alive], notional[alive], born[alive]
        else:
            opened = params.seed_fraction * oi[0]
        if opened > 0:
            side = np.concatenate([side, sides])
            lp = np.concatenate([lp, close[u] * ratios])
            notional = np.concatenate([notional, opened * close[u] * weights])
            born = np.concatenate([born, np.full(len(sides), log_scale)])
    return long_usd, short_usd


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candles", type=Path, required=True)
    parser.add_argument("--open-interest", type=Path, required=True)
    parser.add_argument("--liquidations", type=Path, required=True)
    parser.add_argument("--predictions", type=Path)
    args = parser.parse_args()
    c = np.loadtxt(args.candles, delimiter=",", skiprows=1)
    oi = np.loadtxt(args.open_interest, delimiter=",", skiprows=1)
    liq = np.loadtxt(args.liquidations, delimiter=",", skiprows=1)
    bars = Bars(c[:, 0].astype(np.int64), c[:, 1], c[:, 2], c[:, 3], c[:, 4], oi[:, 1])
    params = ModelParams.default()
    long_usd, short_usd = naive_predictions(bars, params)
    base_long, base_short = baseline_predictions(bars)
    mask = scored_mask(len(bars), 48)
    print(score(long_usd, short_usd, liq[:, 1], liq[:, 2], mask).to_dict())
    print(score(base_long, base_short, liq[:, 1], liq[:, 2], mask).to_dict())
    if args.predictions is not None:
        out = np.column_stack([bars.timestamp, long_usd, short_usd])
        np.savetxt(
            args.predictions,
            out,
            fmt=["%d", "%.17g", "%.17g"],
            delimiter=",",
            header="timestamp,predicted_long_usd,predicted_short_usd",
            comments="",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
