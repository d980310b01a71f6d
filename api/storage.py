"""Every SQL statement the API runs, parameterized, with small typed results.

Snapshot vectors are read with ``array_send`` (PostgreSQL's binary array format) and decoded by
numpy, so a 288 × 1000 heatmap never becomes Python floats one by one; heatmap reads slice the
arrays in SQL to the requested price rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Integer, String

from maps.grid import BucketVector, origin_index
from models.arrays import decode_float4_array

HOURLY = "1h"  # the all-history resolution; the other one is the base timeframe


def resolutions(timeframe: str) -> list[str]:
    """The stored snapshot resolutions for a base timeframe."""
    return [timeframe] if timeframe == HOURLY else [timeframe, HOURLY]


# --- catalogue ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ExchangeRow:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class MarketRow:
    id: int
    exchange: str
    symbol: str
    exchange_symbol: str
    base: str
    quote: str
    settle: str
    linear: bool
    contract_size: float
    active: bool


@dataclass(frozen=True, slots=True)
class SeriesRow:
    id: int
    symbol: str
    scope: str
    bucket_size: float


async def exchanges(session: AsyncSession) -> list[ExchangeRow]:
    rows = await session.execute(text("SELECT id, name FROM exchanges ORDER BY id"))
    return [ExchangeRow(*r) for r in rows]


_MARKET_COLUMNS = (
    "id, exchange_id, symbol, exchange_symbol, base, quote, settle, linear, contract_size, active"
)


async def markets(session: AsyncSession, exchanges: Sequence[str] | None = None) -> list[MarketRow]:
    sql = f"SELECT {_MARKET_COLUMNS} FROM markets"
    params: dict[str, Any] = {}
    if exchanges is not None:
        sql += " WHERE exchange_id = ANY(:exchanges)"
        params["exchanges"] = list(exchanges)
    rows = await session.execute(text(sql + " ORDER BY exchange_id, symbol"), params)
    return [MarketRow(*r) for r in rows]


async def series_of_symbol(session: AsyncSession, symbol: str) -> list[SeriesRow]:
    rows = await session.execute(
        text("SELECT id, symbol, scope, bucket_size FROM heatmap_series WHERE symbol = :s"),
        {"s": symbol},
    )
    return [SeriesRow(*r) for r in rows]


async def known_symbols(session: AsyncSession) -> list[str]:
    rows = await session.execute(
        text("SELECT symbol FROM heatmap_series UNION SELECT symbol FROM markets")
    )
    return [r[0] for r in rows]


# --- coverage ---------------------------------------------------------------------------------
_EXTENT_SQL = {
    "candles": "SELECT market_id, min(ts), max(ts) FROM candles "
    "WHERE market_id = ANY(:ids) GROUP BY market_id",
    "open_interest": "SELECT market_id, min(ts), max(ts) FROM open_interest "
    "WHERE market_id = ANY(:ids) GROUP BY market_id",
    "funding": "SELECT market_id, min(ts), max(ts) FROM funding_rates "
    "WHERE market_id = ANY(:ids) GROUP BY market_id",
    "tiers": "SELECT market_id, min(valid_from), max(valid_from) FROM margin_tiers "
    "WHERE market_id = ANY(:ids) GROUP BY market_id",
}
DATASETS = tuple(_EXTENT_SQL)

_RUNS_SQL = text(
    """
    SELECT DISTINCT ON (exchange, symbol, dataset) exchange, symbol, dataset,
           max(finished_at) FILTER (WHERE status = 'succeeded')
               OVER (PARTITION BY exchange, symbol, dataset) AS last_success,
           status, error, started_at
    FROM job_runs
    WHERE job IN ('ingest', 'backfill', 'import') AND symbol = ANY(:symbols)
    ORDER BY exchange, symbol, dataset, started_at DESC
    """
)


@dataclass(frozen=True, slots=True)
class DatasetExtent:
    market_id: int
    dataset: str
    first_ts: datetime | None
    last_ts: datetime | None
    last_success: datetime | None
    last_status: str | None
    last_error: str | None


async def dataset_extents(
    session: AsyncSession, markets: Sequence[MarketRow]
) -> list[DatasetExtent]:
    """First/last timestamp and the latest ingest run per market and dataset."""
    ids = [m.id for m in markets]
    extents: dict[tuple[int, str], tuple[datetime, datetime]] = {}
    for dataset, sql in _EXTENT_SQL.items():
        for market_id, first, last in await session.execute(text(sql), {"ids": ids}):
            extents[(market_id, dataset)] = (first, last)
    runs: dict[tuple[str, str, str], Any] = {}
    for r in await session.execute(_RUNS_SQL, {"symbols": sorted({m.symbol for m in markets})}):
        runs[(r.exchange, r.symbol, r.dataset)] = r
    out = []
    for m in markets:
        for dataset in DATASETS:
            first, last = extents.get((m.id, dataset), (None, None))
            run = runs.get((m.exchange, m.symbol, dataset))
            out.append(
                DatasetExtent(
                    m.id,
                    dataset,
                    first,
                    last,
                    run.last_success if run else None,
                    run.status if run else None,
                    run.error if run else None,
                )
            )
    return out


async def watermark(session: AsyncSession, market_id: int, dataset: str) -> datetime | None:
    """Everything of the dataset before this instant is stored (the ingest watermark)."""
    return (
        await session.execute(
            text("SELECT watermark FROM ingest_watermarks WHERE market_id = :m AND dataset = :d"),
            {"m": market_id, "d": dataset},
        )
    ).scalar()


async def ingest_lag(session: AsyncSession) -> list[tuple[str, str, str, datetime]]:
    """(exchange, symbol, dataset, watermark) for every market and dataset."""
    rows = await session.execute(
        text(
            "SELECT m.exchange_id, m.symbol, w.dataset, w.watermark FROM ingest_watermarks w "
            "JOIN markets m ON m.id = w.market_id"
        )
    )
    return [tuple(r) for r in rows]


async def last_snapshot_ts(
    session: AsyncSession, series_ids: Sequence[int], timeframe: str
) -> datetime | None:
    """The newest snapshot bar (any resolution) of the given series."""
    rows = await session.execute(
        text(
            "SELECT max(l.ts) FROM unnest(CAST(:ids AS int[])) AS q(id), "
            "unnest(CAST(:res AS text[])) AS r(res) CROSS JOIN LATERAL ("
            "  SELECT ts FROM heatmap_snapshots h WHERE h.series_id = q.id "
            "  AND h.resolution = r.res ORDER BY ts DESC LIMIT 1) l"
        ),
        {"ids": list(series_ids), "res": resolutions(timeframe)},
    )
    return rows.scalar()


async def complete_until(
    session: AsyncSession, series_ids: Sequence[int], timeframe: str
) -> datetime | None:
    """Close time of the newest bar every one of the series has materialized: answers about
    instants up to it are final (None when a series has nothing)."""
    rows = await session.execute(
        text(
            "SELECT q.id, max(l.ts) FROM unnest(CAST(:ids AS int[])) AS q(id) "
            "CROSS JOIN unnest(CAST(:res AS text[])) AS r(res) LEFT JOIN LATERAL ("
            "  SELECT ts FROM heatmap_snapshots h WHERE h.series_id = q.id "
            "  AND h.resolution = r.res ORDER BY ts DESC LIMIT 1) l ON true GROUP BY q.id"
        ),
        {"ids": list(series_ids), "res": resolutions(timeframe)},
    )
    stamps = [ts for _, ts in rows]
    if not stamps or any(ts is None for ts in stamps):
        return None
    from api.timerange import timeframe_seconds

    return min(stamps) + timedelta(seconds=timeframe_seconds(timeframe))


async def first_snapshot_ts(
    session: AsyncSession, series_ids: Sequence[int], resolution: str
) -> datetime | None:
    rows = await session.execute(
        text(
            "SELECT min(l.ts) FROM unnest(CAST(:ids AS int[])) AS q(id) CROSS JOIN LATERAL ("
            "  SELECT ts FROM heatmap_snapshots h WHERE h.series_id = q.id "
            "  AND h.resolution = :res ORDER BY ts LIMIT 1) l"
        ),
        {"ids": list(series_ids), "res": resolution},
    )
    return rows.scalar()


async def missing_datasets(session: AsyncSession, market_ids: Sequence[int]) -> list[str]:
    """``exchange:dataset`` for every dataset a market has no rows of."""
    rows = await session.execute(
        text(
            """
            SELECT m.exchange_id,
                   EXISTS (SELECT 1 FROM candles c WHERE c.market_id = m.id),
                   EXISTS (SELECT 1 FROM open_interest o WHERE o.market_id = m.id),
                   EXISTS (SELECT 1 FROM funding_rates f WHERE f.market_id = m.id),
                   EXISTS (SELECT 1 FROM margin_tiers t WHERE t.market_id = m.id)
            FROM markets m WHERE m.id = ANY(:ids) ORDER BY m.exchange_id
            """
        ),
        {"ids": list(market_ids)},
    )
    out = []
    for exchange, *present in rows:
        out += [f"{exchange}:{d}" for d, ok in zip(DATASETS, present, strict=True) if not ok]
    return out


@dataclass(frozen=True, slots=True)
class ModelRow:
    series_id: int
    scope: str
    model_version: str
    params: dict[str, Any]
    last_bar_ts: datetime
    updated_at: datetime


async def model_states(session: AsyncSession, symbol: str) -> list[ModelRow]:
    """Saved engine states (version and assumptions) of every series of a symbol."""
    rows = await session.execute(
        text(
            "SELECT e.series_id, s.scope, e.model_version, e.params, e.last_bar_ts, e.updated_at "
            "FROM engine_states e JOIN heatmap_series s ON s.id = e.series_id "
            "WHERE s.symbol = :s ORDER BY s.scope"
        ),
        {"s": symbol},
    )
    return [ModelRow(*r) for r in rows]


# --- snapshots -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Snapshot:
    series_id: int
    resolution: str
    ts: datetime  # bar open; the state is at the bar's close
    price: float
    bucket_size: float
    model_version: str
    vector: BucketVector


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(
        row.series_id,
        row.resolution,
        row.ts,
        row.price,
        row.bucket_size,
        row.model_version,
        BucketVector(
            origin_index(row.bucket_origin, row.bucket_size),
            decode_float4_array(row.long_bin).astype(np.float64),
            decode_float4_array(row.short_bin).astype(np.float64),
        ),
    )


_SNAPSHOT_COLUMNS = (
    "h.series_id, h.resolution, h.ts, h.price, h.bucket_origin, h.bucket_size, h.model_version, "
    "array_send(h.long_usd) AS long_bin, array_send(h.short_usd) AS short_bin"
)

_LATEST_SQL = text(
    f"""
    SELECT l.* FROM unnest(CAST(:ids AS int[])) AS q(id),
                    unnest(CAST(:res AS text[])) AS r(res)
    CROSS JOIN LATERAL (
        SELECT {_SNAPSHOT_COLUMNS} FROM heatmap_snapshots h
        WHERE h.series_id = q.id AND h.resolution = r.res AND h.ts <= :at
        ORDER BY h.ts DESC LIMIT 1
    ) l
    """
)


async def snapshots_at(
    session: AsyncSession, series_ids: Sequence[int], at_bar: datetime, timeframe: str
) -> list[Snapshot]:
    """Per series, the newest snapshot whose bar opened at or before ``at_bar`` (any
    resolution; both resolutions hold the same state for the same bar)."""
    rows = await session.execute(
        _LATEST_SQL, {"ids": list(series_ids), "res": resolutions(timeframe), "at": at_bar}
    )
    best: dict[int, Snapshot] = {}
    for row in rows:
        if row.series_id not in best or row.ts > best[row.series_id].ts:
            best[row.series_id] = _snapshot(row)
    return [best[i] for i in series_ids if i in best]


_PAGE_SQL = text(
    f"""
    SELECT {_SNAPSHOT_COLUMNS} FROM heatmap_snapshots h
    WHERE h.series_id = :series AND h.resolution = :res AND h.ts >= :start AND h.ts < :end
      AND h.ts > :after
    ORDER BY h.ts LIMIT :limit
    """
)


async def snapshot_page(
    session: AsyncSession,
    series_id: int,
    resolution: str,
    start: datetime,
    end: datetime,
    after: datetime,
    limit: int,
) -> list[Snapshot]:
    rows = await session.execute(
        _PAGE_SQL,
        {
            "series": series_id,
            "res": resolution,
            "start": start,
            "end": end,
            "after": after,
            "limit": limit,
        },
    )
    return [_snapshot(r) for r in rows]


@dataclass(frozen=True, slots=True)
class ColumnRef:
    series_id: int
    column: int
    ts: datetime


_COLUMN_INDEX_SQL = text(
    """
    SELECT DISTINCT ON (series_id, col) series_id, col, ts
    FROM (
        SELECT series_id, ts,
               floor((extract(epoch FROM ts) - :start_s) / :step_s)::int AS col
        FROM heatmap_snapshots
        WHERE series_id = ANY(:ids) AND resolution = :res AND ts >= :start AND ts < :end
    ) h
    ORDER BY series_id, col, ts DESC
    """
).bindparams(bindparam("ids", type_=ARRAY(Integer)), bindparam("res", type_=String))


async def heatmap_column_index(
    session: AsyncSession,
    series_ids: Sequence[int],
    resolution: str,
    start: datetime,
    end: datetime,
    step_s: int,
) -> list[ColumnRef]:
    """Per series and time column, the last snapshot whose bar opened in the column."""
    rows = await session.execute(
        _COLUMN_INDEX_SQL,
        {
            "ids": list(series_ids),
            "res": resolution,
            "start": start,
            "end": end,
            "start_s": start.timestamp(),
            "step_s": step_s,
        },
    )
    return [ColumnRef(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class Column:
    """A stored snapshot's vectors as float32, as they are stored."""

    first: int  # grid index of element 0
    long_usd: np.ndarray
    short_usd: np.ndarray


