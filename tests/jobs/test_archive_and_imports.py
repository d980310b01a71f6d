"""Binance archive files and CoinGlass realized-liquidation files import exactly, idempotently."""

from __future__ import annotations

import csv
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from jobs.archive import import_archive_folder, parse_klines
from jobs.ingest import ingest_dataset
from jobs.liquidations import RealizedFileError, import_realized_file, read_realized_csv
from jobs.runtime import Runtime

from .archive_files import write_archive

DAY_MS = 86_400_000


async def test_archive_import_matches_source_and_is_idempotent(
    runtime: Runtime, binance_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    rows = binance_rows[:900]  # 2026-05-25 15:55 → about three days, four calendar days
    write_archive(rows, tmp_path)
    report = await import_archive_folder(runtime, tmp_path)
    assert report.rejected == []
    assert report.candles == len(rows)
    # one row per snapshot, at the open of the bar it closes (the first closes the bar before)
    assert report.open_interest == len(rows)
    again = await import_archive_folder(runtime, tmp_path)
    assert again.candles == len(rows)
    async with runtime.engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM candles"))).scalar_one()
        first, last = (await conn.execute(text("SELECT min(ts), max(ts) FROM candles"))).one()
        sample, snapshot = rows[500], rows[501]  # the bar, and the snapshot at its end
        ts = datetime.fromtimestamp(int(sample["timestamp"]) / 1000, tz=UTC)
        close, oi_usd = (
            await conn.execute(
                text(
                    "SELECT c.close, o.open_interest_usd FROM candles c JOIN open_interest o "
                    "USING (market_id, timeframe, ts) WHERE ts = :ts"
                ),
                {"ts": ts},
            )
        ).one()
    assert count == len(rows)
    assert int(first.timestamp() * 1000) == int(rows[0]["timestamp"])
    assert int(last.timestamp() * 1000) == int(rows[-1]["timestamp"])
    assert close == float(sample["price_close"])
    assert oi_usd == float(snapshot["open_interest_usd"])


async def test_corrupt_archive_file_rejected_whole_others_kept(
    runtime: Runtime, binance_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    by_day = write_archive(binance_rows[:600], tmp_path)
    bad_day = sorted(by_day)[1]
    with zipfile.ZipFile(tmp_path / f"BTCUSDT-5m-{bad_day}.zip", "w") as z:
        good = [b for b in by_day[bad_day]]
        lines = [
            f"{b['timestamp']},{b['price_open']},{b['price_high']},{b['price_low']},"
            f"{b['price_close']},,0,,,,,0"
            for b in good
        ]
        lines[10] = lines[10].replace(good[10]["price_high"], "not-a-number", 1)
        z.writestr(f"BTCUSDT-5m-{bad_day}.csv", "\n".join(lines))
    report = await import_archive_folder(runtime, tmp_path)
    assert report.rejected and f"BTCUSDT-5m-{bad_day}.zip" in report.rejected[0]
    assert "row 11" in report.rejected[0]
    async with runtime.engine.connect() as conn:
        days = (
            await conn.execute(
                text("SELECT count(*) FROM candles WHERE ts >= :a AND ts < :b"),
                {
                    "a": datetime.fromisoformat(bad_day + "T00:00:00+00:00"),
                    "b": datetime.fromisoformat(bad_day + "T23:59:59+00:00"),
                },
            )
        ).scalar_one()
        total = (await conn.execute(text("SELECT count(*) FROM candles"))).scalar_one()
    assert days == 0  # nothing of the bad file
    assert total == 600 - len(by_day[bad_day])
    runs = {r[0]: r for r in await _import_runs(runtime)}
    assert runs["candles"][1] == "rejected"
    assert runs["candles"][2] == total
    assert f"BTCUSDT-5m-{bad_day}.zip" in runs["candles"][4] and "row 11" in runs["candles"][4]
    assert runs["open_interest"][1:3] == ("succeeded", 600)


async def _watermark(rt: Runtime, dataset: str) -> int | None:
    async with rt.engine.connect() as conn:
        value = (
            await conn.execute(
                text("SELECT watermark FROM ingest_watermarks WHERE dataset = :d"), {"d": dataset}
            )
        ).scalar()
    return None if value is None else round(value.timestamp() * 1000)


async def _import_runs(rt: Runtime) -> list[tuple]:  # type: ignore[type-arg]
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT dataset, status, rows_written, watermark_to, error, exchange, symbol "
                "FROM job_runs WHERE job = 'import' ORDER BY id"
            )
        )
        return [tuple(r) for r in rows]


