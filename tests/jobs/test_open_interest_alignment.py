"""One open-interest convention: the value at a bar's *end*, stored at the bar's open.

Binance stamps an open-interest snapshot with the instant it was taken (``openInterestHist``
``timestamp``, and the archive's ``create_time`` up to the 2026-06-24 files): the end of the
bar that opened one period earlier. Both ingest paths store it at that bar's open, which is
what the engine reads (open interest at bar end, models.heatmap_store.load_bars).
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from jobs.archive import import_archive_folder, parse_metrics
from jobs.ingest import ingest_dataset
from jobs.runtime import Runtime

from .archive_files import write_archive

SYMBOL = "BTC/USDT:USDT"
BAR = 300_000


def _correlation(a: list[float], b: list[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))


def test_the_shared_csv_stamps_open_interest_at_the_snapshot_instant(
    binance_rows: list[dict[str, str]],
) -> None:
    """The USD open interest moves with the price over the bar *before* its row.

    Over five minutes the contract count barely changes, so a snapshot's USD value follows
    the price at the instant it was taken. The change between the rows opening at t and t+5m
    tracks the previous bar's close-to-close move (the price from t-5m to t), not the bar's
    own: the value on the row opening at t was taken at t, the end of the previous bar.
    """
    oi = [math.log(float(r["open_interest_usd"])) for r in binance_rows]
    close = [math.log(float(r["price_close"])) for r in binance_rows]
    d_oi = [b - a for a, b in itertools.pairwise(oi)]  # d_oi[i]: row i → row i+1
    d_close = [b - a for a, b in itertools.pairwise(close)]  # d_close[i]: close i → close i+1
    previous_bar = _correlation(d_oi[1:], d_close[:-1])  # OI(i→i+1) vs close(i-1→i)
    same_bar = _correlation(d_oi[1:], d_close[1:])  # OI(i→i+1) vs close(i→i+1)
    assert previous_bar > 0.6
    assert abs(same_bar) < 0.1


async def _stored_open_interest(rt: Runtime) -> dict[int, tuple[float, float]]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT ts, open_interest, open_interest_usd FROM open_interest ORDER BY ts")
        )
        return {round(r[0].timestamp() * 1000): (r[1], r[2]) for r in rows}


async def test_api_and_archive_store_the_same_open_interest_per_bar(
    runtime: Runtime, binance_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    """The same real snapshots through openInterestHist and through metrics files agree."""
    rows = binance_rows[2000:2600]  # two days and two calendar boundaries
    first, last = int(rows[0]["timestamp"]), int(rows[-1]["timestamp"])
    api = await ingest_dataset(
        runtime, "binanceusdm", SYMBOL, "open_interest", since_ms=first - BAR, until_ms=last
    )
    assert api.status == "succeeded", api.error
    from_api = await _stored_open_interest(runtime)
    async with runtime.engine.begin() as conn:
        await conn.execute(text("TRUNCATE open_interest, ingest_watermarks, job_runs"))
    write_archive(rows, tmp_path)
    report = await import_archive_folder(runtime, tmp_path)
    assert report.rejected == []
    from_archive = await _stored_open_interest(runtime)
    # every snapshot of the slice, at the open of the bar it closes, by both paths
    expected = [int(r["timestamp"]) - BAR for r in rows]
    assert sorted(from_api) == sorted(from_archive) == expected
    assert from_api == from_archive
    # and the value at bar t is the CSV's snapshot stamped t + 5 min
    by_stamp = {int(r["timestamp"]): float(r["open_interest_usd"]) for r in rows}
    assert all(from_api[t][1] == by_stamp[t + BAR] for t in expected)


def test_metrics_files_from_2026_06_25_label_the_start_of_the_period(tmp_path: Path) -> None:
    """binance-public-data#491: the same snapshot, labelled both ways, lands on the same bar."""
    header = "create_time,symbol,sum_open_interest,sum_open_interest_value\n"
    old = tmp_path / "BTCUSDT-metrics-2026-06-24.csv"  # labels 00:05 … 00:00 (next day)
    old.write_text(header + "2026-06-24 23:55:00,BTCUSDT,1,10\n2026-06-25 00:00:00,BTCUSDT,2,20\n")
    new = tmp_path / "BTCUSDT-metrics-2026-06-25.csv"  # labels 00:00 … 23:55
    new.write_text(header + "2026-06-25 00:00:00,BTCUSDT,3,30\n2026-06-25 00:05:00,BTCUSDT,4,40\n")

    def bar(text: str) -> int:
        return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)

    before = parse_metrics(old, BAR, "2026-06-24")
    after = parse_metrics(new, BAR, "2026-06-25")
    assert [(r.timestamp, r.open_interest) for r in before] == [
        (bar("2026-06-24 23:50"), 1.0),  # snapshot at 23:55 closes the 23:50 bar
        (bar("2026-06-24 23:55"), 2.0),  # snapshot at 00:00 closes the day's last bar
    ]
    assert [(r.timestamp, r.open_interest) for r in after] == [
        (bar("2026-06-25 00:00"), 3.0),  # the duplicate "00:00" label is the next bar's
        (bar("2026-06-25 00:05"), 4.0),
    ]
