"""`liqmap export snapshots`: export → read back with pyarrow / pandas → equal to what the
public API serves for the same snapshots (the `snapshots` connection, paged over HTTP), with the
metadata a reader needs in the file (checked against plain SQL), the same dtypes in Parquet and
CSV, and the file mode the umask gives."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from cli.export import ExportRequest, export_snapshots
from cli.main import main
from tests.viewer.conftest import NO_OI_EXCHANGE, SYMBOL, ViewerData

SNAPSHOTS = """query ($symbol: String!, $start: DateTime!, $end: DateTime!, $exchange: String,
    $resolution: SnapshotResolution!, $after: String) {
  snapshots(symbol: $symbol, start: $start, end: $end, exchange: $exchange,
            resolution: $resolution, first: 100, after: $after) {
    edges { node { at price levels {
      price longUsd shortUsd longUsdByLeverage shortUsdByLeverage } } }
    pageInfo { hasNextPage endCursor }
  } }"""


async def api_rows(
    app: Starlette, start: datetime, end: datetime, exchange: str, resolution: str
) -> pd.DataFrame:
    """The tidy rows the API's snapshots connection describes, every page of it."""
    rows: list[tuple[Any, ...]] = []
    after = None
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://viewer.test") as client:
        while True:
            variables = {
                "symbol": SYMBOL,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "exchange": None if exchange == "all" else exchange,
                "resolution": resolution,
                "after": after,
            }
            payload = {"query": SNAPSHOTS, "variables": variables}
            body = (await client.post("/graphql", json=payload)).json()
            assert "errors" not in body, body
            page = body["data"]["snapshots"]
            for edge in page["edges"]:
                at = pd.Timestamp(edge["node"]["at"])
                mark = edge["node"]["price"]
                rows += [
                    (
                        at,
                        exchange,
                        lv["price"],
                        mark,
                        lv["longUsd"],
                        lv["shortUsd"],
                        *lv["longUsdByLeverage"],
                        *lv["shortUsdByLeverage"],
                    )
                    for lv in edge["node"]["levels"]
                ]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    return pd.DataFrame(rows, columns=COLUMNS)


BANDS = ["1_10", "11_25", "26_50", "51_100", "101_plus"]
BAND_COLUMNS = [f"{side}_usd_lev_{b}" for side in ("long", "short") for b in BANDS]
COLUMNS = [
    "timestamp",
    "exchange",
    "price",
    "snapshot_price",
    "long_usd",
    "short_usd",
    *BAND_COLUMNS,
]


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """The API's rows in the export's dtypes, in the export's order."""
    frame = frame.copy()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).astype("datetime64[ms, UTC]")
    frame["exchange"] = frame["exchange"].astype("str")
    for column in ("price", "snapshot_price", "long_usd", "short_usd", *BAND_COLUMNS):
        frame[column] = frame[column].astype("float64")
    return frame.sort_values(["timestamp", "exchange", "price"]).reset_index(drop=True)


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["timestamp", "exchange", "price"]).reset_index(drop=True)


def read_csv_export(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """As docs/viewer.md tells an analyst to: pandas, the '#' lines skipped, dtypes from the
    metadata line."""
    with open(path, encoding="utf-8") as f:
        line = next(x for x in f if x.startswith("# metadata: "))
    metadata = json.loads(line.removeprefix("# metadata: "))
    dtypes = {c: m["pandas"] for c, m in metadata["columns"].items()}
    return pd.read_csv(path, comment="#").astype(dtypes), metadata


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


async def sql_summary(viewer_data: ViewerData, scope: str, resolution: str, a: Any, b: Any) -> Any:
    """Snapshots (count, first and last bar, sizes, versions) of a series, with plain SQL."""
    sid = await viewer_data.series_id(scope)
    async with viewer_data.engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT count(*), min(ts), max(ts), array_agg(DISTINCT bucket_size), "
                    "array_agg(DISTINCT model_version) FROM heatmap_snapshots "
                    "WHERE series_id = :s AND resolution = :r AND ts >= :a AND ts < :b"
                ),
                {"s": sid, "r": resolution, "a": a, "b": b},
            )
        ).one()


async def cli(*args: str, url: str) -> int:
    return await asyncio.to_thread(main, ["export", "snapshots", "--database-url", url, *args])


def hours_before_cut(viewer_data: ViewerData, first: int, last: int) -> tuple[datetime, datetime]:
    cut = datetime.fromtimestamp(viewer_data.cut_ms / 1000, UTC)
    return cut - timedelta(hours=first), cut - timedelta(hours=last)


