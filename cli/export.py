"""`liqmap export snapshots`: stored liquidation maps as tidy rows, for analysts' own tools.

One row per price bucket per snapshot: ``timestamp`` (the instant the map describes, the close of
its bar, as the API's ``snapshots`` reports it), ``exchange`` (ccxt id, or ``all`` for the
cross-exchange total), ``price`` (the bucket's lower edge), ``long_usd``, ``short_usd``.

Streaming: one ordered query read through a server-side cursor, ``batch`` snapshots at a time,
each batch written as one Parquet row group (``pyarrow.parquet.ParquetWriter``) or appended to
the CSV, so a year of hourly snapshots never sits in memory at once. The output is written to a
temporary file beside the target and renamed into place only when complete: a failed or
interrupted export leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from models import heatmap_store

FORMATS = ("parquet", "csv")
RESOLUTIONS = ("1h", "5m")
AGGREGATE = "all"

SCHEMA = pa.schema(
    [
        pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("long_usd", pa.float64(), nullable=False),
        pa.field("short_usd", pa.float64(), nullable=False),
    ]
)


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


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it when the block succeeds, else removed."""
    path = Path(path)
    check_writable(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
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


async def resolve_series(
    engine: AsyncEngine, symbol: str, exchanges: tuple[str, ...]
) -> dict[int, str]:
    """series id → label (exchange id, or ``all``), named the way the API names them."""
    from api import selection
    from api.errors import ApiError

    sessions = async_sessionmaker(engine, expire_on_commit=False)
    labels: dict[int, str] = {}
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
            labels[found.series_ids[0]] = exchange
    return labels


def _batch_table(rows: list[tuple[str, datetime, int, float, np.ndarray, np.ndarray]]) -> pa.Table:
    stamps: list[np.ndarray] = []
    names: list[str] = []
    counts: list[int] = []
    prices: list[np.ndarray] = []
    longs: list[np.ndarray] = []
    shorts: list[np.ndarray] = []
    for label, at, first, size, long_f32, short_f32 in rows:
        long_usd = long_f32.astype(np.float64)
        short_usd = short_f32.astype(np.float64)
        n = long_usd.size
        stamps.append(np.full(n, round(at.timestamp() * 1000), dtype=np.int64))
        names.append(label)
        counts.append(n)
        prices.append((first + np.arange(n)) * size)
        longs.append(long_usd)
        shorts.append(short_usd)
    if not rows:
        return SCHEMA.empty_table()
    exchange = pa.DictionaryArray.from_arrays(
        np.repeat(np.arange(len(names), dtype=np.int32), counts), pa.array(names)
    ).cast(pa.string())
    return pa.Table.from_arrays(
        [
            pa.array(np.concatenate(stamps), pa.timestamp("ms", tz="UTC")),
            exchange,
            pa.array(np.concatenate(prices)),
            pa.array(np.concatenate(longs)),
            pa.array(np.concatenate(shorts)),
        ],
        schema=SCHEMA,
    )


class _Writer:
    def __init__(self, path: Path, fmt: str) -> None:
        self.fmt = fmt
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self.parquet = pq.ParquetWriter(path, SCHEMA, compression="zstd")
        else:
            import pyarrow.csv as pcsv

            self.csv = pcsv.CSVWriter(path, SCHEMA)
        self.groups = 0

    def write(self, table: pa.Table) -> None:
        if self.fmt == "parquet":
            self.parquet.write_table(table)
        else:
            self.csv.write_table(table)
        self.groups += 1

    def close(self) -> None:
        if self.fmt == "parquet":
            self.parquet.close()
        else:
            self.csv.close()


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
    labels = await resolve_series(engine, req.symbol, req.exchanges)
    step = timedelta(seconds=timeframe_seconds(timeframe))
    resolution = timeframe if req.resolution != "1h" else "1h"
    # maps whose instant (bar close) is in [start, end): bars opening in [start-step, end-step)
    window = (list(labels), resolution, req.start - step, req.end - step)
    async with engine.connect() as conn:
        total = await heatmap_store.count_snapshots(conn, *window)
    done = rows = 0
    if progress is not None:
        progress(0, total)
    with atomic_output(path) as tmp:
        writer = _Writer(tmp, req.format)
        try:
            async with engine.connect() as conn:
                batches = heatmap_store.snapshot_batches(conn, *window, req.batch)
                async for partition in batches:
                    table = _batch_table(
                        [
                            (
                                labels[r.series_id],
                                r.ts + step,
                                r.first,
                                r.bucket_size,
                                r.long_usd,
                                r.short_usd,
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
