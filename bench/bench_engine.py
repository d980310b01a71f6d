"""Engine benchmark: one year of 5m bars × 40 leverage levels × a 2,000-bucket window, a snapshot
at every bar; the plain-Python reference timed in the same run; one-bar incremental updates.

    .venv/bin/python bench/bench_engine.py [--repeat 3] [--reference-bars 1000]

The year is the real Binance BTCUSDT 5m file (../shared/data) tiled forwards and time-reversed
in turn (a reversed tile swaps open and close), so prices and open interest stay continuous at
every seam. Timings are medians; peak RSS is the process maximum (``ru_maxrss``), data included.
Runs pinned to one core.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.model import Bars, EngineState, ModelParams, SnapshotBlock, simulate  # noqa: E402
from engine.reference import simulate_reference  # noqa: E402
from engine.tiers import load_shipped_binance_tiers  # noqa: E402
from maps.grid import PriceGrid  # noqa: E402

BARS_PER_YEAR = 365 * 288
FIVE_MIN_MS = 300_000


def shared_data() -> Path:
    return Path(os.environ.get("LIQMAP_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


def load_5m() -> dict[str, np.ndarray]:
    import csv

    path = shared_data() / "binance" / "BTCUSDT_perp_5m_klines_oi_funding.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        "open": np.array([float(r["price_open"]) for r in rows]),
        "high": np.array([float(r["price_high"]) for r in rows]),
        "low": np.array([float(r["price_low"]) for r in rows]),
        "close": np.array([float(r["price_close"]) for r in rows]),
        "oi": np.array([float(r["open_interest_usd"]) for r in rows]),
    }


def tiled_year(src: dict[str, np.ndarray], n: int) -> Bars:
    parts: dict[str, list[np.ndarray]] = {k: [] for k in src}
    total, forward = 0, True
    while total < n:
        for k in ("high", "low", "oi"):
            parts[k].append(src[k] if forward else src[k][::-1])
        parts["open"].append(src["open"] if forward else src["close"][::-1])
        parts["close"].append(src["close"] if forward else src["open"][::-1])
        total += len(src["open"])
        forward = not forward
    cat = {k: np.concatenate(v)[:n] for k, v in parts.items()}
    ts = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * FIVE_MIN_MS
    return Bars(ts, cat["open"], cat["high"], cat["low"], cat["close"], cat["oi"])


class CountingSink:
    """Touches every snapshot value (a sum: totals and leverage bands) so nothing is skipped,
    and keeps nothing."""

    def __init__(self) -> None:
        self.snapshots = 0
        self.cells = 0
        self.checksum = 0.0

    def __call__(self, block: SnapshotBlock) -> None:
        self.snapshots += len(block)
        widths = block.hi - block.lo
        self.cells += int(widths.sum())
        self.checksum += float(block.long.sum() + block.short.sum())
        self.checksum += sum(float(values.sum()) for _, values in block.bands)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference-bars", type=int, default=1000)
    parser.add_argument("--incremental", type=int, default=200, help="one-bar updates to time")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    tiers, source, valid_from = load_shipped_binance_tiers("BTC/USDT:USDT")
    src = load_5m()
    bars = tiled_year(src, BARS_PER_YEAR)
    params = ModelParams.default()
    params = ModelParams.from_dict({**params.to_dict(), "leverage_levels": 40})
    median_price = float(np.median(bars.close))
    # a 2,000-bucket snapshot at the median price (the model's full span, ModelParams.span)
    below, above = params.span(params.profile(tiers))
    bucket = (below + above) * median_price / 2000
    grid = PriceGrid(bucket_size=bucket)
    every = np.ones(len(bars), dtype=bool)
    print(f"tiers: {source} (valid from {valid_from}); params {params.version}")
    print(
        f"bars: {len(bars):,} (5m, tiled real data), leverage levels: {params.leverage_levels}, "
        f"bucket {bucket:.2f} USD, span −{below:.0%}/+{above:.0%}"
    )

    times = []
    sink = CountingSink()
    for _ in range(args.repeat):
        sink = CountingSink()
        t0 = time.perf_counter()
        result = simulate(bars, params, grid, tiers, snapshot_every=every, snapshot_sink=sink)
        times.append(time.perf_counter() - t0)
    assert result.state is not None
    full = statistics.median(times)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"full year, snapshot every bar: median {full:.2f} s over {args.repeat} runs "
        f"({', '.join(f'{t:.2f}' for t in times)}); {sink.snapshots:,} snapshots, "
        f"mean window {sink.cells / max(sink.snapshots, 1):.0f} buckets; "
        f"open cohorts at the end {result.state.open_cohorts:,}; peak RSS {peak_gib:.2f} GiB"
    )

    # reference vs engine on the same slice (the reference is O(open positions) per bar)
    k = args.reference_bars
    head = bars.slice(0, k)
    t0 = time.perf_counter()
    simulate_reference(head, params, grid, tiers, snapshot_every=[True] * k)
    ref_time = time.perf_counter() - t0
    fast_slice = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        simulate(head, params, grid, tiers, snapshot_every=every[:k], snapshot_sink=CountingSink())
        fast_slice.append(time.perf_counter() - t0)
    fast_k = statistics.median(fast_slice)
    print(
        f"reference on the first {k:,} bars: {ref_time:.2f} s ({ref_time / k * 1e3:.2f} ms/bar); "
        f"engine on the same bars: {fast_k * 1e3:.1f} ms → speed-up ×{ref_time / fast_k:,.0f}"
    )
    per_bar_full = full / len(bars)
    print(
        f"per-bar ratio, reference (first {k:,} bars) / engine (full year): "
        f"×{(ref_time / k) / per_bar_full:,.0f} (the reference gets slower as the book grows, so "
        "this understates the full-year speed-up)"
    )

    # incremental: state after 30 days, then one new bar with its snapshot
    warm = 30 * 288
    state = simulate(bars.slice(0, warm), params, grid, tiers).state
    assert state is not None
    blob = state.to_bytes()
    one = np.ones(1, dtype=bool)
    inc = []
    for i in range(args.incremental):
        nxt = bars.slice(warm + i, warm + i + 1)
        t0 = time.perf_counter()
        out = simulate(nxt, params, grid, tiers, state=state, snapshot_every=one)
        inc.append(time.perf_counter() - t0)
        assert out.state is not None and len(out.snapshots) == 1
        state = out.state
    t0 = time.perf_counter()
    blob = state.to_bytes()
    EngineState.from_bytes(blob)
    io_time = time.perf_counter() - t0
    print(
        f"incremental one bar + snapshot (state of {state.open_cohorts:,} open cohorts): "
        f"median {statistics.median(inc) * 1e3:.2f} ms, p90 "
        f"{sorted(inc)[int(0.9 * len(inc))] * 1e3:.2f} ms over {len(inc)} bars; "
        f"state round trip to/from bytes {io_time * 1e3:.1f} ms ({len(blob) / 2**20:.1f} MiB)"
    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