async def test_parquet_round_trip_equals_the_api(
    viewer_data: ViewerData,
    viewer_app: Starlette,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    start, end = hours_before_cut(viewer_data, 72, 24)
    out = tmp_path / "snapshots.parquet"
    code = await cli(
        "--symbol",
        SYMBOL,
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--exchange",
        "all",
        "--exchange",
        f"binanceusdm,{NO_OI_EXCHANGE}",
        "-o",
        str(out),
        url=viewer_data.url,
    )
    assert code == 0
    # 48 hours × 2 series with maps: the total and Binance; Bybit (no open interest) has none
    assert "from 96 snapshots" in capsys.readouterr().out
    table = pq.read_table(out)
    assert table.schema.names == COLUMNS
    assert [str(t) for t in table.schema.types] == [
        "timestamp[ms, tz=UTC]",
        "string",
        "double",
        "double",
        "double",
        "double",
        *["double"] * 10,
    ]
    exported = ordered(pd.read_parquet(out))
    per_series = {
        ex: await api_rows(viewer_app, start, end, ex, "ONE_HOUR")
        for ex in ("all", "binanceusdm", NO_OI_EXCHANGE)
    }
    assert per_series[NO_OI_EXCHANGE].empty
    expected = tidy(pd.concat([rows for rows in per_series.values() if not rows.empty]))
    assert len(exported) > 96 * 200
    pd.testing.assert_frame_equal(exported, expected, check_exact=True)
    # the bands sum to the side's total, to float32 storage precision (each is a float32
    # rounding of sums of the same engine units: ≤ 2⁻²⁴ of both, ≈ 1.2e-7 relative)
    for side, band_columns in (("long_usd", BAND_COLUMNS[:5]), ("short_usd", BAND_COLUMNS[5:])):
        summed = exported[band_columns].to_numpy().sum(axis=1)
        assert (summed > 0).any()
        np.testing.assert_allclose(summed, exported[side], rtol=3e-7, atol=1e-9)
    # the total is the sum over the venues with open interest: Binance's rows, relabelled
    total = exported[exported["exchange"] == "all"].drop(columns="exchange")
    binance = exported[exported["exchange"] == "binanceusdm"].drop(columns="exchange")
    pd.testing.assert_frame_equal(
        total.reset_index(drop=True), binance.reset_index(drop=True), check_exact=True
    )
    # timestamps are the maps' instants: hourly, inside [start, end)
    stamps = exported["timestamp"].drop_duplicates()
    assert len(stamps) == 48 and stamps.min() >= start and stamps.max() < end


async def test_csv_round_trip_equals_the_api(
    viewer_data: ViewerData, viewer_app: Starlette, tmp_path: Path
) -> None:
    start, end = hours_before_cut(viewer_data, 3, 0)
    out = tmp_path / "snapshots.csv"
    code = await cli(
        "--symbol",
        SYMBOL,
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--exchange",
        "binanceusdm",
        "--resolution",
        "5m",
        "--format",
        "csv",
        "--quiet",
        "-o",
        str(out),
        url=viewer_data.url,
    )
    assert code == 0
    exported, _ = read_csv_export(out)
    exported = ordered(exported)
    expected = tidy(await api_rows(viewer_app, start, end, "binanceusdm", "FIVE_MINUTES"))
    assert exported["timestamp"].nunique() == 36
    pd.testing.assert_frame_equal(exported, expected, check_exact=True)
    # every number is written as a float, so a plain read infers float64 as Parquet has it
    plain = pd.read_csv(out, comment="#")
    assert {plain[c].dtype.name for c in COLUMNS[2:]} == {"float64"}
    body = out.read_text().splitlines()
    assert body[3] == ",".join(COLUMNS) and body[4].split(",")[2].endswith(".0")


async def test_metadata_dtypes_and_mode_are_the_same_in_parquet_and_csv(
    viewer_data: ViewerData, tmp_path: Path
) -> None:
    start, end = hours_before_cut(viewer_data, 30, 6)
    frames = {}
    metadata = {}
    for fmt, mask in (("parquet", 0o022), ("csv", 0o027)):
        out = tmp_path / f"both.{fmt}"
        with umask(mask):
            code = await cli(
                "--symbol",
                SYMBOL,
                "--start",
                start.isoformat(),
                "--end",
                end.isoformat(),
                "--exchange",
                "all,binanceusdm",
                "--format",
                fmt,
                "--quiet",
                "-o",
                str(out),
                url=viewer_data.url,
            )
        assert code == 0
        # the user's umask, not the temporary file's 0600
        assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
        if fmt == "parquet":
            frames[fmt] = pd.read_parquet(out)
            metadata[fmt] = json.loads(pq.read_schema(out).metadata[b"liqmap"])
            units = {f.name: (f.metadata or {}).get(b"unit") for f in pq.read_schema(out)}
            assert units["price"] == b"USD" and units["long_usd"] == b"USD notional"
        else:
            frames[fmt], metadata[fmt] = read_csv_export(out)
    # one table, one set of dtypes, whichever the format
    assert frames["parquet"].dtypes.to_dict() == frames["csv"].dtypes.to_dict()
    pd.testing.assert_frame_equal(frames["parquet"], frames["csv"], check_exact=True)
    first, second = metadata["parquet"], metadata["csv"]
    assert {k: v for k, v in first.items() if k != "exported_at"} == {
        k: v for k, v in second.items() if k != "exported_at"
    }
    meta = first
    # what the file holds, said in it, and true (plain SQL over the same bars)
    assert meta["format"] == "liqmap.snapshots/3" and meta["symbol"] == SYMBOL
    # the total covers the venues with maps: Binance alone (Bybit has no open interest)
    assert meta["exchanges"] == {"all": ["binanceusdm"], "binanceusdm": ["binanceusdm"]}
    assert meta["range"]["start"] == start.isoformat().replace("+00:00", "Z")
    assert meta["resolution"] == "1h"
    counts = {}
    versions: set[str] = set()
    for scope in ("all", "binanceusdm"):
        n, first_bar, last_bar, sizes, found = await sql_summary(
            viewer_data, scope, "1h", start - timedelta(minutes=5), end - timedelta(minutes=5)
        )
        counts[scope] = n
        versions |= set(found)
        assert sizes == [50.0]
        assert meta["snapshots"]["first"] == (first_bar + timedelta(minutes=5)).isoformat().replace(
            "+00:00", "Z"
        )
        assert meta["snapshots"]["last"] == (last_bar + timedelta(minutes=5)).isoformat().replace(
            "+00:00", "Z"
        )
    assert meta["snapshots"]["per_exchange"] == counts and meta["snapshots"]["count"] == 48
    assert meta["price_grid"]["bucket_size"] == 50.0
    assert meta["model_versions"] == sorted(versions) and versions
    assert meta["columns"]["price"]["unit"] == "USD"
    assert meta["columns"]["timestamp"]["pandas"] == "datetime64[ms, UTC]"
    frame = frames["parquet"]
    assert frame["timestamp"].nunique() == 24 and (frame["price"] % 50 == 0).all()
    assert frame["timestamp"].min() == pd.Timestamp(meta["snapshots"]["first"])
    # snapshot_price is each map's price: one per instant and exchange
    marks = frame.groupby(["timestamp", "exchange"])["snapshot_price"].nunique()
    assert (marks == 1).all()


async def test_export_streams_in_row_groups_and_leaves_nothing_when_interrupted(
    viewer_data: ViewerData, tmp_path: Path
) -> None:
    start, end = hours_before_cut(viewer_data, 72, 24)
    request = ExportRequest(SYMBOL, start, end, ("binanceusdm",), batch=7)
    seen: list[tuple[int, int]] = []
    out = tmp_path / "streamed.parquet"
    report = await export_snapshots(
        viewer_data.engine, request, out, progress=lambda done, total: seen.append((done, total))
    )
    assert report.snapshots == 48 and report.row_groups == 7  # ⌈48 / 7⌉ batches, one group each
    meta = pq.ParquetFile(out).metadata
    assert meta.num_row_groups == 7 and meta.num_rows == report.rows
    assert [d for d, _ in seen] == [0, 7, 14, 21, 28, 35, 42, 48, 48]
    assert json.loads(pq.read_schema(out).metadata[b"liqmap"])["snapshots"]["count"] == 48
    assert {t for _, t in seen} == {48}

    def stop(done: int, total: int) -> None:
        if done >= 14:
            raise KeyboardInterrupt

    broken = tmp_path / "broken.parquet"
    with pytest.raises(KeyboardInterrupt):
        await export_snapshots(viewer_data.engine, request, broken, progress=stop)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["streamed.parquet"]


async def test_bad_input_is_one_line_exit_2_and_no_file(
    viewer_data: ViewerData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start, end = hours_before_cut(viewer_data, 48, 24)
    target = tmp_path / "out.parquet"
    (tmp_path / "folder.parquet").mkdir()
    cases = [
        ("unknown symbol 'DOGE/USDT:USDT'", ["--symbol", "DOGE/USDT:USDT"], target),
        ("unknown exchange for BTC/USDT:USDT 'kraken'", ["--exchange", "kraken"], target),
        ("must be after", ["--start", end.isoformat(), "--end", start.isoformat()], target),
        ("cannot read time 'yesterday'", ["--start", "yesterday"], target),
        ("does not exist", [], tmp_path / "missing" / "out.parquet"),
        ("is a directory", [], tmp_path / "folder.parquet"),
    ]
    for expected, extra, path in cases:
        args = {"--symbol": SYMBOL, "--start": start.isoformat(), "--end": end.isoformat()}
        for flag, value in zip(extra[::2], extra[1::2], strict=True):
            args[flag] = value
        flat = [item for pair in args.items() for item in pair]
        assert await cli(*flat, "-o", str(path), url=viewer_data.url) == 2, expected
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert err.startswith("liqmap: error: ") and expected in err, err
        assert "\n" not in err and "snapshots" not in err  # one line, no progress bar
        assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.parquet"]
