"""Binance bulk-archive files (data.binance.vision layouts) written from the real shared CSV.

Klines: one file per UTC day of bar opens; the first day as a plain CSV without header, the
others zipped with the newer files' header. Metrics: 5-minute open-interest snapshots labelled
the way the archive did up to 2026-06-24, ``create_time`` = the snapshot instant, so a daily
file holds 00:05 … 00:00 of the next day. The CSV's ``open_interest_usd`` on the row opening
at ``t`` is the snapshot stamped ``t`` (test_open_interest_alignment.py shows it), so it is
written with ``create_time = t``. Volume columns are left empty (the CSV has no volume);
``sum_open_interest`` is the USD value over the previous bar's close (the price at the
snapshot).
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

KLINE_HEADER = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
]
METRICS_HEADER = [
    "create_time",
    "symbol",
    "sum_open_interest",
    "sum_open_interest_value",
    "count_toptrader_long_short_ratio",
    "sum_toptrader_long_short_ratio",
    "count_long_short_ratio",
    "sum_taker_long_short_vol_ratio",
]
BAR = 300_000


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, tz=UTC).strftime("%Y-%m-%d")


def write_archive(rows: list[dict[str, str]], folder: Path) -> dict[str, list[dict[str, str]]]:
    """Write klines and metrics files for ``rows``; returns the bars of each kline day."""
    by_day: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_day.setdefault(_day(int(row["timestamp"])), []).append(row)
    for index, (day, bars) in enumerate(sorted(by_day.items())):
        klines = io.StringIO()
        writer = csv.writer(klines)
        if index > 0:
            writer.writerow(KLINE_HEADER)
        for b in bars:
            ts = int(b["timestamp"])
            writer.writerow(
                [
                    ts,
                    b["price_open"],
                    b["price_high"],
                    b["price_low"],
                    b["price_close"],
                    "",
                    ts + BAR - 1,
                    "",
                    "",
                    "",
                    "",
                    "0",
                ]
            )
        if index == 0:
            (folder / f"BTCUSDT-5m-{day}.csv").write_text(klines.getvalue())
        else:
            with zipfile.ZipFile(folder / f"BTCUSDT-5m-{day}.zip", "w") as z:
                z.writestr(f"BTCUSDT-5m-{day}.csv", klines.getvalue())
    # metrics: a snapshot stamped 00:00 closes the previous day's last bar: it is in that file
    by_metrics_day: dict[str, list[str]] = {}
    for i, row in enumerate(rows):
        stamp = int(row["timestamp"])
        price = float(rows[i - 1]["price_close"]) if i else float(row["price_open"])
        usd = float(row["open_interest_usd"])
        when = datetime.fromtimestamp(stamp / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        line = io.StringIO()
        csv.writer(line).writerow(
            [when, "BTCUSDT", repr(usd / price), row["open_interest_usd"], "", "", "", ""]
        )
        by_metrics_day.setdefault(_day(stamp - 1), []).append(line.getvalue())
    for day, lines in by_metrics_day.items():
        header = io.StringIO()
        csv.writer(header).writerow(METRICS_HEADER)
        with zipfile.ZipFile(folder / f"BTCUSDT-metrics-{day}.zip", "w") as z:
            z.writestr(f"BTCUSDT-metrics-{day}.csv", header.getvalue() + "".join(lines))
    return by_day
