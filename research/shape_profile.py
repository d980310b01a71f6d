"""Distance-from-price shape of the model's book vs Hyperliquid top traders' real positions.

    .venv/bin/python research/shape_profile.py [--params P.json] [--every 48] [--json]

Model: the shipped parameters (or ``--params``) run over the whole Binance BTCUSDT 5m file
(../shared/data/binance); every ``--every`` bars after a two-day warm-up, the *whole* open book
(every cohort alive at that bar, no window) is measured: the share of each side's USD whose
liquidation price lies within ±1/2/5/10/20/30 % of the close, and the share per leverage band
(≤10x, 10–25x, 25–50x, 50–100x, >100x; the model's levels are effective leverages). Reported
is the median over those snapshots.

Hyperliquid: the 34 snapshots of ../shared/data/hyperliquid/top_trader_liq_levels_dev.jsonl
(BTC, top-100 wallets' real liquidation prices, binned), the same shares per snapshot, median
over snapshots. Its leverage split (keys 10x/25x/50x/100x: the upper edge of each band) is the
*leverage setting* of mostly cross-margined accounts, not the effective leverage, so it is shown
next to the bands implied by the distance itself, ``1 / (distance + 1.25 %)`` (1.25 %: half the
initial margin at Hyperliquid's 40x BTC maximum, its maintenance rate).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cli.backtest import load_params, read_table  # noqa: E402
from engine.model import Bars, ModelParams  # noqa: E402
from engine.model.cohorts import new_cohorts  # noqa: E402
from engine.model.drivers import bar_drivers  # noqa: E402
from engine.model.fates import cohort_fates  # noqa: E402
from engine.model.state import empty_state  # noqa: E402
from engine.tiers import load_shipped_binance_tiers  # noqa: E402
from maps.grid import PriceGrid  # noqa: E402

WITHIN = (0.01, 0.02, 0.05, 0.10, 0.20, 0.30)
BANDS = ((0.0, 10.0), (10.0, 25.0), (25.0, 50.0), (50.0, 100.0), (100.0, math.inf))
BAND_NAMES = ("<=10x", "10-25x", "25-50x", "50-100x", ">100x")
HL_KEYS = ("10x", "25x", "50x", "100x")  # upper edges of the first four bands
HL_MAINTENANCE = 0.0125


def band_of(leverage: np.ndarray) -> np.ndarray:
    """Band index per leverage: (lo, hi] intervals, the first from 0."""
    edges = np.array([b[1] for b in BANDS[:-1]])
    return np.searchsorted(edges, leverage, side="left")


def shares(dist: np.ndarray, usd: np.ndarray, band: np.ndarray) -> dict[str, float]:
    total = usd.sum()
    out: dict[str, float] = {}
    for w in WITHIN:
        out[f"within {w:.0%}"] = float(usd[dist <= w].sum() / total) if total > 0 else math.nan
    for i, name in enumerate(BAND_NAMES):
        out[name] = float(usd[band == i].sum() / total) if total > 0 else math.nan
    return out


def model_profiles(bars: Bars, params: ModelParams, every: int, warmup: int) -> dict[str, Any]:
    tiers, _, _ = load_shipped_binance_tiers("BTC/USDT:USDT")
    profile = params.profile(tiers)
    drivers = bar_drivers(bars, params, empty_state(PriceGrid(bucket_size=1.0)))
    cohorts = new_cohorts(drivers, profile, params)
    fates = cohort_fates(cohorts, drivers, params)
    death = fates.death
    per_bar = 2 * drivers.entry.shape[1] * len(profile.weight)
    if len(cohorts.side) != per_bar * int((drivers.opened_contracts > 0).sum()):
        raise SystemExit("a cohort has zero notional: leverage levels cannot be recovered")
    leverage = profile.leverage[np.arange(len(cohorts.side)) % len(profile.weight)]
    band = band_of(leverage)
    rows: dict[str, list[dict[str, float]]] = {"long": [], "short": []}
    for t in range(warmup, len(bars), every):
        alive = (cohorts.birth <= t) & (death > t)
        price = float(bars.close[t])
        usd = cohorts.notional_at_birth * np.exp(drivers.log_scale[t] - cohorts.log_scale_at_birth)
        dist = np.abs(cohorts.liquidation_price - price) / price
        for side, value in (("long", 1), ("short", -1)):
            pick = alive & (cohorts.side == value)
            rows[side].append(shares(dist[pick], usd[pick], band[pick]))
    return {side: median_rows(r) for side, r in rows.items()} | {"snapshots": len(rows["long"])}


def median_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.median([r[k] for r in rows])) for k in rows[0]}


def hyperliquid_profiles(path: Path) -> dict[str, Any]:
    snaps = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows: dict[str, list[dict[str, float]]] = {"long": [], "short": []}
    nominal: dict[str, list[dict[str, float]]] = {"long": [], "short": []}
    for snap in snaps:
        btc = snap["data"]["BTC"]
        price = float(btc["currentPrice"])
        for side, key in (("long", "longLiquidations"), ("short", "shortLiquidations")):
            levels = btc[key]
            dist = np.array([abs(float(lv["price"]) - price) / price for lv in levels])
            usd = np.array([float(lv["value"]) for lv in levels])
            implied = band_of(1.0 / (dist + HL_MAINTENANCE))
            rows[side].append(shares(dist, usd, implied))
            by_key = np.array([sum(float(lv[k]) for lv in levels) for k in HL_KEYS])
            total = by_key.sum()
            nominal[side].append(
                {name: float(v / total) for name, v in zip(BAND_NAMES, [*by_key, 0.0], strict=True)}
            )
    return {
        side: median_rows(rows[side])
        | {f"setting {k}": v for k, v in median_rows(nominal[side]).items()}
        for side in rows
    } | {"snapshots": len(snaps)}


def binance_bars(data: Path) -> Bars:
    t = read_table(
        data / "binance" / "BTCUSDT_perp_5m_klines_oi_funding.csv",
        ["price_open", "price_high", "price_low", "price_close", "open_interest_usd"],
    )
    c = t.columns
    return Bars(
        t.timestamp,
        c["price_open"],
        c["price_high"],
        c["price_low"],
        c["price_close"],
        c["open_interest_usd"],
    )


def table(model: dict[str, Any], real: dict[str, Any]) -> str:
    lines = [
        "| share of the side's USD | model longs | real longs | model shorts | real shorts |",
        "| --- | --- | --- | --- | --- |",
    ]
    keys = [f"within {w:.0%}" for w in WITHIN] + list(BAND_NAMES)
    for k in keys:
        if k.startswith("within"):
            label = f"LP within ±{k.split()[1]} of price"
        else:
            label = f"leverage {k} (model: level; real: implied by distance)"
        lines.append(
            f"| {label} | {model['long'][k]:.1%} | {real['long'][k]:.1%} | "
            f"{model['short'][k]:.1%} | {real['short'][k]:.1%} |"
        )
    for k in BAND_NAMES:
        lines.append(
            f"| leverage setting {k} (Hyperliquid's own split) | — | "
            f"{real['long']['setting ' + k]:.1%} | — | {real['short']['setting ' + k]:.1%} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", help="model parameters JSON (default: shipped)")
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--every", type=int, default=48, help="bars between model snapshots")
    parser.add_argument("--warmup", type=int, default=576, help="bars before the first one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    params = load_params(args.params)
    model = model_profiles(binance_bars(args.shared_data), params, args.every, args.warmup)
    real = hyperliquid_profiles(
        args.shared_data / "hyperliquid" / "top_trader_liq_levels_dev.jsonl"
    )
    if args.json:
        print(json.dumps({"model": model, "hyperliquid": real, "params": params.to_dict()}))
    else:
        print(
            f"params {params.version}; model snapshots {model['snapshots']}, "
            f"Hyperliquid snapshots {real['snapshots']} (medians over snapshots)"
        )
        print(table(model, real))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
