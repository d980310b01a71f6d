"""Ingest write-path benchmark: the real bulk path vs the naive ORM ``session.add_all`` path,
and a one-year backfill of 5m candles from Binance archive files.

Run:  .venv/bin/python bench/bench_ingest.py [--database-url URL] [--rows 100000] [--repeats 5]

Both write paths start from the same raw bars (epoch ms and four floats, as parsed from an
exchange page) and are timed from building their records to the commit: the bulk path builds
``CandleRow`` records and calls ``models.market_data_store.write_candles`` (monthly partitions
created ahead, COPY into the staging table, one ``INSERT … ON CONFLICT``), the ORM path builds
``Candle`` objects and ``session.add_all``s them into existing partitions. Each repeat writes a
new year of bars, so the bulk path creates its twelve monthly partitions every time.

Uses a fresh database on the given server (DATABASE_URL, else an embedded PostgreSQL) and drops it
afterwards. Bars are the real Binance 5m bars of ../shared/data tiled forward in time.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import statistics
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from jobs.archive import import_archive_folder  # noqa: E402
from jobs.runtime import Runtime  # noqa: E402
from liqmap import migrations  # noqa: E402
from liqmap.database import (  # noqa: E402
    create_engine,
    normalize_url,
    start_embedded_server,
    with_database,
)
from liqmap.settings import Settings  # noqa: E402
from models import Candle  # noqa: E402
from models.market_data_store import write_candles  # noqa: E402
from models.partitions import ensure_month_partitions  # noqa: E402
from models.records import CandleRow  # noqa: E402
from tests.conftest import create_database, drop_database  # noqa: E402

STEP = 300_000
SHARED = Path(os.environ.get("LIQMAP_SHARED_DATA", REPO.parent / "shared" / "data"))


def real_bars() -> list[tuple[float, float, float, float]]:
    with (SHARED / "binance" / "BTCUSDT_perp_5m_klines_oi_funding.csv").open() as handle:
        return [
            (
                float(r["price_open"]),
                float(r["price_high"]),
                float(r["price_low"]),
                float(r["price_close"]),
            )
            for r in csv.DictReader(handle)
        ]


def tiled(n: int, start_ms: int) -> list[tuple[int, float, float, float, float]]:
    bars = real_bars()
    return [(start_ms + i * STEP, *bars[i % len(bars)]) for i in range(n)]


async def setup_market(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO exchanges (id, name) VALUES ('bench', 'bench') ON CONFLICT DO NOTHING"
            )
        )
        return (
            await conn.execute(
                text(
                    "INSERT INTO markets (exchange_id, symbol, exchange_symbol, base, quote, "
                    "settle, linear, contract_size) VALUES ('bench','BTC/USDT:USDT','BTCUSDT',"
                    "'BTC','USDT','USDT',true,1) ON CONFLICT (exchange_id, symbol) DO UPDATE "
                    "SET base = 'BTC' RETURNING id"
                )
            )
        ).scalar_one()


async def bench_writes(url: str, rows: int, repeats: int) -> None:
    engine = create_engine(url, pool_size=2)
    market = await setup_market(engine)
    copy_times, copy_builds, orm_times, orm_builds = [], [], [], []
    orm_rows = max(rows // 10, 1000)
    for r in range(repeats):
        start = 1_600_000_000_000 + r * rows * STEP * 2
        bars = tiled(rows, start)
        t0 = time.perf_counter()
        candles = [CandleRow(ts, o, h, lo, c) for ts, o, h, lo, c in bars]
        built = time.perf_counter()
        async with engine.begin() as conn:
            written = await write_candles(conn, market, "5m", candles)
        copy_times.append(time.perf_counter() - t0)
        copy_builds.append(built - t0)
        assert written == rows

        orm_start = start + rows * STEP
        orm_bars = tiled(orm_rows, orm_start)
        # the naive path writes into existing monthly partitions (made here, untimed) rather than
        # piling rows into the default partition, which every later ATTACH would have to scan
        async with engine.begin() as conn:
            await ensure_month_partitions(
                conn,
                "candles",
                datetime.fromtimestamp(orm_start / 1000, tz=UTC),
                datetime.fromtimestamp(orm_bars[-1][0] / 1000, tz=UTC),
            )
        sessions = async_sessionmaker(engine)
        t0 = time.perf_counter()
        objects = [
            Candle(
                market_id=market,
                timeframe="5m",
                ts=datetime.fromtimestamp(ts / 1000, tz=UTC),
                open=o,
                high=h,
                low=lo,
                close=c,
            )
            for ts, o, h, lo, c in orm_bars
        ]
        built = time.perf_counter()
        async with sessions() as session, session.begin():
            session.add_all(objects)
        orm_times.append(time.perf_counter() - t0)
        orm_builds.append(built - t0)
    await engine.dispose()
    median = statistics.median
    copy_rate = rows / median(copy_times)
    orm_rate = orm_rows / median(orm_times)
    print(
        f"write_candles (COPY + upsert): {rows} rows, median {median(copy_times) * 1000:.0f} ms "
        f"(records {median(copy_builds) * 1000:.0f} ms) → {copy_rate:,.0f} rows/s; "
        f"runs {', '.join(f'{t * 1000:.0f}' for t in copy_times)} ms"
    )
    print(
        f"ORM add_all: {orm_rows} rows, median {median(orm_times) * 1000:.0f} ms "
        f"(objects {median(orm_builds) * 1000:.0f} ms) → {orm_rate:,.0f} rows/s; "
        f"runs {', '.join(f'{t * 1000:.0f}' for t in orm_times)} ms"
    )
    print(f"ratio copy/ORM: {copy_rate / orm_rate:.1f}x")


def write_year_archive(folder: Path) -> int:
    bars = tiled(365 * 288, int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000))
    by_day: dict[str, list[tuple[int, float, float, float, float]]] = {}
    for bar in bars:
        day = datetime.fromtimestamp(bar[0] / 1000, tz=UTC).strftime("%Y-%m-%d")
        by_day.setdefault(day, []).append(bar)
    for day, rows in by_day.items():
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(
            [
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
        )
        for ts, o, h, lo, c in rows:
            w.writerow([ts, o, h, lo, c, "", ts + STEP - 1, "", "", "", "", 0])
        with zipfile.ZipFile(folder / f"BTCUSDT-5m-{day}.zip", "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"BTCUSDT-5m-{day}.csv", out.getvalue())
    return len(bars)


async def bench_backfill(url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        n = write_year_archive(Path(tmp))
        settings = Settings(_env_file=None, exchanges=["binanceusdm"])  # type: ignore[call-arg]
        engine = create_engine(url, pool_size=2)
        rt = Runtime(settings=settings, engine=engine)
        t0 = time.perf_counter()
        report = await import_archive_folder(rt, Path(tmp))
        elapsed = time.perf_counter() - t0
        await engine.dispose()
    print(
        f"archive backfill: {report.files} daily files, {report.candles} of {n} candles "
        f"in {elapsed:.1f} s ({report.candles / elapsed:,.0f} rows/s, zip + CSV parsing, "
        f"validation, one transaction per file)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.database_url:
        server = normalize_url(args.database_url)
    else:
        server = with_database(start_embedded_server(Path(tempfile.mkdtemp())), "postgres")
    url = create_database(server, "liqmap_bench")
    try:
        migrations.upgrade(url)
        asyncio.run(bench_writes(url, args.rows, args.repeats))
        asyncio.run(bench_backfill(url))
    finally:
        drop_database(server, url)


if __name__ == "__main__":
    main()