async def test_archive_import_moves_the_watermark_only_contiguously(
    runtime: Runtime, binance_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    rows = binance_rows[:1200]
    t0, cut = int(rows[0]["timestamp"]), int(rows[288]["timestamp"])
    api = await ingest_dataset(
        runtime, "binanceusdm", "BTC/USDT:USDT", "candles", since_ms=t0, until_ms=cut
    )
    assert (api.status, api.rows_written) == ("succeeded", 288)
    assert await _watermark(runtime, "candles") == cut

    # history after a hole [cut, rows[600]) must not hide the hole from the API ingest
    (tmp_path / "later").mkdir()
    write_archive(rows[600:], tmp_path / "later")
    later = await import_archive_folder(runtime, tmp_path / "later")
    assert later.rejected == [] and later.candles == 600
    assert await _watermark(runtime, "candles") == cut
    assert await _watermark(runtime, "open_interest") is None  # never ingested: left unset
    runs = await _import_runs(runtime)
    assert [(r[0], r[1], r[2], r[5], r[6]) for r in runs] == [
        ("candles", "succeeded", 600, "binanceusdm", "BTC/USDT:USDT"),
        ("open_interest", "succeeded", later.open_interest, "binanceusdm", "BTC/USDT:USDT"),
    ]
    assert round(runs[0][3].timestamp() * 1000) == cut and runs[1][3] is None

    # filling the hole makes the stored bars contiguous: the watermark runs to their end
    (tmp_path / "hole").mkdir()
    write_archive(rows[288:600], tmp_path / "hole")
    await import_archive_folder(runtime, tmp_path / "hole")
    end = int(rows[-1]["timestamp"]) + 300_000
    assert await _watermark(runtime, "candles") == end
    runs = await _import_runs(runtime)
    assert round(runs[-2][3].timestamp() * 1000) == end
    async with runtime.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT count(*) FROM candles"))).scalar()
    assert stored == len(rows)


def test_parse_klines_microsecond_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-5m-2025-01-01.csv"
    path.write_text("1735689600000000,1,2,0.5,1.5,10,1735689899999999,0,0,4,0,0\n")
    (row,) = parse_klines(path)
    assert row.timestamp == 1_735_689_600_000
    assert row.volume == 10 and row.taker_buy_volume == 4


async def test_coinglass_import(runtime: Runtime, shared_data: Path) -> None:
    path = shared_data / "coinglass" / "BTC_agg_liquidation_30m.csv"
    with path.open() as handle:
        source = list(csv.DictReader(handle))
    written = await import_realized_file(runtime, path, base="BTC")
    assert written == len(source)
    assert await import_realized_file(runtime, path, base="BTC") == len(source)
    async with runtime.engine.connect() as conn:
        n, long_sum, short_sum = (
            await conn.execute(
                text(
                    "SELECT count(*), sum(long_usd), sum(short_usd) FROM realized_liquidations "
                    "WHERE source = 'coinglass' AND exchange = '*' AND base = 'BTC' "
                    "AND timeframe = '30m'"
                )
            )
        ).one()
    assert n == len(source)
    assert long_sum == pytest.approx(sum(float(r["longUsd"]) for r in source), rel=1e-12)
    assert short_sum == pytest.approx(sum(float(r["shortUsd"]) for r in source), rel=1e-12)


def test_realized_csv_errors_name_file_row_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,longUsd,shortUsd\n1800000,1,2\n3600000,-5,2\n")
    with pytest.raises(RealizedFileError, match=r"bad.csv: row 3, column longUsd"):
        read_realized_csv(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("timestamp,longUsd,shortUsd\n")
    with pytest.raises(RealizedFileError, match="no rows"):
        read_realized_csv(empty)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("time,a,b\n1,2,3\n")
    with pytest.raises(RealizedFileError, match="no 'timestamp' column"):
        read_realized_csv(wrong)
