"""Where the small answers' tail under load comes from: the bare app's floor, with and without
the mix's big answers.

Run:  .venv/bin/python bench/floor_mix.py [--think-ms 250] [--duration 30] [--sizes-from FILE]
          [--api-processes 1]

``bench_load.py``'s floor phase (``bench/bare_app.py`` under the uvicorn, loop and HTTP parser
``liqmap serve`` uses; no database, no liqmap code) is run twice in one process, the same 64
clients, the same mix and think time each time:

1. **as liqmap**: every operation answered with a body of the size liqmap's answers have (the
   median sizes a ``bench_load.py --json`` run read, or those of the run of 2026-12-02: heatmap
   1.5 MB, liquidationLevels 57 KB, snapshots 338 KB, longShortSplit 263 B);
2. **small answers only**: every operation answered with the ``longShortSplit`` body (263 B).

Under load each operation's p99 over its own idle p99 (one client, back to back) is printed for
both, and the second's p99 over the first's: how much of a small request's tail is the wait for
the cores that moving the big answers occupies (the server's writes, the loopback copies, the
load generator's reads, all on the same machine) — what no code inside the API changes while it
answers the same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_load import MIX, floor_phase  # noqa: E402

# the median answer sizes of the bench_load.py run of 2026-12-02 (docs/performance.md, Load)
LIQMAP_SIZES = {
    "heatmap": 1_539_250,
    "liquidationLevels": 56_647,
    "snapshots": 338_496,
    "longShortSplit": 263,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--think-ms", type=float, default=250.0)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load each")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4, help="idle and load blocks, in turn")
    parser.add_argument("--sizes-from", type=Path, help="a bench_load.py --json output")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    sizes = dict(LIQMAP_SIZES)
    if args.sizes_from:
        sizes = json.loads(args.sizes_from.read_text())["floor"]["sizes"]
    small = {op: sizes["longShortSplit"] for op, _ in MIX}
    # what floor_phase reads of bench_load's arguments
    floor_args = argparse.Namespace(
        think_ms=args.think_ms,
        idle_requests=500,
        paced_requests=0,
        seed=args.seed,
        clients=args.clients,
        floor_duration=args.duration,
        warmup=2.0,
        api_processes=args.api_processes,
        rounds=args.rounds,
        max_steal=0.03,
        block_retries=2,
    )
    folder = Path(tempfile.mkdtemp(prefix="liqmap-floor-mix-"))
    runs: dict[str, dict[str, Any]] = {}
    for name, answer_sizes in (("as liqmap", sizes), ("small answers only", small)):
        print(f"{name}: {json.dumps(answer_sizes)}", flush=True)
        runs[name] = floor_phase(folder, floor_args, answer_sizes)

    header = (
        f"{'operation':<18} │ {'as liqmap: idle p99':>19} {'p99':>8} {'/idle':>6} │ "
        f"{'small only: idle p99':>20} {'p99':>8} {'/idle':>6} │ {'p99 small/liqmap':>16}"
    )
    print(header)
    print("─" * len(header))
    a, b = runs["as liqmap"], runs["small answers only"]
    for op, _ in MIX:
        ai, al = a["idle"][op]["p99_ms"], a["load"][op]["p99_ms"]
        bi, bl = b["idle"][op]["p99_ms"], b["load"][op]["p99_ms"]
        print(
            f"{op:<18} │ {ai:>18.1f}m {al:>7.1f}m {al / ai:>5.1f}× │ "
            f"{bi:>19.1f}m {bl:>7.1f}m {bl / bi:>5.1f}× │ {bl / al:>15.2f}×"
        )
    for name, run in runs.items():
        errors = sum(run["load"][op]["errors"] for op, _ in MIX)
        rps = sum(run["load"][op]["rps"] for op, _ in MIX)
        print(f"{name}: {rps:,.0f} requests/s, {errors} errors")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
