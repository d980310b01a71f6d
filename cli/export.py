"""`liqmap export snapshots`: stored liquidation maps as tidy rows, for analysts' own tools.

One row per price bucket per snapshot: ``timestamp`` (the instant the map describes, the close of
its bar, as the API's ``snapshots`` reports it), ``exchange`` (ccxt id, or ``all`` for the
cross-exchange total), ``price`` (the bucket's lower edge), ``snapshot_price`` (the price at that
instant), ``long_usd``, ``short_usd``, and the same split by leverage band
(``long_usd_lev_1_10`` … ``short_usd_lev_101_plus``; empty for maps stored without bands). What a
reader needs to use the file alone (symbol,
exchanges, range, snapshots, price grid, model versions, units and dtypes) is in the file: the
Parquet schema's ``liqmap`` metadata, or the CSV's ``#`` header lines. Both carry the same dtypes
(numbers are float64 in both: the CSV writes ``57150.0``, not ``57150``).

Streaming: one ordered query read through a server-side cursor, ``batch`` snapshots at a time,
each batch written as one Parquet row group (``pyarrow.parquet.ParquetWriter``) or appended to
the CSV, so a year of hourly snapshots never sits in memory at once. The output is written to a
temporary file beside the target and renamed into place only when complete: a failed or
interrupted export leaves no partial file behind. Files get the mode the user's umask gives a
new file (0644 with the usual 022), not the temporary file's 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from maps.bands import CHANNELS, LEVERAGE_BANDS
from models import heatmap_store

FORMATS = ("parquet", "csv")
RESOLUTIONS = ("1h", "5m")
AGGREGATE = "all"

# the layout below; 1 had no snapshot_price and no metadata, 2 no leverage-band columns
FORMAT = "liqmap.snapshots/3"
METADATA_KEY = "liqmap"  # Parquet schema metadata key of the JSON below

# name, Arrow type, pandas dtype, unit, meaning: one table for both formats
COLUMNS: tuple[tuple[str, pa.DataType, str, str | None, str], ...] = (
    (
        "timestamp",
        pa.timestamp("ms", tz="UTC"),
        "datetime64[ms, UTC]",
        None,
        "the instant the map describes: the close of its bar (UTC)",
    ),
    (
        "exchange",
        pa.string(),
        "str",
        None,
        "ccxt exchange id, or 'all' for the cross-exchange total",
    ),
    (
        "price",
        pa.float64(),
        "float64",
        "USD",
        "lower edge of the price bucket; the bucket is [price, price + bucket_size)",
    ),
    (
        "snapshot_price",
        pa.float64(),
        "float64",
        "USD",
        "price at the instant (close of the bar; the mean over exchanges for 'all')",
    ),
    (
        "long_usd",
        pa.float64(),
        "float64",
        "USD notional",
        "long positions the model says would be liquidated in the bucket",
    ),
    (
        "short_usd",
        pa.float64(),
        "float64",
        "USD notional",
        "short positions the model says would be liquidated in the bucket",
    ),
)
# long_usd_lev_1_10 … short_usd_lev_101_plus: a side's USD of one leverage band (maps.bands)
BAND_SUFFIX = tuple(label.replace("-", "_").replace("+", "_plus") for label in LEVERAGE_BANDS)
BAND_COLUMNS = tuple(
    (
        f"{side}_usd_lev_{suffix}",
        pa.float64(),
        "float64",
        "USD notional",
        f"{side}_usd of positions with leverage in the band {label} (a leverage on a bound is "
        "in the band below it); the five bands sum to "
        f"{side}_usd to float32 storage precision; empty (null) for maps stored without bands "
        "(model v1/v2)",
    )
    for side in ("long", "short")
    for suffix, label in zip(BAND_SUFFIX, LEVERAGE_BANDS, strict=True)
)
COLUMNS = COLUMNS + BAND_COLUMNS
SCHEMA = pa.schema(
    [
        pa.field(
            name,
            kind,
            nullable=name.startswith(("long_usd_lev_", "short_usd_lev_")),
            metadata={"description": meaning, **({"unit": unit} if unit else {})},
        )
        for name, kind, _, unit, meaning in COLUMNS
    ]
)
FLOAT_COLUMNS = tuple(name for name, kind, *_ in COLUMNS if kind == pa.float64())


class ExportError(Exception):
    """Bad input (unknown symbol, inverted range, unwritable path): one line for the user."""


@dataclass(frozen=True, slots=True)
class ExportRequest:
    symbol: str
    start: datetime
    end: datetime
    exchanges: tuple[str, ...] = ()  # empty: the cross-exchange total
    format: str = "parquet"
    resolution: str = "1h"
    batch: int = 200  # snapshots per row group


@dataclass(frozen=True, slots=True)
class ExportReport:
    path: Path
    snapshots: int
    rows: int
    row_groups: int


Progress = Callable[[int, int], None]  # (snapshots done, snapshots in total)


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0666 less the process's umask (0644 under 022)."""
    try:  # Linux: read it without changing it (os.umask would, for every thread, briefly)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it when the block succeeds, else removed.
    The file ends up with the mode of a newly created file (mkstemp's own is 0600)."""
    path = Path(path)
    check_writable(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_writable(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a directory")
    if not parent.is_dir():
        raise ExportError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {path}: folder {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ExportError(f"cannot write {path}: the file is not writable")


@dataclass(frozen=True, slots=True)
class Series:
    label: str  # exchange id, or "all"
    exchanges: tuple[str, ...]  # the exchanges its numbers cover
    bucket_size: float  # the series' price grid


async def resolve_series(
    engine: AsyncEngine, symbol: str, exchanges: tuple[str, ...]
) -> dict[int, Series]:
    """series id → what it is, named the way the API names it."""
    from api import selection
    from api.errors import ApiError

    sessions = async_sessionmaker(engine, expire_on_commit=False)
    labels: dict[int, Series] = {}
    async with sessions() as session:
        for exchange in exchanges or (AGGREGATE,):
            try:
                found = await selection.resolve(
                    session, symbol, None if exchange == AGGREGATE else [exchange]
                )
            except ApiError as exc:
                raise ExportError(exc.message) from None
            if len(found.series_ids) != 1:  # no aggregate stored: name the exchanges instead
                raise ExportError(
                    f"{symbol} has no cross-exchange series; pass --exchange "
                    + " / ".join(found.exchanges)
                )
            labels[found.series_ids[0]] = Series(
                exchange, tuple(found.exchanges), found.bucket_size
            )
    return labels


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def describe(
    req: ExportRequest,
    series: dict[int, Series],
    summary: list[heatmap_store.SnapshotSummary],
    step: timedelta,
    resolution: str,
) -> dict[str, Any]:
    """What the file holds, for a reader who has nothing else: the ``liqmap`` metadata."""
    from liqmap import __version__

    sizes = sorted(
        {z for r in summary for z in r.bucket_sizes} or {s.bucket_size for s in series.values()}
    )
    return {
        "format": FORMAT,
        "software": f"liqmap {__version__}",
        "exported_at": _iso(datetime.now(UTC)),
        "symbol": req.symbol,
        "exchanges": {s.label: list(s.exchanges) for s in series.values()},
        "range": {"start": _iso(req.start), "end": _iso(req.end), "end_exclusive": True},
        "resolution": resolution,
        "snapshots": {
            "count": sum(r.count for r in summary),
            "first": _iso(min(r.first for r in summary) + step) if summary else None,
            "last": _iso(max(r.last for r in summary) + step) if summary else None,
            "per_exchange": {series[r.series_id].label: r.count for r in summary},
        },
        "price_grid": {
            "bucket_size": sizes[0] if len(sizes) == 1 else sizes,
            "rule": "price = k × bucket_size (k an integer): a bucket's lower edge",
        },
        "model_versions": sorted({v for r in summary for v in r.model_versions}),
        "columns": {
            name: {"type": str(kind), "pandas": dtype, "unit": unit, "description": meaning}
            for name, kind, dtype, unit, meaning in COLUMNS
        },
        "read_with": {
            "parquet": "pandas.read_parquet(path); metadata: "
            "json.loads(pyarrow.parquet.read_schema(path).metadata[b'liqmap'])",
            "csv": "pandas.read_csv(path, comment='#').astype({c: m['pandas'] for c, m in "
            "metadata['columns'].items()}); metadata: the JSON of the '# metadata: ' line",
        },
    }


def _batch_table(
    rows: list[tuple[str, datetime, int, float, float, np.ndarray, np.ndarray, np.ndarray | None]],
) -> pa.Table:
    stamps: list[np.ndarray] = []
    names: list[str] = []
    counts: list[int] = []
    prices: list[np.ndarray] = []
    marks: list[np.ndarray] = []
    longs: list[np.ndarray] = []
    shorts: list[np.ndarray] = []
    bands: list[np.ndarray] = []  # (channels, n) each; NaN where a snapshot has no bands
    for label, at, first, size, price, long_f32, short_f32, band_f32 in rows:
        long_usd = long_f32.astype(np.float64)
        short_usd = short_f32.astype(np.float64)
        n = long_usd.size
        stamps.append(np.full(n, round(at.timestamp() * 1000), dtype=np.int64))
        names.append(label)
        counts.append(n)
        prices.append((first + np.arange(n)) * size)
        marks.append(np.full(n, price, dtype=np.float64))
        longs.append(long_usd)
        shorts.append(short_usd)
        if band_f32 is None:
            bands.append(np.full((CHANNELS, n), np.nan))
        else:
            bands.append(band_f32.astype(np.float64))
    if not rows:
        return SCHEMA.empty_table()
    exchange = pa.DictionaryArray.from_arrays(
        np.repeat(np.arange(len(names), dtype=np.int32), counts), pa.array(names)
    ).cast(pa.string())
    by_band = np.concatenate(bands, axis=1)
    return pa.Table.from_arrays(
        [
            pa.array(np.concatenate(stamps), pa.timestamp("ms", tz="UTC")),
            exchange,
            pa.array(np.concatenate(prices)),
            pa.array(np.concatenate(marks)),
            pa.array(np.concatenate(longs)),
            pa.array(np.concatenate(shorts)),
            *(pa.array(by_band[c], from_pandas=True) for c in range(CHANNELS)),
        ],
        schema=SCHEMA,
    )


def csv_text_columns(table: pa.Table) -> pa.Table:
    """Numbers as the CSV writes them: the shortest text that reads back to the same float64,
    with ``.0`` on whole numbers (57150.0), so that readers infer float64 as Parquet has it."""
    for name in FLOAT_COLUMNS:
        i = table.schema.get_field_index(name)
        text_values = pc.cast(table.column(i), pa.string())
        whole = pc.match_substring_regex(text_values, r"^-?[0-9]+$")
        text_values = pc.if_else(
            whole, pc.binary_join_element_wise(text_values, ".0", ""), text_values
        )
        nullable = table.schema.field(i).nullable
        table = table.set_column(i, pa.field(name, pa.string(), nullable=nullable), text_values)
    return table


def csv_header(metadata: dict[str, Any]) -> bytes:
    """The CSV's first lines: what it is, how to read it, its metadata as one JSON line."""
    lines = [
        f"# liqmap export of {metadata['symbol']} liquidation maps ({metadata['format']}): one row "
        "per price bucket per snapshot.",
        "# Read with pandas.read_csv(path, comment='#'); dtypes and units are in the metadata.",
        "# metadata: " + json.dumps(metadata, ensure_ascii=False, separators=(",", ":")),
        ",".join(SCHEMA.names),
    ]
    return ("\n".join(lines) + "\n").encode()


class _Writer:
    def __init__(self, path: Path, fmt: str, metadata: dict[str, Any]) -> None:
        self.fmt = fmt
        schema = SCHEMA.with_metadata({METADATA_KEY: json.dumps(metadata, ensure_ascii=False)})
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self.parquet = pq.ParquetWriter(path, schema, compression="zstd")
        else:
            import pyarrow.csv as pcsv

            self.file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
            self.file.write(csv_header(metadata))
            self.csv = pcsv.CSVWriter(
                self.file,
                csv_text_columns(SCHEMA.empty_table()).schema,
                write_options=pcsv.WriteOptions(include_header=False, quoting_style="none"),
            )
        self.groups = 0

    def write(self, table: pa.Table) -> None:
        if self.fmt == "parquet":
            self.parquet.write_table(table)
        else:
            self.csv.write_table(csv_text_columns(table))
        self.groups += 1

    def close(self) -> None:
        if self.fmt == "parquet":
            self.parquet.close()
        else:
            self.csv.close()
            self.file.close()


async def export_snapshots(
    engine: AsyncEngine,
    req: ExportRequest,
    path: Path,
    *,
    timeframe: str = "5m",
    progress: Progress | None = None,
) -> ExportReport:
    from api.timerange import timeframe_seconds

    if req.format not in FORMATS:
        raise ExportError(f"unknown format {req.format!r}; use {' or '.join(FORMATS)}")
    if req.resolution not in RESOLUTIONS:
        raise ExportError(f"unknown resolution {req.resolution!r}; use 1h or {timeframe}")
    if req.end <= req.start:
        raise ExportError(
            f"--end ({req.end.isoformat()}) must be after --start ({req.start.isoformat()})"
        )
    check_writable(path)
    series = await resolve_series(engine, req.symbol, req.exchanges)
    step = timedelta(seconds=timeframe_seconds(timeframe))
    resolution = timeframe if req.resolution != "1h" else "1h"
    # maps whose instant (bar close) is in [start, end): bars opening in [start-step, end-step)
    window = (list(series), resolution, req.start - step, req.end - step)
    async with engine.connect() as conn:
        summary = await heatmap_store.snapshot_summary(conn, *window)
    metadata = describe(req, series, summary, step, resolution)
    total = metadata["snapshots"]["count"]
    done = rows = 0
    if progress is not None:
        progress(0, total)
    with atomic_output(path) as tmp:
        writer = _Writer(tmp, req.format, metadata)
        try:
            async with engine.connect() as conn:
                batches = heatmap_store.snapshot_batches(conn, *window, req.batch)
                async for partition in batches:
                    table = _batch_table(
                        [
                            (
                                series[r.series_id].label,
                                r.ts + step,
                                r.first,
                                r.bucket_size,
                                r.price,
                                r.long_usd,
                                r.short_usd,
                                r.bands,
                            )
                            for r in partition
                        ]
                    )
                    writer.write(table)
                    done += len(partition)
                    rows += table.num_rows
                    if progress is not None:
                        progress(done, total)
            if writer.groups == 0:
                writer.write(SCHEMA.empty_table())
        finally:
            writer.close()
    if progress is not None:
        progress(done, total)
    return ExportReport(Path(path), done, rows, writer.groups)
