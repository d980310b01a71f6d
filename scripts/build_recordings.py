#!/usr/bin/env python
"""Regenerate the offline-replay recordings from the real data in ../shared/data.

Writes one ``<exchange_id>.recording.json`` per exchange, each carrying only that venue's own
recorded values in its own wire format (Binance USDⓈ-M fapi, Bybit v5, OKX v5, Hyperliquid
``/info``), with every replay window's clock in its metadata. ``liqmap … --replay DIR`` accepts
that folder, or ../shared/data itself.

    .venv/bin/python scripts/build_recordings.py [--shared-data DIR] [--out DIR] [--exchange ID]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jobs.replay import REPLAY_EXCHANGES, write_recordings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared-data",
        type=Path,
        default=Path(os.environ.get("LIQMAP_SHARED_DATA", REPO.parent / "shared" / "data")),
    )
    parser.add_argument("--out", type=Path, default=REPO / "jobs" / "replay" / "recordings")
    parser.add_argument("--exchange", action="append", choices=REPLAY_EXCHANGES)
    args = parser.parse_args(argv)
    for path in write_recordings(args.shared_data, args.out, args.exchange):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
