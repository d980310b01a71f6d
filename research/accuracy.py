"""Dev accuracy of the model (and of experimental variants) on the shared data, walk-forward.

    .venv/bin/python research/accuracy.py [--params P.json] [--mix Q.json:0.3] [--json]

Runs the four development datasets of ``liqmap calibrate --shared-data`` (Binance 5m scored on
30m, Binance 30m, CoinGlass 30m, CoinGlass 1h; tune = bars before 2026-06-01, validate = from
it) and prints Pearson / Spearman for longs and shorts, model and baseline. ``--mix Q:f``
evaluates a two-population book: a share ``f`` of open interest follows the parameters ``Q``,
the rest ``--params`` (the model is linear in open interest, so the book's predictions are
``(1−f)·P + f·Q``). No realized liquidation from the sealed period (2025-12-04 → 2026-05-20)
is read: the shared files start on 2026-05-21.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cli.backtest import load_params  # noqa: E402
from cli.calibrate import shared_datasets  # noqa: E402
from engine.backtest import baseline_predictions, model_predictions, score  # noqa: E402
from engine.calibration import aggregate_to  # noqa: E402
from engine.tiers import load_shipped_binance_tiers  # noqa: E402

SPLIT_MS = 1_780_272_000_000  # 2026-06-01T00:00Z


def predictions(d: Any, parts: list[tuple[Any, float]], tiers: Any) -> tuple[Any, Any]:
    long_usd = np.zeros(len(d.bars))
    short_usd = np.zeros(len(d.bars))
    for params, weight in parts:
        lo, sh = model_predictions(d.bars, params, tiers)
        long_usd += weight * lo
        short_usd += weight * sh
    if len(d.bars) != len(d.realized_bars):
        ts, period = d.realized_bars.timestamp, d.realized_period_ms
        long_usd = aggregate_to(d.bars.timestamp, long_usd, ts, period)
        short_usd = aggregate_to(d.bars.timestamp, short_usd, ts, period)
    return long_usd, short_usd


def evaluate(datasets: list[Any], parts: list[tuple[Any, float]], tiers: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in datasets:
        lo, sh = predictions(d, parts, tiers)
        bl, bs = baseline_predictions(d.realized_bars)
        rl, rs = d.realized_long, d.realized_short
        out[d.name] = {
            part: {
                "model": score(lo, sh, rl, rs, mask).figures(),
                "baseline": score(bl, bs, rl, rs, mask).figures(),
            }
            for part, mask in (("tune", d.tune), ("validate", d.validate))
        }
    return out


def summary(result: dict[str, Any]) -> tuple[float, float]:
    """(mean of the 16 tune figures, worst tune figure) of the model."""
    figs = [f for r in result.values() for f in r["tune"]["model"]]
    return float(np.mean(figs)), float(np.min(figs))


def print_table(result: dict[str, Any]) -> None:
    print("| dataset | part | long P | long S | short P | short S |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in result.items():
        for part in ("tune", "validate"):
            m, b = r[part]["model"], r[part]["baseline"]
            cells = " | ".join(f"{x:.3f} / {y:.3f}" for x, y in zip(m, b, strict=True))
            print(f"| `{name}` | {part} | {cells} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params")
    parser.add_argument("--mix", help="Q.json:f, a second population with share f")
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tiers, _, _ = load_shipped_binance_tiers("BTC/USDT:USDT")
    datasets = shared_datasets(args.shared_data, SPLIT_MS, 48)
    parts = [(load_params(args.params), 1.0)]
    if args.mix:
        path, _, share = args.mix.rpartition(":")
        parts = [(parts[0][0], 1.0 - float(share)), (load_params(path), float(share))]
    result = evaluate(datasets, parts, tiers)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
        mean, worst = summary(result)
        print(f"tune figures: mean {mean:.3f}, worst {worst:.3f} (model / baseline per cell)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
