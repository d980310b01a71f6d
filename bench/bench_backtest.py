"""Backtest benchmark: ``liqmap backtest`` over one year of 5m bars, the whole process timed.

    .venv/bin/python bench/bench_backtest.py [--repeat 5] [--workdir /tmp/bt-year]

The year (105,120 bars) is the real Binance BTCUSDT 5m file (../shared/data) tiled forwards and
time-reversed in turn (as bench/bench_engine.py does), written as C.csv / OI.csv / L.csv; L holds
the CoinGlass 30m realized liquidations spread evenly over their six 5m bars (zero where the
file has none), tiled the same way. Each run is a fresh ``liqmap backtest`` process, timed wall
clock from start to exit (interpreter start, imports, CSV reading, model, scores). In the same
run the same files go through ``bench/naive_backtest.py``: a straightforward numpy
implementation of the same model (a loop over bars, the open positions as arrays), whose
predictions must equal the engine's. Peak RSS is the largest ``ru_maxrss`` of the child processes.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BARS_PER_YEAR = 365 * 288
FIVE_MIN_MS = 300_000
HALF_HOUR_MS = 1_800_000


def shared_data() -> Path:
    return Path(os.environ.get("LIQMAP_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


def _columns(path: Path) -> dict[str, np.ndarray]:
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(path)
    return {name: table.column(name).to_numpy() for name in table.column_names}


def tiled_year(n: int = BARS_PER_YEAR) -> dict[str, np.ndarray]:
    """The real 5m file tiled forward / time-reversed (a reversed tile swaps open and close)."""
    data = shared_data()
    k = _columns(data / "binance" / "BTCUSDT_perp_5m_klines_oi_funding.csv")
    regime = _columns(data / "coinglass" / "BTC_regime_30m.csv")
    ts = k["timestamp"].astype(np.int64)
    # realized 30m liquidations spread over their 5m bars (0 outside the CoinGlass file)
    at = {int(t): i for i, t in enumerate(regime["timestamp"].astype(np.int64))}
    slot = np.array([at.get(int(t) // HALF_HOUR_MS * HALF_HOUR_MS, -1) for t in ts])
    has = slot >= 0
    long_usd = np.where(has, regime["liquidation_long_usd"][slot] / 6.0, 0.0)
    short_usd = np.where(has, regime["liquidation_short_usd"][slot] / 6.0, 0.0)
    src = {
        "open": k["price_open"],
        "high": k["price_high"],
        "low": k["price_low"],
        "close": k["price_close"],
        "oi": k["open_interest_usd"],
        "long_usd": long_usd,
        "short_usd": short_usd,
    }
    parts: dict[str, list[np.ndarray]] = {key: [] for key in src}
    total, forward = 0, True
    while total < n:
        for key in ("high", "low", "oi", "long_usd", "short_usd"):
            parts[key].append(src[key] if forward else src[key][::-1])
        parts["open"].append(src["open"] if forward else src["close"][::-1])
        parts["close"].append(src["close"] if forward else src["open"][::-1])
        total += len(src["open"])
        forward = not forward
    out: dict[str, np.ndarray] = {
        key: np.concatenate(v)[:n].astype(np.float64) for key, v in parts.items()
    }
    out["timestamp"] = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * FIVE_MIN_MS
    return out


def write_year(workdir: Path, n: int = BARS_PER_YEAR) -> dict[str, Path]:
    year = tiled_year(n)
    workdir.mkdir(parents=True, exist_ok=True)
    ts = year["timestamp"]

    def write(name: str, header: str, cols: list[np.ndarray]) -> Path:
        path = workdir / name
        body = np.column_stack([ts.astype(np.float64), *cols])
        fmt = ["%d"] + ["%.10g"] * len(cols)
        np.savetxt(path, body, fmt=fmt, delimiter=",", header=header, comments="")
        return path

    return {
        "C": write(
            "C.csv",
            "timestamp,open,high,low,close",
            [year["open"], year["high"], year["low"], year["close"]],
        ),
        "OI": write("OI.csv", "timestamp,open_interest_usd", [year["oi"]]),
        "L": write("L.csv", "timestamp,long_usd,short_usd", [year["long_usd"], year["short_usd"]]),
    }


CPU: list[float] = []


def timed(cmd: list[str]) -> float:
    """Wall seconds of one process; its CPU seconds (user + sys) go to ``CPU``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return wall


