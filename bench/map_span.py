"""The full map (model v2) on the real Binance month: span, mass at its edge, max pain, storage.

    .venv/bin/python bench/map_span.py [--leverage-min 2]

Runs the shipped parameters (optionally with another ``leverage_min``) over the shared 4-week
Binance BTCUSDT 5m file on the 50 USD grid, an hourly snapshot after the first day, and prints
per side: the span, the largest and mean share of the side's USD in the outermost tenth of the
span, where max pain lands (distance from the price, median and range) and how many buckets a
snapshot stores (graded, ``maps.compact``) against the plain grid, with the float32 bytes.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.model import Bars, ModelParams, simulate  # noqa: E402
from engine.tiers import load_shipped_binance_tiers  # noqa: E402
from maps import compact  # noqa: E402
from maps.grid import BucketVector, PriceGrid  # noqa: E402
from maps.view import MapView  # noqa: E402

HOUR = 3_600_000
BUCKET = 50.0


def load_bars() -> Bars:
    shared = Path(os.environ.get("LIQMAP_SHARED_DATA", REPO.parent / "shared" / "data"))
    path = shared / "binance" / "BTCUSDT_perp_5m_klines_oi_funding.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))

    def col(name: str) -> np.ndarray:
        return np.array([float(r[name]) for r in rows])

    return Bars(
        np.array([int(r["timestamp"]) for r in rows], dtype=np.int64),
        col("price_open"),
        col("price_high"),
        col("price_low"),
        col("price_close"),
        col("open_interest_usd"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leverage-min", type=float, default=None)
    args = parser.parse_args()
    tiers = load_shipped_binance_tiers("BTC/USDT:USDT")[0]
    params = ModelParams.default()
    if args.leverage_min is not None:
        params = ModelParams.from_dict({**params.to_dict(), "leverage_min": args.leverage_min})
    below, above = params.span(params.profile(tiers))
    bars = load_bars()
    grid = PriceGrid(BUCKET)
    hourly = (bars.timestamp + 300_000) % HOUR == 0
    result = simulate(bars, params, grid, tiers, None, hourly)
    outer: list[tuple[float, float]] = []
    pain: list[tuple[float, float]] = []
    plain: list[int] = []
    stored: list[int] = []
    for s in result.snapshots[24:]:
        p = s.price
        lows = grid.lower_price(s.bucket_origin_index + np.arange(len(s.long)))
        highs = lows + BUCKET
        outer.append(
            (
                float(s.long[highs <= p * (1 - 0.9 * below)].sum() / s.long.sum()),
                float(s.short[lows >= p * (1 + 0.9 * above)].sum() / s.short.sum()),
            )
        )
        vector = BucketVector(s.bucket_origin_index, s.long, s.short)
        view = MapView(vector, BUCKET, p)
        long_pain, short_pain = view.max_pain_long(), view.max_pain_short()
        assert long_pain is not None and short_pain is not None
        pain.append((long_pain.distance_pct, short_pain.distance_pct))
        packed = compact.encode(vector, int(p // BUCKET), compact.fine_buckets(p, BUCKET))
        plain.append(len(s.long))
        stored.append(len(packed.long_usd))
    # what reading graded buckets adds: spreading a stored snapshot back onto the grid, per
    # column of a caches-off heatmap (the plain v1 read is the decoded float32 as it is)
    import time

    packs = [
        compact.encode(
            BucketVector(s.bucket_origin_index, s.long, s.short),
            int(s.price // BUCKET),
            compact.fine_buckets(s.price, BUCKET),
        )
        for s in result.snapshots[-288:]
    ]
    packs = [
        compact.CompactVector(
            c.center,
            c.fine,
            c.q_first,
            c.long_usd.astype(np.float32).astype(np.float64),
            c.short_usd.astype(np.float32).astype(np.float64),
        )
        for c in packs
    ]
    runs = []
    for _ in range(20):
        t0 = time.perf_counter()
        for c in packs:
            v = compact.decode(c)
            v.long_usd.astype(np.float32), v.short_usd.astype(np.float32)
        runs.append(time.perf_counter() - t0)
    decode_ms = 1000 * float(np.median(runs))
    o, m = np.array(outer), np.array(pain)
    print(
        f"leverage {params.leverage_min:g}x–{params.leverage_max:g}x alpha "
        f"{params.leverage_alpha:g}: span −{below:.1%} / +{above:.1%}, "
        f"{len(outer)} hourly snapshots"
    )
    for i, side in enumerate(("long", "short")):
        print(
            f"  {side:5}: outermost tenth max {o[:, i].max():.4%} mean {o[:, i].mean():.4%}; "
            f"max pain {np.median(m[:, i]):.2f} % from the price "
            f"(range {m[:, i].min():.2f}–{m[:, i].max():.2f} %)"
        )
    print(
        f"  buckets per snapshot: grid {np.median(plain):.0f}, graded {np.median(stored):.0f} "
        f"(median); two float32 vectors: {8 * np.median(plain):.0f} B → "
        f"{8 * np.median(stored):.0f} B"
    )
    print(
        f"  spreading 288 stored snapshots back onto the grid (a 24 h × 5 min heatmap read "
        f"from PostgreSQL): {decode_ms:.2f} ms (median of 20)"
    )


if __name__ == "__main__":
    main()
