"""Materialized model output: series, engine state, snapshots and swept levels (``queries.sql``).

The materializer writes here and the API, the export and the aggregate read here. Snapshot
vectors are read with ``array_send`` and decoded by numpy (``models.arrays``), never element by
element in Python; the latest-snapshot reads are one index lookup per series and resolution.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from liqmap.timeframes import timeframe_ms
from maps.bands import BANDS, decode_band_blob, encode_band_blob, select_bands
from maps.compact import CompactVector, covered_grid, decode, decode_rows
from maps.grid import BucketVector, origin_index
from maps.heatmap import StoredRange
from models.arrays import decode_float4_array
from models.bulk import copy_upsert
from models.partitions import ensure_month_partitions
from models.queries import Executor, query
from models.records import to_ms

NOTIFY_CHANNEL = "liqmap_heatmap"
AGGREGATE_SCOPE = "all"
HOURLY = "1h"  # the all-history resolution; the other one is the base timeframe


def resolutions(timeframe: str) -> list[str]:
    """The stored snapshot resolutions for a base timeframe."""
    return [timeframe] if timeframe == HOURLY else [timeframe, HOURLY]


@dataclass(frozen=True, slots=True)
class SeriesRow:
    id: int
    symbol: str
    scope: str  # exchange id, or "all"
    bucket_size: float
    has_snapshots: bool  # False: nothing materialized (e.g. a venue without open interest)


@dataclass(frozen=True, slots=True)
class SavedState:
    """The engine state saved after a series' last processed bar."""

    series_id: int
    last_bar_ts: datetime
    model_version: str
    params: dict[str, Any]
    state: bytes
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ModelState:
    """The model version and assumptions a series was materialized with."""

    series_id: int
    scope: str
    model_version: str
    params: dict[str, Any]
    last_bar_ts: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """A snapshot to write: its vectors in graded buckets (``maps.compact``; fine 0: plain
    grid buckets from ``bucket_origin``)."""

    ts: datetime
    resolution: str
    price: float
    bucket_origin: float  # lower edge of the first grid bucket the vectors cover
    bucket_size: float
    long_usd: np.ndarray  # float32
    short_usd: np.ndarray  # float32
    model_version: str
    fine_buckets: int = 0
    center_index: int = 0
    compact_first: int = 0
    band_usd: bytes | None = None  # leverage bands (maps.bands blob); None: no bands

    @property
    def vector_bytes(self) -> int:
        """Bytes of the stored vectors (float32 values and the band blob, without PostgreSQL's
        array and varlena headers)."""
        bands = len(self.band_usd) if self.band_usd is not None else 0
        return int(self.long_usd.nbytes + self.short_usd.nbytes) + bands

    @classmethod
    def of(
        cls,
        ts: datetime,
        resolution: str,
        price: float,
        bucket_size: float,
        vector: CompactVector,
        model_version: str,
    ) -> SnapshotRow:
        return cls(
            ts,
            resolution,
            price,
            vector.first_grid * bucket_size,
            bucket_size,
            np.asarray(vector.long_usd, dtype=np.float32),
            np.asarray(vector.short_usd, dtype=np.float32),
            model_version,
            vector.fine,
            vector.center,
            vector.q_first,
            None if vector.bands is None else encode_band_blob(vector.bands),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stored snapshot, its vectors decoded onto the grid (float64)."""

    series_id: int
    resolution: str
    ts: datetime  # bar open; the state is at the bar's close
    price: float
    bucket_size: float
    model_version: str
    vector: BucketVector
    # per leverage band (maps.bands), the band's long and short USD on the same buckets as
    # ``vector``; None for a snapshot stored without bands (model v1/v2)
    bands: tuple[BucketVector, ...] | None = None


@dataclass(frozen=True, slots=True)
class ColumnRef:
    """The snapshot a heatmap column shows: of this series, the bar opening at ``ts``."""

    series_id: int
    column: int
    ts: datetime


@dataclass(frozen=True, slots=True)
class Column:
    """A stored snapshot's vectors as float32, as they are stored."""

    first: int  # grid index of element 0
    long_usd: np.ndarray
    short_usd: np.ndarray


@dataclass(frozen=True, slots=True)
class SnapshotVectors:
    """A stored snapshot's vectors (float32) with where they sit on the grid."""

    series_id: int
    ts: datetime  # bar open
    first: int  # grid index of element 0
    bucket_size: float
    price: float  # the close of the snapshot's bar
    long_usd: np.ndarray
    short_usd: np.ndarray
    # leverage bands on the same buckets, (2·BANDS, n) float32: long bands then short bands
    # (maps.bands); None for a snapshot stored without bands
    bands: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class SweptLevels:
    """Notional the model says one bar liquidated."""

    ts: datetime
    long_usd: float
    short_usd: float


@dataclass(frozen=True, slots=True)
class SweptBucket:
    """Swept levels summed over series and over the base bars of one bucket."""

    ts: datetime
    long_usd: float
    short_usd: float
    bars: int


# --- series and engine state --------------------------------------------------------------------
async def ensure_series(conn: Executor, symbol: str, scope: str, bucket_size: float) -> int:
    params = {"symbol": symbol, "scope": scope, "bucket_size": bucket_size}
    return int((await conn.execute(query("ensure_series"), params)).scalar_one())


async def series_of_symbol(conn: Executor, symbol: str) -> list[SeriesRow]:
    return [
        SeriesRow(*r) for r in await conn.execute(query("series_of_symbol"), {"symbol": symbol})
    ]


async def clear_series(conn: Executor, series_id: int) -> None:
    """Forget everything materialized for a series (before a full recompute)."""
    await conn.execute(query("clear_series"), {"series": series_id})


async def load_engine_state(conn: Executor, series_id: int) -> SavedState | None:
    row = (await conn.execute(query("engine_state"), {"series": series_id})).one_or_none()
    return None if row is None else SavedState(*row)


async def save_engine_state(
    conn: Executor,
    series_id: int,
    last_bar_ts: datetime,
    model_version: str,
    params: dict,
    state: bytes,
) -> None:
    values = {
        "series_id": series_id,
        "last_bar_ts": last_bar_ts,
        "model_version": model_version,
        "params": json.dumps(params),  # what SQLAlchemy's JSONB type sends
        "state": state,
    }
    await conn.execute(query("save_engine_state"), values)


async def model_states(conn: Executor, symbol: str) -> list[ModelState]:
    """Saved engine states (version and assumptions) of every series of a symbol."""
    return [ModelState(*r) for r in await conn.execute(query("model_states"), {"symbol": symbol})]


def dumps_params(params: dict) -> dict:
    """JSON-safe copy of model parameters (tuples → lists) for the jsonb column."""
    return orjson.loads(orjson.dumps(params, option=orjson.OPT_SERIALIZE_NUMPY))


# --- snapshot writes ----------------------------------------------------------------------------
SNAPSHOT_COLUMNS = (
    "series_id",
    "resolution",
    "ts",
    "price",
    "bucket_origin",
    "bucket_size",
    "long_usd",
    "short_usd",
    "long_total_usd",
    "short_total_usd",
    "model_version",
    "fine_buckets",
    "center_index",
    "compact_first",
    "band_usd",
)


async def write_snapshots(
    conn: AsyncConnection, series_id: int, snapshots: Sequence[SnapshotRow]
) -> int:
    if not snapshots:
        return 0
    stamps = [s.ts for s in snapshots]
    await ensure_month_partitions(conn, "heatmap_snapshots", min(stamps), max(stamps))
    records = [
        (
            series_id,
            s.resolution,
            s.ts,
            s.price,
            s.bucket_origin,
            s.bucket_size,
            s.long_usd.tolist(),
            s.short_usd.tolist(),
            float(s.long_usd.sum(dtype=np.float64)),
            float(s.short_usd.sum(dtype=np.float64)),
            s.model_version,
            s.fine_buckets,
            s.center_index,
            s.compact_first,
            s.band_usd,
        )
        for s in snapshots
    ]
    return await copy_upsert(conn, "heatmap_snapshots", SNAPSHOT_COLUMNS, records)


async def prune_snapshots(
    conn: AsyncConnection, series_id: int, resolution: str, before: datetime
) -> int:
    params = {"series": series_id, "resolution": resolution, "before": before}
    result = await conn.execute(query("prune_snapshots"), params)
    return int(result.rowcount or 0)


async def notify_snapshots(
    conn: Executor, series_id: int, symbol: str, scope: str, snapshots: Sequence[SnapshotRow]
) -> None:
    """One NOTIFY per resolution of a write, delivered when the transaction commits.

    It names the range of bars written (``first``..``ts``, ``count`` of them) and the newest
    bar's price: a full recompute rewrites thousands of snapshots, and one message per
    snapshot would make every listening API process handle thousands of events at once.
    """
    by_resolution: dict[str, list[SnapshotRow]] = {}
    for s in snapshots:
        by_resolution.setdefault(s.resolution, []).append(s)
    for resolution, rows in by_resolution.items():
        first = min(rows, key=lambda r: r.ts)
        last = max(rows, key=lambda r: r.ts)
        payload = orjson.dumps(
            {
                "series_id": series_id,
                "symbol": symbol,
                "scope": scope,
                "resolution": resolution,
                "first": to_ms(first.ts),
                "ts": to_ms(last.ts),
                "count": len(rows),
                "price": last.price,
            }
        ).decode()
        await conn.execute(query("notify"), {"channel": NOTIFY_CHANNEL, "payload": payload})


# --- snapshot reads -----------------------------------------------------------------------------
def _grid_vector(
    first: int, fine: int, center: int, q_first: int, long32: np.ndarray, short32: np.ndarray
) -> BucketVector:
    """A stored row's vectors on the grid (float64): graded buckets spread back evenly."""
    long_usd = long32.astype(np.float64)
    short_usd = short32.astype(np.float64)
    if fine == 0:
        return BucketVector(first, long_usd, short_usd)
    return decode(CompactVector(center, fine, q_first, long_usd, short_usd))


def _bands_on_grid(
    blob: bytes, size: int, fine: int, center: int, q_first: int, first: int
) -> np.ndarray:
    """A stored row's band blob on the grid: rows ``(2·BANDS, n)`` (float64) from grid bucket
    ``first``, where its totals start (``size`` stored buckets each)."""
    g0, rows = decode_rows(center, fine, q_first, decode_band_blob(blob, size))
    if size and g0 != first:
        raise ValueError("band rows and totals of a snapshot do not line up")
    return rows


def _grid_bands(
    vector: BucketVector, fine: int, center: int, q_first: int, size: int, blob: bytes | None
) -> tuple[BucketVector, ...] | None:
    """A stored row's band blob on the grid, one vector per band over ``vector``'s buckets."""
    if blob is None:
        return None
    rows = _bands_on_grid(blob, size, fine, center, q_first, vector.first)
    return tuple(BucketVector(vector.first, rows[b], rows[BANDS + b]) for b in range(BANDS))


def _snapshot(row: Any) -> Snapshot:
    first = origin_index(row.bucket_origin, row.bucket_size)
    long32 = decode_float4_array(row.long_bin)
    short32 = decode_float4_array(row.short_bin)
    vector = _grid_vector(
        first, row.fine_buckets, row.center_index, row.compact_first, long32, short32
    )
    size = long32.size
    return Snapshot(
        row.series_id,
        row.resolution,
        row.ts,
        row.price,
        row.bucket_size,
        row.model_version,
        vector,
        _grid_bands(
            vector,
            row.fine_buckets,
            row.center_index,
            first if row.fine_buckets == 0 else row.compact_first,
            size,
            row.band_usd,
        ),
    )


def _column(
    first: int, fine: int, center: int, q_first: int, long32: np.ndarray, short32: np.ndarray
) -> Column:
    """A stored row's float32 vectors on the grid (graded buckets spread back), as float32."""
    if fine == 0:
        return Column(first, long32, short32)
    v = _grid_vector(first, fine, center, q_first, long32, short32)
    return Column(v.first, v.long_usd.astype(np.float32), v.short_usd.astype(np.float32))


async def snapshots_at(
    conn: Executor, series_ids: Sequence[int], at_bar: datetime, timeframe: str
) -> list[Snapshot]:
    """Per series, the newest snapshot whose bar opened at or before ``at_bar`` (any
    resolution; both resolutions hold the same state for the same bar)."""
    params = {"ids": list(series_ids), "res": resolutions(timeframe), "at": at_bar}
    best: dict[int, Snapshot] = {}
    for row in await conn.execute(query("latest_snapshots"), params):
        if row.series_id not in best or row.ts > best[row.series_id].ts:
            best[row.series_id] = _snapshot(row)
    return [best[i] for i in series_ids if i in best]


async def snapshot_page(
    conn: Executor,
    series_id: int,
    resolution: str,
    start: datetime,
    end: datetime,
    after: datetime,
    limit: int,
) -> list[Snapshot]:
    """One series' snapshots with bars opening in ``[start, end)`` after ``after``, oldest
    first, at most ``limit``."""
    params = {
        "series": series_id,
        "res": resolution,
        "start": start,
        "end": end,
        "after": after,
        "limit": limit,
    }
    return [_snapshot(r) for r in await conn.execute(query("snapshot_page"), params)]


async def snapshots_after(
    conn: Executor, series_id: int, resolution: str, after: datetime
) -> list[Snapshot]:
    """Every snapshot of one series and resolution with a bar opening after ``after``."""
    params = {"series": series_id, "res": resolution, "after": after}
    return [_snapshot(r) for r in await conn.execute(query("snapshots_after"), params)]


async def newest_snapshot_per_series(
    conn: Executor, series_ids: Sequence[int], timeframe: str
) -> dict[int, datetime | None]:
    """Per series, the bar opening of its newest snapshot (any resolution; None: none)."""
    params = {"ids": list(series_ids), "res": resolutions(timeframe)}
    return {sid: ts for sid, ts in await conn.execute(query("newest_snapshot_per_series"), params)}


async def last_snapshot_ts(
    conn: Executor, series_ids: Sequence[int], timeframe: str
) -> datetime | None:
    """The newest snapshot bar (any resolution) of the given series."""
    stamps = [ts for ts in (await newest_snapshot_per_series(conn, series_ids, timeframe)).values()]
    present = [ts for ts in stamps if ts is not None]
    return max(present) if present else None


async def complete_until(
    conn: Executor, series_ids: Sequence[int], timeframe: str
) -> datetime | None:
    """Close time of the newest bar every one of the series has materialized: answers about
    instants up to it are final (None when a series has nothing)."""
    stamps = list((await newest_snapshot_per_series(conn, series_ids, timeframe)).values())
    if not stamps or any(ts is None for ts in stamps):
        return None
    return min(ts for ts in stamps if ts is not None) + timedelta(
        milliseconds=timeframe_ms(timeframe)
    )


async def first_snapshot_ts(
    conn: Executor, series_ids: Sequence[int], resolution: str
) -> datetime | None:
    """The oldest bar any of the series has a snapshot of at ``resolution``."""
    params = {"ids": list(series_ids), "res": resolution}
    found: datetime | None = (await conn.execute(query("first_snapshot_ts"), params)).scalar()
    return found


async def heatmap_column_index(
    conn: Executor,
    series_ids: Sequence[int],
    resolution: str,
    start: datetime,
    end: datetime,
    step_s: int,
) -> list[ColumnRef]:
    """Per series and time column, the last snapshot whose bar opened in the column."""
    params = {
        "ids": list(series_ids),
        "res": resolution,
        "start": start,
        "end": end,
        "start_s": start.timestamp(),
        "step_s": step_s,
    }
    return [ColumnRef(*r) for r in await conn.execute(query("snapshot_column_index"), params)]


async def snapshot_columns(
    conn: Executor, series_id: int, resolution: str, stamps: Sequence[datetime]
) -> dict[datetime, Column]:
    """The vectors of one series' snapshots at the given bar openings."""
    params = {"series": series_id, "res": resolution, "stamps": list(stamps)}
    return {
        ts: _column(first, fine, center, q0, decode_float4_array(lo), decode_float4_array(sh))
        for ts, first, fine, center, q0, lo, sh in await conn.execute(
            query("snapshot_vectors"), params
        )
    }


def _band_column(
    first: int, fine: int, center: int, q_first: int, size: int, blob: bytes, mask: int
) -> Column:
    """The stored bands of ``mask`` summed per side, on the grid, as float32."""
    long_c, short_c = select_bands(decode_band_blob(blob, size), mask)
    if fine == 0:
        return Column(first, long_c.astype(np.float32), short_c.astype(np.float32))
    g0, rows = decode_rows(center, fine, q_first, np.stack([long_c, short_c]))
    return Column(g0, rows[0].astype(np.float32), rows[1].astype(np.float32))


async def snapshot_band_columns(
    conn: Executor, series_id: int, resolution: str, stamps: Sequence[datetime], mask: int
) -> dict[datetime, Column | None]:
    """The leverage bands in ``mask`` (``maps.bands``) of one series' snapshots at the given bar
    openings, summed per side; None for a snapshot stored without bands (model v1/v2)."""
    params = {"series": series_id, "res": resolution, "stamps": list(stamps)}
    return {
        ts: None if blob is None else _band_column(first, fine, center, q0, size, blob, mask)
        for ts, first, fine, center, q0, size, blob in await conn.execute(
            query("snapshot_band_vectors"), params
        )
    }


async def price_range(
    conn: Executor,
    series_ids: Sequence[int],
    resolution: str,
    start: datetime,
    end: datetime,
) -> StoredRange:
    """The traded range and the maps' full span of the series' snapshots with bars opening in
    the range (``maps.heatmap.StoredRange``; all None when none is stored)."""
    params = {"ids": list(series_ids), "res": resolution, "start": start, "end": end}
    rows = (await conn.execute(query("snapshot_price_range"), params)).all()
    if not rows:
        return StoredRange()
    tops = []
    for r in rows:
        # a plain (v1) vector starts at its own grid index; a graded one at q = compact_first
        q_first = (
            origin_index(r.bucket_origin, r.bucket_size) if r.fine_buckets == 0 else r.compact_first
        )
        _, end_grid = covered_grid(r.fine_buckets, r.center_index, q_first, r.size or 0)
        tops.append(end_grid * r.bucket_size)
    return StoredRange(
        min(r.low for r in rows),
        max(r.high for r in rows),
        min(r.first_edge for r in rows),
        max(tops),
    )


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    """One series' snapshots in a range: how many, first and last bar, grids, model versions."""

    series_id: int
    count: int
    first: datetime  # bar open
    last: datetime  # bar open
    bucket_sizes: list[float]
    model_versions: list[str]


async def snapshot_summary(
    conn: Executor, series_ids: Sequence[int], resolution: str, start: datetime, end: datetime
) -> list[SnapshotSummary]:
    params = {"ids": list(series_ids), "res": resolution, "start": start, "end": end}
    rows = await conn.execute(query("snapshot_summary"), params)
    return [
        SnapshotSummary(
            r.series_id, int(r.n), r.first, r.last, [float(s) for s in r.sizes], list(r.versions)
        )
        for r in rows
    ]


async def snapshot_batches(
    conn: AsyncConnection,
    series_ids: Sequence[int],
    resolution: str,
    start: datetime,
    end: datetime,
    batch: int,
) -> AsyncIterator[list[SnapshotVectors]]:
    """The series' snapshots with bars opening in ``[start, end)``, by time then series, read
    through a server-side cursor ``batch`` at a time (never all in memory at once)."""
    params: Mapping[str, Any] = {
        "ids": list(series_ids),
        "res": resolution,
        "start": start,
        "end": end,
    }
    statement = query("export_snapshots").execution_options(yield_per=batch)
    result = await conn.stream(statement, params)
    async for partition in result.partitions(batch):
        out = []
        for r in partition:
            long32, short32 = decode_float4_array(r.long_bin), decode_float4_array(r.short_bin)
            fine, center = r.fine_buckets, r.center_index
            c = _column(r.first, fine, center, r.compact_first, long32, short32)
            bands = None
            if r.band_usd is not None:
                q_first = r.first if fine == 0 else r.compact_first  # as _snapshot reads it
                grid = _bands_on_grid(r.band_usd, long32.size, fine, center, q_first, c.first)
                bands = grid.astype(np.float32)
            out.append(
                SnapshotVectors(
                    r.series_id,
                    r.ts,
                    c.first,
                    r.bucket_size,
                    r.price,
                    c.long_usd,
                    c.short_usd,
                    bands,
                )
            )
        yield out


# --- swept levels -------------------------------------------------------------------------------
async def write_swept(
    conn: AsyncConnection,
    series_id: int,
    stamps: Sequence[datetime],
    long_usd: np.ndarray,
    short_usd: np.ndarray,
) -> int:
    if not stamps:
        return 0
    await ensure_month_partitions(conn, "swept_levels", min(stamps), max(stamps))
    records = [
        (series_id, ts, float(lo), float(sh))
        for ts, lo, sh in zip(stamps, long_usd, short_usd, strict=True)
    ]
    return await copy_upsert(
        conn, "swept_levels", ("series_id", "ts", "long_usd", "short_usd"), records
    )


async def swept_after(conn: Executor, series_id: int, after: datetime) -> list[SweptLevels]:
    """One series' swept levels per bar after ``after``, oldest first."""
    params = {"series": series_id, "after": after}
    return [SweptLevels(*r) for r in await conn.execute(query("swept_after"), params)]


async def swept_buckets(
    conn: Executor,
    series_ids: Sequence[int],
    start: datetime,
    end: datetime,
    step_s: int,
    limit: int,
) -> list[SweptBucket]:
    """Predicted liquidated notional summed over the series and over ``step_s`` buckets."""
    params = {
        "ids": list(series_ids),
        "start": start,
        "end": end,
        "start_s": start.timestamp(),
        "step_s": step_s,
        "limit": limit,
    }
    return [SweptBucket(*r) for r in await conn.execute(query("swept_buckets"), params)]


async def last_swept_ts(conn: Executor, series_id: int) -> datetime | None:
    """The newest bar of a series with swept levels (every materialized bar has them)."""
    found: datetime | None = (
        await conn.execute(query("last_swept_ts"), {"series": series_id})
    ).scalar()
    return found
