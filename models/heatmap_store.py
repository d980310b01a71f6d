"""Storage helpers for the materializer: bars in, snapshots / swept levels / engine state out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Row, delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from models.bulk import copy_upsert
from models.heatmap import EngineStateRow, HeatmapSeries, HeatmapSnapshot, SweptLevel
from models.partitions import ensure_month_partitions
from models.store import to_ms

NOTIFY_CHANNEL = "liqmap_heatmap"
AGGREGATE_SCOPE = "all"


@dataclass(frozen=True, slots=True)
class BarArrays:
    """Candles joined with open interest (USD, at bar end), ascending; only bars with both."""

    timestamp: np.ndarray  # int64 epoch ms, bar open
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # NaN where unknown
    taker_buy_volume: np.ndarray  # NaN where unknown
    open_interest_usd: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamp.size)


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    ts: datetime
    resolution: str
    price: float
    bucket_origin: float
    bucket_size: float
    long_usd: np.ndarray  # float32
    short_usd: np.ndarray  # float32
    model_version: str


async def ensure_series(conn: AsyncConnection, symbol: str, scope: str, bucket_size: float) -> int:
    stmt = insert(HeatmapSeries).values(symbol=symbol, scope=scope, bucket_size=bucket_size)
    upsert = stmt.on_conflict_do_update(
        index_elements=[HeatmapSeries.symbol, HeatmapSeries.scope],
        set_={"bucket_size": stmt.excluded.bucket_size},
    ).returning(HeatmapSeries.id)
    return int((await conn.execute(upsert)).scalar_one())


async def load_state(conn: AsyncConnection, series_id: int) -> Row[Any] | None:
    """The saved engine state of a series (a Core row with the table's column names)."""
    stmt = select(*EngineStateRow.__table__.columns).where(EngineStateRow.series_id == series_id)
    return (await conn.execute(stmt)).one_or_none()


async def save_state(
    conn: AsyncConnection,
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
        "params": params,
        "state": state,
    }
    stmt = insert(EngineStateRow).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[EngineStateRow.series_id],
        set_={k: stmt.excluded[k] for k in values if k != "series_id"},
    )
    await conn.execute(stmt)


async def clear_series(conn: AsyncConnection, series_id: int) -> None:
    """Forget everything materialized for a series (before a full recompute)."""
    for table in (HeatmapSnapshot, SweptLevel, EngineStateRow):
        await conn.execute(delete(table).where(table.series_id == series_id))


BARS_SQL = text(
    """
    SELECT (extract(epoch FROM c.ts) * 1000)::bigint AS ts, c.open, c.high, c.low, c.close,
           c.volume, c.taker_buy_volume,
           coalesce(o.open_interest_usd, o.open_interest * c.close) AS oi_usd
    FROM candles c
    JOIN open_interest o
      ON o.market_id = c.market_id AND o.timeframe = c.timeframe AND o.ts = c.ts
    WHERE c.market_id = :market AND c.timeframe = :tf AND c.ts > :after
      AND coalesce(o.open_interest_usd, o.open_interest) IS NOT NULL
    ORDER BY c.ts
    """
)


async def load_bars(
    conn: AsyncConnection, market_id: int, timeframe: str, after: datetime
) -> BarArrays:
    rows = (
        await conn.execute(BARS_SQL, {"market": market_id, "tf": timeframe, "after": after})
    ).all()
    if not rows:
        empty = np.empty(0)
        return BarArrays(np.empty(0, np.int64), *(empty,) * 7)
    data = np.array([tuple(np.nan if v is None else v for v in r) for r in rows], dtype=np.float64)
    return BarArrays(
        timestamp=data[:, 0].astype(np.int64),
        open=data[:, 1],
        high=data[:, 2],
        low=data[:, 3],
        close=data[:, 4],
        volume=data[:, 5],
        taker_buy_volume=data[:, 6],
        open_interest_usd=data[:, 7],
    )


TIER_TABLES_SQL = text(
    """
    SELECT t.valid_from, t.tier, t.min_notional, t.max_notional, t.maintenance_margin_rate,
           t.maintenance_amount, t.max_leverage, t.notional_unit, t.source,
           (SELECT c.close FROM candles c
             WHERE c.market_id = t.market_id AND c.timeframe = :tf AND c.ts <= t.valid_from
             ORDER BY c.ts DESC LIMIT 1) AS close_at,
           (SELECT c.close FROM candles c
             WHERE c.market_id = t.market_id AND c.timeframe = :tf
             ORDER BY c.ts LIMIT 1) AS first_close
    FROM margin_tiers t
    WHERE t.market_id = :market
    ORDER BY t.valid_from, t.tier
    """
)


async def load_tier_tables(conn: AsyncConnection, market_id: int, timeframe: str) -> list[Row[Any]]:
    """Every stored tier table of a market, oldest first, tiers ascending; each row also carries
    the market's close when the table became valid (``close_at``, else ``first_close``), the
    price at which tiers given in another unit are converted."""
    result = await conn.execute(TIER_TABLES_SQL, {"market": market_id, "tf": timeframe})
    return list(result.all())


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
        )
        for s in snapshots
    ]
    return await copy_upsert(conn, "heatmap_snapshots", SNAPSHOT_COLUMNS, records)


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


async def prune_snapshots(
    conn: AsyncConnection, series_id: int, resolution: str, before: datetime
) -> int:
    result = await conn.execute(
        delete(HeatmapSnapshot).where(
            HeatmapSnapshot.series_id == series_id,
            HeatmapSnapshot.resolution == resolution,
            HeatmapSnapshot.ts < before,
        )
    )
    return int(result.rowcount or 0)


async def notify_snapshots(
    conn: AsyncConnection, series_id: int, symbol: str, scope: str, snapshots: Sequence[SnapshotRow]
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
        await conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": NOTIFY_CHANNEL, "p": payload})


SERIES_SNAPSHOTS_SQL = text(
    """
    SELECT s.ts, s.price, s.bucket_origin, s.bucket_size, s.long_usd, s.short_usd
    FROM heatmap_snapshots s
    WHERE s.series_id = :series AND s.resolution = :res AND s.ts > :after
    ORDER BY s.ts
    """
)


async def read_snapshots(
    conn: AsyncConnection, series_id: int, resolution: str, after: datetime
) -> list[tuple[datetime, float, float, float, list[float], list[float]]]:
    rows = await conn.execute(
        SERIES_SNAPSHOTS_SQL, {"series": series_id, "res": resolution, "after": after}
    )
    return [tuple(r) for r in rows.all()]


async def read_swept(
    conn: AsyncConnection, series_id: int, after: datetime
) -> list[tuple[datetime, float, float]]:
    rows = await conn.execute(
        text(
            "SELECT ts, long_usd, short_usd FROM swept_levels WHERE series_id = :s AND ts > :a "
            "ORDER BY ts"
        ),
        {"s": series_id, "a": after},
    )
    return [tuple(r) for r in rows.all()]


async def last_snapshot_ts(conn: AsyncConnection, series_id: int) -> datetime | None:
    return (
        await conn.execute(
            text("SELECT max(ts) FROM swept_levels WHERE series_id = :s"), {"s": series_id}
        )
    ).scalar()


def dumps_params(params: dict) -> dict:
    """JSON-safe copy of model parameters (tuples → lists) for the jsonb column."""
    return orjson.loads(orjson.dumps(params, option=orjson.OPT_SERIALIZE_NUMPY))
