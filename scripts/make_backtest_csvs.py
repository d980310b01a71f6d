"""Write backtest/calibration CSVs (C.csv, OI.csv, L.csv) cut from the shared real data.

    .venv/bin/python scripts/make_backtest_csvs.py OUT_DIR [--shared-data ../shared/data]

OUT_DIR/coinglass-30m/   CoinGlass 30m regime file: spot OHLC, Binance OI, realized liquidations
OUT_DIR/coinglass-1h/    the same resampled to hourly bars
OUT_DIR/binance-30m/     Binance BTCUSDT 5m candles + OI resampled to 30m, CoinGlass liquidations
OUT_DIR/binance-5m/      the 5m candles + OI (C.csv, OI.csv) with the 30m L.csv: for
                         ``liqmap calibrate --dataset`` (``liqmap backtest`` needs equal bars)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cli.calibrate import shared_datasets  # noqa: E402
from engine.model import Bars  # noqa: E402


def write_bars(out: Path, bars: Bars) -> None:
    out.mkdir(parents=True, exist_ok=True)
    columns = (bars.timestamp, bars.open, bars.high, bars.low, bars.close)
    with (out / "C.csv").open("w") as f:
        f.write("timestamp,open,high,low,close\n")
        rows = zip(*(c.tolist() for c in columns), strict=True)
        f.writelines(",".join(map(repr, row)) + "\n" for row in rows)
    with (out / "OI.csv").open("w") as f:
        f.write("timestamp,open_interest_usd\n")
        rows = zip(bars.timestamp.tolist(), bars.open_interest_usd.tolist(), strict=True)
        f.writelines(f"{t},{oi!r}\n" for t, oi in rows)


def write_liquidations(
    path: Path,
    timestamp: npt.NDArray[np.int64],
    long_usd: npt.NDArray[np.float64],
    short_usd: npt.NDArray[np.float64],
) -> None:
    with path.open("w") as f:
        f.write("timestamp,long_usd,short_usd\n")
        rows = zip(timestamp.tolist(), long_usd.tolist(), short_usd.tolist(), strict=True)
        f.writelines(f"{t},{lo!r},{sh!r}\n" for t, lo, sh in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    for d in shared_datasets(args.shared_data, split_ms=0, warmup=0):
        name = d.name
        write_bars(args.out / name, d.bars)
        write_liquidations(
            args.out / name / "L.csv", d.realized_bars.timestamp, d.realized_long, d.realized_short
        )
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
