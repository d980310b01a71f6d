"""The mechanism experiments of docs/model.md ("Accuracy: experiments"), one row each.

    .venv/bin/python research/experiments.py [--only NAME]

Every row runs the four development datasets (research/accuracy.py; tune = before 2026-06-01,
validate = from it) and prints the model's mean of the four figures per part (long P, long S,
short P, short S averaged over the datasets) and the worst single tune figure. Variants:

- ``populations``: a second, slow population (low leverage, long half-life) holding a share of
  open interest next to the shipped one (the model is linear in open interest);
- ``side``: new positions split by candle direction or by taker flow (Binance
  ``taker_net_vol_base``), or by funding (``last_funding_rate`` / CoinGlass ``funding_close``:
  the side that pays is the crowded side);
- ``decay``: turnover and half-life;
- ``alpha``: the leverage power law (shape vs accuracy);
- ``intrabar``: path ordering inside the bar (open → first extreme → second → close, the
  first extreme from the candle's direction): high-leverage positions opened on one leg are
  liquidated by the later extreme of the same bar, at ``rate`` of open interest per day.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "research"))

from accuracy import SPLIT_MS, predictions  # noqa: E402

import engine.model.drivers as drivers  # noqa: E402
from cli.backtest import load_params, read_table  # noqa: E402
from cli.calibrate import shared_datasets  # noqa: E402
from engine.backtest import score  # noqa: E402
from engine.calibration import aggregate_to  # noqa: E402
from engine.model import Bars, ModelParams  # noqa: E402
from engine.tiers import load_shipped_binance_tiers  # noqa: E402

DAY_MS = 86_400_000.0
DATA = REPO.parent / "shared" / "data"


def figures(
    datasets: list[Any],
    parts: list[tuple[ModelParams, float]],
    tiers: Any,
    extra: Callable[[Bars], tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    tune, val = [], []
    for d in datasets:
        lo, sh = predictions(d, parts, tiers)
        if extra is not None:
            el, es = extra(d.bars)
            if len(d.bars) != len(d.realized_bars):
                ts, period = d.realized_bars.timestamp, d.realized_period_ms
                el = aggregate_to(d.bars.timestamp, el, ts, period)
                es = aggregate_to(d.bars.timestamp, es, ts, period)
            lo, sh = lo + el, sh + es
        rl, rs = d.realized_long, d.realized_short
        tune.append(score(lo, sh, rl, rs, d.tune).figures())
        val.append(score(lo, sh, rl, rs, d.validate).figures())
    return np.array(tune), np.array(val)


def row(name: str, tune: np.ndarray, val: np.ndarray) -> None:
    t, v = tune.mean(axis=0), val.mean(axis=0)
    print(
        f"| {name} | {' / '.join(f'{x:.3f}' for x in t)} | {tune.min():.3f} | "
        f"{' / '.join(f'{x:.3f}' for x in v)} |",
        flush=True,
    )


def intrabar(params: ModelParams, tiers: Any, rate: float, lev_from: float) -> Callable[..., Any]:
    profile = params.profile(tiers)
    pick = profile.leverage >= lev_from
    weight = np.full(int(pick.sum()), 1.0 / max(int(pick.sum()), 1))
    r_long, r_short = profile.long_ratio[pick], profile.short_ratio[pick]

    def extra(b: Bars) -> tuple[np.ndarray, np.ndarray]:
        o, h, lo, c = b.open, b.high, b.low, b.close
        up = c >= o
        # legs in path order; an entry on a leg is liquidated by the extremes after it
        legs_up = [(o, lo, lo, h), (lo, h, c, h), (h, c, c, h)]  # (from, to, min after, max after)
        legs_dn = [(o, h, lo, h), (h, lo, lo, c), (lo, c, lo, c)]
        total = np.where(up, (o - lo) + (h - lo) + (h - c), (h - o) + (h - lo) + (c - lo))
        total = np.maximum(total, 1e-12)
        long_f = np.zeros(len(o))
        short_f = np.zeros(len(o))
        for legs, mask in ((legs_up, up), (legs_dn, ~up)):
            for a, z, min_after, max_after in legs:
                bottom, top = np.minimum(a, z), np.maximum(a, z)
                span = np.maximum(top - bottom, 1e-12)
                share = (top - bottom) / total
                for j in range(len(weight)):
                    fs = np.clip((max_after / r_short[j] - bottom) / span, 0.0, 1.0)
                    fl = np.clip((top - min_after / r_long[j]) / span, 0.0, 1.0)
                    short_f += np.where(mask, share * weight[j] * fs, 0.0)
                    long_f += np.where(mask, share * weight[j] * fl, 0.0)
        oi_prev = np.concatenate([[0.0], b.open_interest_usd[:-1]])
        dt = np.concatenate([[0.0], np.diff(b.timestamp)]).astype(np.float64)
        scale = oi_prev * rate * dt / DAY_MS
        return scale * long_f, scale * short_f

    return extra


def side_signals() -> dict[str, dict[int, float]]:
    k5 = read_table(
        DATA / "binance" / "BTCUSDT_perp_5m_klines_oi_funding.csv",
        ["price_open"],
        ["last_funding_rate", "taker_net_vol_base"],
    )
    cg = read_table(DATA / "coinglass" / "BTC_regime_30m.csv", ["price_open"], ["funding_close"])
    funding = {
        int(t): 100.0 * f
        for t, f in zip(k5.timestamp, k5.columns["last_funding_rate"], strict=True)
    }
    funding.update(
        {int(t): f for t, f in zip(cg.timestamp, cg.columns["funding_close"], strict=True)}
    )
    taker = {int(t): v for t, v in zip(k5.timestamp, k5.columns["taker_net_vol_base"], strict=True)}
    return {"funding": funding, "taker": taker}


def with_side_signal(kind: str, k: float, signals: dict[str, dict[int, float]]) -> Any:
    def shares(bars: Bars, params: ModelParams) -> np.ndarray:
        values = np.array([signals[kind].get(int(t), np.nan) for t in bars.timestamp])
        values = np.nan_to_num(values, nan=float(np.nanmedian(values)))
        if kind == "funding":  # percent per 8 h; 0.005 % is the neutral-ish rate
            signal = np.tanh((values - 0.005) / 0.005)
        else:
            signal = np.tanh(values / (float(np.std(values)) + 1e-9))
        return np.clip(0.5 + 0.5 * k * signal, 0.0, 1.0)

    return shares


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="one group: populations, side, decay, alpha, intrabar")
    args = parser.parse_args()
    tiers, _, _ = load_shipped_binance_tiers("BTC/USDT:USDT")
    datasets = shared_datasets(DATA, SPLIT_MS, 48)
    base = load_params(None)
    groups = ["populations", "side", "decay", "alpha", "intrabar"]
    if args.only:
        groups = [args.only]
    print("| variant | tune LP / LS / SP / SS (mean of 4 datasets) | worst tune | validate |")
    print("| --- | --- | --- | --- |")
    row("shipped parameters", *figures(datasets, [(base, 1.0)], tiers))
    if "populations" in groups:
        for lmin, lmax, hl, share in ((2.0, 10.0, 72.0, 0.3), (2.0, 10.0, 168.0, 0.5)):
            slow = replace(
                base,
                leverage_min=lmin,
                leverage_max=lmax,
                leverage_alpha=0.0,
                leverage_levels=20,
                leverage_far_share=0.0,
                half_life_hours=hl,
                turnover_per_day=0.5,
            )
            name = f"+ slow population {lmin:g}–{lmax:g}x, half-life {hl:g} h, share {share:g}"
            row(name, *figures(datasets, [(base, 1 - share), (slow, share)], tiers))
    if "side" in groups:
        for skew in (0.25, 0.5):
            p = replace(base, side_split="candle", side_skew=skew)
            row(f"side by candle direction, skew {skew:g}", *figures(datasets, [(p, 1.0)], tiers))
        signals = side_signals()
        original = drivers.long_shares
        try:
            for kind, k in (("taker", 0.5), ("funding", 0.2), ("funding", -0.2)):
                drivers.long_shares = with_side_signal(kind, k, signals)
                row(f"side by {kind}, k {k:+g}", *figures(datasets, [(base, 1.0)], tiers))
        finally:
            drivers.long_shares = original
    if "decay" in groups:
        for turnover, hl in ((4.0, 6.0), (16.0, 6.0), (8.0, 3.0), (8.0, 12.0)):
            p = replace(base, turnover_per_day=turnover, half_life_hours=hl)
            row(
                f"turnover {turnover:g}/day, half-life {hl:g} h",
                *figures(datasets, [(p, 1.0)], tiers),
            )
    if "alpha" in groups:
        for alpha in (1.5, 2.0, 3.0):
            p = replace(base, leverage_alpha=alpha)
            row(f"leverage alpha {alpha:g}", *figures(datasets, [(p, 1.0)], tiers))
    if "intrabar" in groups:
        for rate, lev in ((1e-3, 100.0), (3e-3, 50.0), (3e-2, 50.0)):
            extra = intrabar(base, tiers, rate, lev)
            name = f"+ intrabar path, rate {rate:g}/day, levels ≥ {lev:g}x"
            row(name, *figures(datasets, [(base, 1.0)], tiers, extra))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
