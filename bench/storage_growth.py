"""Storage growth: rows and bytes per market per year, measured on a real replay database.

Run:  .venv/bin/python bench/storage_growth.py [--database-url URL] [--markets 9] [--json FILE]

Fills a fresh database with the main job (``liqmap up --replay ../shared/data --once``: the
shared 4-week Binance BTCUSDT window), then measures every table on disk — heap, TOAST and
indexes of all monthly partitions (``pg_total_relation_size``) — and divides by its rows. Rows
per year per market follow from the schedule: a row per 5 min bar for candles, open interest and
swept levels, per 8 h for funding, per hour for the hourly snapshots that are kept for all
history, while the 5 min snapshots are pruned to ``recent_days`` (7) and stop growing. Heatmap
series are per market plus one cross-exchange aggregate per symbol. The job queue rows are the
bookkeeping of one run per task and period (procrastinate keeps finished jobs until pruned).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from tests.conftest import create_database, drop_database  # noqa: E402
from tests.reliability.harness import (  # noqa: E402
    LiqmapProcess,
    PrivatePostgres,
    liqmap_env,
    replay_pipeline,
)

SHARED = Path(os.environ.get("LIQMAP_SHARED_DATA", REPO.parent / "shared" / "data"))
BARS_PER_YEAR = 365 * 288
TABLES = (
    "candles",
    "open_interest",
    "funding_rates",
    "heatmap_snapshots",
    "swept_levels",
    "realized_liquidations",
    "liquidation_events",
    "margin_tiers",
    "job_runs",
    "procrastinate_jobs",
    "procrastinate_events",
)


def tree_bytes(conn: psycopg.Connection[Any], table: str) -> int:
    """Heap + TOAST + indexes of a table and all its partitions."""
    row = conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree(%s)",
        (table,),
    ).fetchone()
    size = int(row[0]) if row else 0
    if not size:  # not partitioned
        row = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()
        size = int(row[0]) if row else 0
    return size


SMALL = 2000  # below this many rows, page overhead dominates: use the rows' own size


def row_bytes(conn: psycopg.Connection[Any], table: str, rows: int, size: int) -> float:
    """Bytes per row: on disk for large tables; for small ones the average tuple (data + 24 B
    header + 4 B line pointer) plus 40 % for indexes, since one 8 kB page would dominate."""
    if rows >= SMALL or rows == 0:
        return size / rows if rows else 0.0
    row = conn.execute(f"SELECT avg(pg_column_size(t.*)) FROM {table} t").fetchone()
    return (float(row[0]) + 28) * 1.4 if row and row[0] is not None else 0.0


def measure(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # settle visibility maps and statistics (sizes are real)
        tables = {}
        for table in TABLES:
            rows = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            size = tree_bytes(conn, table)
            tables[table] = {
                "rows": rows,
                "bytes": size,
                "bytes_per_row": row_bytes(conn, table, rows, size),
            }
        snaps = {
            res: {"rows": int(n), "series": int(s), "buckets": float(b), "row_bytes": float(rb)}
            for res, n, s, b, rb in conn.execute(
                "SELECT resolution, count(*), count(DISTINCT series_id), "
                "avg(array_length(long_usd, 1)), avg(pg_column_size(h.*)) "
                "FROM heatmap_snapshots h GROUP BY 1"
            )
        }
        series = int(conn.execute("SELECT count(*) FROM heatmap_series").fetchone()[0])  # type: ignore[index]
        markets = int(conn.execute("SELECT count(*) FROM markets").fetchone()[0])  # type: ignore[index]
        periods = int(
            conn.execute(  # type: ignore[index]
                "SELECT count(DISTINCT args->>'timestamp') FROM procrastinate_jobs"
            ).fetchone()[0]
        )
    return {
        "tables": tables,
        "snapshots": snaps,
        "series": series,
        "markets": markets,
        "periods": periods,
    }


def per_market_year(m: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(what, rows per market per year, bytes per market per year)."""
    t = m["tables"]
    snap_bpr = t["heatmap_snapshots"]["bytes_per_row"]
    series_per_market = m["series"] / max(1, m["markets"])  # own series + aggregate share
    recent_5m_rows = m["snapshots"].get("5m", {}).get("rows", 0) / max(1, m["series"])
    out = [
        ("candles (5m)", BARS_PER_YEAR, BARS_PER_YEAR * t["candles"]["bytes_per_row"]),
        ("open interest (5m)", BARS_PER_YEAR, BARS_PER_YEAR * t["open_interest"]["bytes_per_row"]),
        ("funding (8h)", 3 * 365, 3 * 365 * t["funding_rates"]["bytes_per_row"]),
        (
            "heatmap snapshots 1h (all history)",
            8760 * series_per_market,
            8760 * series_per_market * snap_bpr,
        ),
        (
            "swept levels (5m)",
            BARS_PER_YEAR * series_per_market,
            BARS_PER_YEAR * series_per_market * t["swept_levels"]["bytes_per_row"],
        ),
        (
            "job runs (3 ingest runs per 5 min)",
            3 * BARS_PER_YEAR,
            3 * BARS_PER_YEAR * t["job_runs"]["bytes_per_row"],
        ),
        (
            "queue jobs + 3 events each (4 per 5 min, unpruned)",
            4 * BARS_PER_YEAR,
            4
            * BARS_PER_YEAR
            * (
                t["procrastinate_jobs"]["bytes_per_row"]
                + 3 * t["procrastinate_events"]["bytes_per_row"]
            ),
        ),
    ]
    out.append(
        (
            "heatmap snapshots 5m (last 7 days, constant)",
            recent_5m_rows * series_per_market,
            recent_5m_rows * series_per_market * snap_bpr,
        )
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--markets", type=int, default=9, help="for the fleet total")
    parser.add_argument("--worker-seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from liqmap.database import normalize_url

    private = None
    if args.database_url:
        admin = normalize_url(args.database_url)
    else:
        private = PrivatePostgres()
        private.start()
        admin = private.url
    url = create_database(admin, "liqmap_bench_storage")
    try:
        started = time.perf_counter()
        folder = Path(tempfile.mkdtemp())
        replay_pipeline(url, SHARED, folder / "up.log")
        print(f"replay run: {time.perf_counter() - started:.0f} s")
        # a worker for a while, so that job runs and the queue have rows to measure
        worker = LiqmapProcess(
            ["worker", "--replay", str(SHARED)],
            liqmap_env(url, ingest_interval_s=1, materialize_interval_s=1, log_level="WARNING"),
            folder / "worker.log",
        )
        time.sleep(args.worker_seconds)
        worker.stop()
        m = measure(url)
    finally:
        drop_database(admin, url)
        if private is not None:
            private.close()

    print(f"\nmeasured ({m['markets']} market, {m['series']} heatmap series):")
    print(f"{'table':<24} {'rows':>9} {'MB':>8} {'bytes/row':>10}")
    for table, v in m["tables"].items():
        print(f"{table:<24} {v['rows']:>9} {v['bytes'] / 1e6:>8.2f} {v['bytes_per_row']:>10.0f}")
    for res, v in m["snapshots"].items():
        print(
            f"  snapshots {res}: {v['rows']} rows over {v['series']} series, "
            f"{v['buckets']:.0f} buckets per side, {v['row_bytes']:.0f} B per row (logical)"
        )
    rows = per_market_year(m)
    print("\nper market per year:")
    print(f"{'what':<46} {'rows':>12} {'MB':>9}")
    total_rows = total_bytes = 0.0
    for what, n, b in rows:
        print(f"{what:<46} {n:>12,.0f} {b / 1e6:>9.1f}")
        total_rows += n
        total_bytes += b
    print(f"{'total':<46} {total_rows:>12,.0f} {total_bytes / 1e6:>9.1f}")
    print(f"\n{args.markets} markets: {total_bytes * args.markets / 1e9:.2f} GB per year")
    if args.json:
        args.json.write_text(json.dumps({"measured": m, "per_market_year": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
