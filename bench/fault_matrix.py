"""Fault matrix: the database restarted N times under ``liqmap up --replay`` with live subscribers.

Run:  .venv/bin/python bench/fault_matrix.py [--restarts 5] [--down 20] [--speed 120]
          [--json FILE]

Everything is real and on loopback. A private PostgreSQL of this run's own (``initdb`` in a
temporary folder; the machine's shared server is never touched) holds two databases:

* ``clean``: ``liqmap up --replay ../shared/data --once`` — a clean replay, no fault;
* ``faulty``: ``liqmap up --replay ../shared/data`` (worker in its own child process, API in
  the main one) with the replay clock started ``--span-hours`` before the recording's end and
  running at ``--speed`` recorded seconds per wall second, 5-s ingest and materialize periods, so
  a new 5-minute bar closes every 300/speed s and is ingested, materialized and NOTIFYed.

Two websocket clients subscribe to ``heatmapUpdated`` (Binance and the cross-exchange total).
Then, ``--restarts`` times: wait for steady state (a new candle stored and a new column received
since the last trial), stop the server (``pg_ctl -m fast``: every session is cut), keep it down
``--down`` seconds, start it, and measure from the start until (a) a candle newer than the
newest before the stop is stored (ingest resumed), (b) each subscriber receives a column (the
subscription resumed). ``liqmap up`` must keep its PID throughout.

Finally the two databases are compared row by row up to the faulty run's newest bar: candles,
open interest, funding rates and every 5-minute heatmap snapshot (prices, bucket grid, vectors),
and each subscriber's columns must be exactly the stored snapshots after its first one: no gap,
no duplicate. Prints the fault matrix (fault, trials, survived, time to recover).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.outages import run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--down", type=float, default=20.0, help="seconds the server is down")
    parser.add_argument("--speed", type=float, default=120.0, help="recorded s per wall s")
    parser.add_argument("--span-hours", type=float, default=None, help="clock start before the end")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    # the clock must not reach the recording's end before the last trial: ~80 s per trial
    span = args.span_hours or (2 + args.restarts * 80 * args.speed / 3600)
    work = Path(tempfile.mkdtemp(prefix="liqmap-faults-"))
    print(f"logs in {work}", flush=True)
    report = run(args.restarts, args.down, args.speed, span, work)
    print(report.matrix())
    print(f"load average {report.load_average}, wall {report.wall_s} s, ok={report.ok}")
    if args.json:
        args.json.write_text(json.dumps(asdict(report), default=str, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
