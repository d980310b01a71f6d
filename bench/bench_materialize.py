"""Materialize benchmark: the engine and graded encoding of one market's full recompute.

    .venv/bin/python bench/bench_materialize.py [--repeat 3]

The real Binance BTCUSDT 5m file (../shared/data, 8,015 bars ≈ 28 days) on the shipped 50 USD
grid, snapshots as the materializer takes them (every bar of the last 7 days, hourly before),
each encoded into graded buckets (``jobs.materialize.pack_snapshot``: totals and, from model v3
on, the leverage bands) in the snapshot sink as the materializer does, then made into stored rows
and sized (float32 bytes of its vectors and band blob). Timings are medians; pinned to one core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_engine import load_5m  # noqa: E402

from engine.model import Bars, ModelParams, SnapshotBlock, simulate  # noqa: E402
from engine.tiers import load_shipped_binance_tiers  # noqa: E402
from jobs import materialize  # noqa: E402
from maps.grid import PriceGrid  # noqa: E402
from models.heatmap_store import SnapshotRow  # noqa: E402

FIVE_MIN_MS = 300_000
HOUR_MS = 3_600_000
EPOCH = materialize.EPOCH


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    tiers, _source, _valid = load_shipped_binance_tiers("BTC/USDT:USDT")
    src = load_5m()
    n = len(src["close"])
    ts = 1_779_724_500_000 + np.arange(n, dtype=np.int64) * FIVE_MIN_MS
    bars = Bars(ts, src["open"], src["high"], src["low"], src["close"], src["oi"])
    params = ModelParams.default()
    grid = PriceGrid(bucket_size=50.0)
    base = ts >= ts[-1] - 7 * 86_400_000
    hourly = (ts + FIVE_MIN_MS) % HOUR_MS == 0
    every = base | hourly
    engine_t, encode_t = [], []
    stored = 0
    count = 0
    for _ in range(args.repeat):
        packed: list = []

        def sink(block: SnapshotBlock, out: list = packed) -> None:
            out.extend((s.price, materialize.pack_snapshot(s, 50.0)) for s in block)

        t0 = time.perf_counter()
        simulate(bars, params, grid, tiers, snapshot_every=every, snapshot_sink=sink)
        t1 = time.perf_counter()
        rows = [SnapshotRow.of(EPOCH, "5m", p, 50.0, v, params.version) for p, v in packed]
        t2 = time.perf_counter()
        engine_t.append(t1 - t0)
        encode_t.append(t2 - t1)
        count = len(rows)
        stored = sum(r.vector_bytes for r in rows)
    print(f"params {params.version}; {n:,} bars, {count:,} snapshots")
    print(
        f"engine with graded packing in the sink: median {statistics.median(engine_t):.2f} s "
        f"({', '.join(f'{t:.2f}' for t in engine_t)})"
    )
    print(
        f"stored rows (band blob encoding): median {statistics.median(encode_t):.2f} s "
        f"({', '.join(f'{t:.2f}' for t in encode_t)})"
    )
    print(f"vector bytes per snapshot (float32 as stored): mean {stored / max(count, 1):,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
