"""``liqmap calibrate``: fit the model's free parameters and write them as a params file.

    liqmap calibrate --shared-data ../shared/data --out engine/params.json
    liqmap calibrate --dataset dev=C.csv,OI.csv,L.csv [--dataset ...] --split 2026-06-01 \\
        --out P.json
    liqmap calibrate --shared-data ../shared/data --start engine/params.json \\
        --only leverage_far_share,leverage_far_min --out P.json   # a few parameters only

``--shared-data`` builds the development datasets the shipped defaults come from:

- ``binance-5m``: Binance BTCUSDT 5m candles + open interest; model run on 5m bars, predictions
  summed to 30m and scored against CoinGlass realized liquidations (Binance+Bybit+OKX);
- ``binance-30m``: the same candles resampled to 30m bars, model run at 30m;
- ``coinglass-30m``: the CoinGlass 30m regime file on its own (OHLC, OI, realized liquidations);
- ``coinglass-1h``: the same file resampled to hourly bars (so no single bar length is favoured);

and reports the Hyperliquid real liquidation-price distances next to the model's. ``--dataset``
takes C/OI/L CSVs as for ``liqmap backtest``, except that L may have coarser bars than C.
Parameters are chosen on bars before ``--split`` and validated on the bars from it on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cli.backtest import (
    EXIT_INPUT,
    InputError,
    Table,
    load_params,
    read_candles,
    read_table,
)
from cli.common import UserError, parse_epoch_ms

HALF_HOUR_MS = 1_800_000
DEFAULT_SPLIT = "2026-06-01T00:00:00Z"


def _bars(timestamp: npt.NDArray[np.int64], cols: dict[str, npt.NDArray[np.float64]]) -> Any:
    from engine.model import Bars

    return Bars(
        timestamp=timestamp,
        open=cols["open"],
        high=cols["high"],
        low=cols["low"],
        close=cols["close"],
        open_interest_usd=cols["open_interest_usd"],
        volume=cols.get("volume"),
        taker_buy_volume=cols.get("taker_buy_volume"),
    )


def resample(
    timestamp: npt.NDArray[np.int64],
    cols: dict[str, npt.NDArray[np.float64]],
    period_ms: int,
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.float64]]]:
    """OHLC + end-of-bar open interest on ``period_ms`` bars, keeping only complete periods."""
    key = (timestamp // period_ms) * period_ms
    starts, first, counts = np.unique(key, return_index=True, return_counts=True)
    step = int(np.min(np.diff(timestamp))) if len(timestamp) > 1 else period_ms
    complete = counts == period_ms // step
    last = first + counts - 1
    out = {
        "open": cols["open"][first],
        "high": np.maximum.reduceat(cols["high"], first),
        "low": np.minimum.reduceat(cols["low"], first),
        "close": cols["close"][last],
        "open_interest_usd": cols["open_interest_usd"][last],
    }
    return starts[complete], {k: v[complete] for k, v in out.items()}


def shared_datasets(data_dir: Path, split_ms: int, warmup: int) -> list[Any]:
    from engine.calibration import Dataset, split_masks

    binance = read_table(
        data_dir / "binance" / "BTCUSDT_perp_5m_klines_oi_funding.csv",
        ["price_open", "price_high", "price_low", "price_close", "open_interest_usd"],
        positive=["price_open", "price_high", "price_low", "price_close"],
        non_negative=["open_interest_usd"],
    )
    regime = read_table(
        data_dir / "coinglass" / "BTC_regime_30m.csv",
        ["price_open", "price_high", "price_low", "price_close", "oi_close"],
        ["liquidation_long_usd", "liquidation_short_usd"],
        positive=["price_open", "price_high", "price_low", "price_close"],
        non_negative=["oi_close", "liquidation_long_usd", "liquidation_short_usd"],
    )

    def ohlc(t: Table, oi: str) -> dict[str, npt.NDArray[np.float64]]:
        c = t.columns
        return {
            "open": c["price_open"],
            "high": c["price_high"],
            "low": c["price_low"],
            "close": c["price_close"],
            "open_interest_usd": c[oi],
        }

    b5 = _bars(binance.timestamp, ohlc(binance, "open_interest_usd"))
    ts30, cols30 = resample(binance.timestamp, ohlc(binance, "open_interest_usd"), HALF_HOUR_MS)
    realized_at = {int(t): i for i, t in enumerate(regime.timestamp)}
    overlap = np.array([int(t) in realized_at for t in ts30])
    ts30 = ts30[overlap]
    cols30 = {k: v[overlap] for k, v in cols30.items()}
    rows = np.array([realized_at[int(t)] for t in ts30], dtype=np.int64)
    liq_long = regime.columns["liquidation_long_usd"]
    liq_short = regime.columns["liquidation_short_usd"]
    b30 = _bars(ts30, cols30)
    # 5m warm-up in 30m bars: the first scored 30m bar has at least ``warmup`` 5m bars before it
    tune30, val30 = split_masks(ts30, split_ms, max(1, warmup // 6))
    tune30w, val30w = split_masks(ts30, split_ms, warmup)
    rb = _bars(regime.timestamp, ohlc(regime, "oi_close"))
    tune_r, val_r = split_masks(regime.timestamp, split_ms, warmup)
    # the same file on hourly bars: the shipped defaults should not depend on one bar length
    ts1h, cols1h = resample(regime.timestamp, ohlc(regime, "oi_close"), 2 * HALF_HOUR_MS)
    hour_of = np.searchsorted(ts1h, (regime.timestamp // 3_600_000) * 3_600_000)
    in_hour = (hour_of < len(ts1h)) & (
        ts1h[np.minimum(hour_of, len(ts1h) - 1)] == (regime.timestamp // 3_600_000) * 3_600_000
    )
    long_1h = np.bincount(hour_of[in_hour], liq_long[in_hour], len(ts1h)).astype(np.float64)
    short_1h = np.bincount(hour_of[in_hour], liq_short[in_hour], len(ts1h)).astype(np.float64)
    tune_h, val_h = split_masks(ts1h, split_ms, max(1, warmup // 2))
    r1h = _bars(ts1h, cols1h)
    return [
        Dataset(
            "binance-5m",
            b5,
            b30,
            liq_long[rows],
            liq_short[rows],
            tune30,
            val30,
            HALF_HOUR_MS,
        ),
        Dataset("binance-30m", b30, b30, liq_long[rows], liq_short[rows], tune30w, val30w),
        Dataset("coinglass-30m", rb, rb, liq_long, liq_short, tune_r, val_r),
        Dataset("coinglass-1h", r1h, r1h, long_1h, short_1h, tune_h, val_h),
    ]


def csv_dataset(name: str, spec: str, split_ms: int, warmup: int) -> Any:
    """``C.csv,OI.csv,L.csv``; L may be on coarser bars than C (predictions are summed)."""
    from engine.calibration import Dataset, split_masks

    parts = spec.split(",")
    if len(parts) != 3:
        raise InputError(spec, None, None, "--dataset needs NAME=C.csv,OI.csv,L.csv")
    c = read_candles(Path(parts[0]))
    oi = read_table(Path(parts[1]), ["open_interest_usd"], non_negative=["open_interest_usd"])
    sides = ["long_usd", "short_usd"]
    liq = read_table(Path(parts[2]), sides, non_negative=sides)
    from cli.backtest import check_same_bars

    check_same_bars(c, oi)
    bars = _bars(c.timestamp, {**c.columns, **oi.columns})
    if np.array_equal(c.timestamp, liq.timestamp):
        tune, val = split_masks(c.timestamp, split_ms, warmup)
        long_usd, short_usd = liq.columns["long_usd"], liq.columns["short_usd"]
        return Dataset(name, bars, bars, long_usd, short_usd, tune, val)
    period = int(np.min(np.diff(liq.timestamp))) if len(liq.timestamp) > 1 else 0
    if period <= 0:
        raise InputError(parts[2], None, "timestamp", "need at least two liquidation bars")
    ts, cols = resample(c.timestamp, {**c.columns, **oi.columns}, period)
    if not np.all(np.isin(liq.timestamp, ts)):
        raise InputError(
            parts[2], None, "timestamp", "liquidation bars must match or be whole multiples of C"
        )
    keep = np.isin(ts, liq.timestamp)
    coarse = _bars(ts[keep], {k: v[keep] for k, v in cols.items()})
    step = int(np.min(np.diff(c.timestamp))) if len(c.timestamp) > 1 else period
    tune, val = split_masks(liq.timestamp, split_ms, max(1, warmup * step // period))
    return Dataset(
        name, bars, coarse, liq.columns["long_usd"], liq.columns["short_usd"], tune, val, period
    )


def hyperliquid_quantiles(data_dir: Path, quantiles: Sequence[float]) -> list[float]:
    """USD-weighted distance quantiles of the real BTC levels (the model is fitted on BTC)."""
    from engine.calibration import hyperliquid_distances, weighted_quantiles

    path = data_dir / "hyperliquid" / "top_trader_liq_levels_dev.jsonl"
    try:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise InputError(path, None, None, f"cannot read Hyperliquid snapshots: {exc}") from None
    dist, usd = hyperliquid_distances(lines, coins=["BTC"])
    return weighted_quantiles(dist, usd, quantiles)


def hyperliquid_comparison(data_dir: Path, datasets: Sequence[Any], params: Any) -> dict[str, Any]:
    """USD-weighted |LP − price|/price quantiles: Hyperliquid's real levels vs the model's book."""
    from engine.calibration import book_distance_quantiles
    from engine.tiers import load_shipped_binance_tiers

    quantiles = [0.1, 0.25, 0.5, 0.75, 0.9]
    tiers, _, _ = load_shipped_binance_tiers("BTC/USDT:USDT")
    return {
        "quantiles": quantiles,
        "hyperliquid_top_traders": hyperliquid_quantiles(data_dir, quantiles),
        "model_binance_btc": book_distance_quantiles(datasets[0].bars, params, tiers, quantiles),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shared-data", type=Path, help="the project's shared data folder")
    parser.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="NAME=C.csv,OI.csv,L.csv",
        help="a development dataset (repeatable)",
    )
    parser.add_argument("--out", type=Path, required=True, help="params JSON to write")
    parser.add_argument(
        "--split",
        default=DEFAULT_SPLIT,
        help=f"tune before, validate from this time (default {DEFAULT_SPLIT})",
    )
    parser.add_argument("--warmup", type=int, default=48, help="bars not scored (default 48)")
    parser.add_argument(
        "--start", help="params JSON to start the search from (default: uncalibrated defaults)"
    )
    parser.add_argument("--passes", type=int, default=3, help="coordinate-descent passes")
    parser.add_argument(
        "--only",
        metavar="NAME,...",
        help="search only these parameters (names of engine.calibration.SEARCH_SPACE); the "
        "others keep their --start values",
    )
    parser.add_argument(
        "--distance-weight",
        type=float,
        default=0.05,
        help="weight of the Hyperliquid distance-from-price match (with --shared-data)",
    )
    parser.add_argument("--params-version", help="version string for the written params")


def _figures(ev: Any) -> dict[str, Any]:
    return dict(ev.to_dict())


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from engine.calibration import DISTANCE_QUANTILES, SEARCH_SPACE, DistanceTarget, calibrate
    from engine.model import MODEL_NAME, ModelParams
    from engine.tiers import load_shipped_binance_tiers

    if args.shared_data is None and not args.dataset:
        print("error: give --shared-data and/or --dataset", file=sys.stderr)
        return EXIT_INPUT
    try:
        split_ms = parse_epoch_ms(args.split)
    except UserError:
        print(f"error: --split {args.split!r} is not a time", file=sys.stderr)
        return EXIT_INPUT
    try:
        datasets = []
        if args.shared_data is not None:
            datasets.extend(shared_datasets(args.shared_data, split_ms, args.warmup))
        for spec in args.dataset:
            name, _, files = spec.partition("=")
            datasets.append(csv_dataset(name, files, split_ms, args.warmup))
        start = load_params(args.start) if args.start else ModelParams()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    space = SEARCH_SPACE
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(names) - set(SEARCH_SPACE))
        if unknown or not names:
            print(
                f"error: --only: unknown parameter(s) {', '.join(unknown) or '(none given)'}; "
                f"known: {', '.join(SEARCH_SPACE)}",
                file=sys.stderr,
            )
            return EXIT_INPUT
        space = {n: SEARCH_SPACE[n] for n in names}
    tiers, _, _ = load_shipped_binance_tiers("BTC/USDT:USDT")
    target = None
    if args.shared_data is not None and args.distance_weight > 0:
        target = DistanceTarget(
            tuple(hyperliquid_quantiles(args.shared_data, DISTANCE_QUANTILES)),
            datasets[0].bars,
            args.distance_weight,
        )
    result = calibrate(
        datasets,
        tiers,
        start,
        search_space=space,
        passes=args.passes,
        distance_target=target,
        progress=lambda msg: print(msg, file=sys.stderr),
    )
    version = args.params_version or f"{MODEL_NAME}/cal-{datetime.now(UTC):%Y%m%d}"
    params = replace(result.params, version=version)
    report: dict[str, Any] = {
        "params": params.to_dict(),
        "calibration": {
            "objective": result.objective,
            "trials": result.trials,
            "split": args.split,
            "warmup": args.warmup,
            "datasets": {name: _figures(ev) for name, ev in result.evaluations.items()},
        },
    }
    if args.shared_data is not None:
        report["calibration"]["distance_from_price"] = hyperliquid_comparison(
            args.shared_data, datasets, params
        )
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["calibration"], indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liqmap calibrate", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