def engine_only(files: dict[str, Path], repeat: int) -> None:
    """In-process: the predictions-only path vs the cohort path it replaced, same bars."""
    sys.path.insert(0, str(REPO))
    from cli.backtest import bars_from, read_inputs
    from engine.model import ModelParams
    from engine.model.cohorts import new_cohorts
    from engine.model.drivers import bar_drivers
    from engine.model.fates import cohort_fates, predict_only, predicted_liquidations
    from engine.model.state import empty_state
    from engine.tiers import load_shipped_binance_tiers
    from maps.grid import PriceGrid

    t0 = time.perf_counter()
    bars = bars_from(read_inputs(files["C"], files["OI"], files["L"]))
    csv_s = time.perf_counter() - t0
    params = ModelParams.default()
    tiers, _, _ = load_shipped_binance_tiers("BTC/USDT:USDT")
    profile = params.profile(tiers)
    drivers = bar_drivers(bars, params, empty_state(PriceGrid(bucket_size=1.0)))
    fast, slow = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        a = predict_only(drivers, profile, params)
        fast.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        cohorts = new_cohorts(drivers, profile, params)
        b = predicted_liquidations(cohorts, cohort_fates(cohorts, drivers, params), drivers)
        slow.append(time.perf_counter() - t0)
        del cohorts
    same = np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    print(
        f"in-process: reading the three CSVs {csv_s:.2f} s; predictions-only path median "
        f"{statistics.median(fast):.2f} s, cohort path {statistics.median(slow):.2f} s "
        f"(x{statistics.median(slow) / statistics.median(fast):.1f}); bit-identical: {same}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--naive-repeat", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/liqmap-bench-backtest"))
    parser.add_argument(
        "--engine-only", action="store_true", help="only the in-process engine comparison"
    )
    args = parser.parse_args()
    files = write_year(args.workdir)
    if args.engine_only:
        print(f"load average before: {os.getloadavg()}")
        engine_only(files, args.repeat)
        print(f"load average after: {os.getloadavg()}")
        return 0
    liqmap = str(Path(sys.executable).with_name("liqmap"))
    io = ["--candles", str(files["C"]), "--open-interest", str(files["OI"])]
    io += ["--liquidations", str(files["L"])]
    engine_pred = args.workdir / "engine.csv"
    naive_pred = args.workdir / "naive.csv"
    engine_cmd = [liqmap, "backtest", *io, "--predictions", str(engine_pred)]
    naive_cmd = [sys.executable, str(REPO / "bench" / "naive_backtest.py"), *io]
    naive_cmd += ["--predictions", str(naive_pred)]
    print(f"load average before: {os.getloadavg()}")
    engine_times = [timed(engine_cmd) for _ in range(args.repeat)]
    engine_cpu = statistics.median(CPU)
    CPU.clear()
    naive_times = [timed(naive_cmd) for _ in range(args.naive_repeat)]
    naive_cpu = statistics.median(CPU)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    e = np.loadtxt(engine_pred, delimiter=",", skiprows=1)
    v = np.loadtxt(naive_pred, delimiter=",", skiprows=1)
    same = np.allclose(e, v, rtol=1e-9, atol=1e-3)
    med_e, med_v = statistics.median(engine_times), statistics.median(naive_times)
    print(f"bars: {BARS_PER_YEAR:,} (5m, tiled real data)")
    print(
        f"liqmap backtest, whole process: median {med_e:.2f} s "
        f"({', '.join(f'{t:.2f}' for t in engine_times)}); CPU {engine_cpu:.2f} s"
    )
    print(
        f"naive numpy implementation, whole process: median {med_v:.2f} s "
        f"({', '.join(f'{t:.2f}' for t in naive_times)}); CPU {naive_cpu:.2f} s; "
        f"speed-up x{med_v / med_e:.1f} wall, x{naive_cpu / engine_cpu:.1f} CPU"
    )
    print(f"same predictions: {same}; peak RSS of a child {peak:.2f} GiB")
    print(f"load average after: {os.getloadavg()}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