async def snapshot_columns(
    session: AsyncSession, series_id: int, resolution: str, stamps: Sequence[datetime]
) -> dict[datetime, Column]:
    rows = await session.execute(
        text(
            "SELECT ts, round(bucket_origin / bucket_size)::int AS first, "
            "array_send(long_usd) AS long_bin, array_send(short_usd) AS short_bin "
            "FROM heatmap_snapshots WHERE series_id = :s AND resolution = :r AND ts = ANY(:ts)"
        ),
        {"s": series_id, "r": resolution, "ts": list(stamps)},
    )
    return {
        ts: Column(first, decode_float4_array(lo), decode_float4_array(sh))
        for ts, first, lo, sh in rows
    }


async def price_range(
    session: AsyncSession,
    series_ids: Sequence[int],
    resolution: str,
    start: datetime,
    end: datetime,
) -> tuple[float | None, float | None]:
    row = (
        await session.execute(
            text(
                "SELECT min(price), max(price) FROM heatmap_snapshots WHERE series_id = ANY(:ids) "
                "AND resolution = :res AND ts >= :start AND ts < :end"
            ),
            {"ids": list(series_ids), "res": resolution, "start": start, "end": end},
        )
    ).one()
    return row[0], row[1]


# --- series -----------------------------------------------------------------------------------
async def candles(
    session: AsyncSession,
    market_id: int,
    timeframe: str,
    start: datetime,
    end: datetime,
    step_s: int,
    limit: int,
) -> list[Any]:
    """OHLCV aggregated to ``step_s`` buckets aligned to ``start`` (the base timeframe as is)."""
    rows = await session.execute(
        text(
            """
            SELECT to_timestamp(:start_s + b * :step_s) AS ts, o[1] AS open, high, low,
                   c[1] AS close, volume, taker_buy_volume
            FROM (
                SELECT floor((extract(epoch FROM ts) - :start_s) / :step_s)::int AS b,
                       array_agg(open ORDER BY ts) AS o, max(high) AS high, min(low) AS low,
                       array_agg(close ORDER BY ts DESC) AS c, sum(volume) AS volume,
                       sum(taker_buy_volume) AS taker_buy_volume
                FROM candles
                WHERE market_id = :m AND timeframe = :tf AND ts >= :start AND ts < :end
                GROUP BY b
            ) g ORDER BY b LIMIT :limit
            """
        ),
        {
            "m": market_id,
            "tf": timeframe,
            "start": start,
            "end": end,
            "start_s": start.timestamp(),
            "step_s": step_s,
            "limit": limit,
        },
    )
    return list(rows)


async def open_interest(
    session: AsyncSession,
    market_id: int,
    timeframe: str,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[Any]:
    rows = await session.execute(
        text(
            "SELECT ts, open_interest, open_interest_usd FROM open_interest WHERE market_id = :m "
            "AND timeframe = :tf AND ts >= :start AND ts < :end ORDER BY ts LIMIT :limit"
        ),
        {"m": market_id, "tf": timeframe, "start": start, "end": end, "limit": limit},
    )
    return list(rows)


async def funding_rates(
    session: AsyncSession, market_id: int, start: datetime, end: datetime, limit: int
) -> list[Any]:
    rows = await session.execute(
        text(
            "SELECT ts, funding_rate FROM funding_rates WHERE market_id = :m "
            "AND ts >= :start AND ts < :end ORDER BY ts LIMIT :limit"
        ),
        {"m": market_id, "start": start, "end": end, "limit": limit},
    )
    return list(rows)


async def realized(
    session: AsyncSession,
    base: str,
    exchanges: Sequence[str] | None,
    timeframe: str | None,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[Any]:
    # rows are stored per market (symbol) or as a total over the base's markets (symbol '*'):
    # one row per bar, source and venue, the stored total where there is one, else the sum
    whole = "bool_or(symbol = '*')"
    sql = (
        "SELECT source, exchange, timeframe, ts, "
        f"CASE WHEN {whole} THEN sum(long_usd) FILTER (WHERE symbol = '*') "
        "ELSE sum(long_usd) END AS long_usd, "
        f"CASE WHEN {whole} THEN sum(short_usd) FILTER (WHERE symbol = '*') "
        "ELSE sum(short_usd) END AS short_usd, "
        f"(CASE WHEN {whole} THEN sum(events) FILTER (WHERE symbol = '*') "
        "ELSE sum(events) END)::bigint AS events, "
        "bool_or(lower_bound) AS lower_bound, string_agg(DISTINCT note, '; ') AS note "
        "FROM realized_liquidations WHERE base = :base AND ts >= :start AND ts < :end"
    )
    params: dict[str, Any] = {"base": base, "start": start, "end": end, "limit": limit}
    if exchanges is not None:
        sql += " AND exchange = ANY(:exchanges)"
        params["exchanges"] = list(exchanges)
    if timeframe is not None:
        sql += " AND timeframe = :tf"
        params["tf"] = timeframe
    sql += " GROUP BY source, exchange, timeframe, ts ORDER BY ts, exchange, source LIMIT :limit"
    rows = await session.execute(text(sql), params)
    return list(rows)


async def swept(
    session: AsyncSession,
    series_ids: Sequence[int],
    start: datetime,
    end: datetime,
    step_s: int,
    limit: int,
) -> list[Any]:
    """Predicted liquidated notional summed over the series and over ``step_s`` buckets."""
    rows = await session.execute(
        text(
            """
            SELECT to_timestamp(:start_s + b * :step_s) AS ts, sum(long_usd) AS long_usd,
                   sum(short_usd) AS short_usd, count(DISTINCT ts) AS bars
            FROM (
                SELECT floor((extract(epoch FROM ts) - :start_s) / :step_s)::int AS b, ts,
                       long_usd, short_usd
                FROM swept_levels
                WHERE series_id = ANY(:ids) AND ts >= :start AND ts < :end
            ) s GROUP BY b ORDER BY b LIMIT :limit
            """
        ),
        {
            "ids": list(series_ids),
            "start": start,
            "end": end,
            "start_s": start.timestamp(),
            "step_s": step_s,
            "limit": limit,
        },
    )
    return list(rows)
