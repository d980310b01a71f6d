"""Storage helpers for the ingest side: markets, series writes, watermarks and job runs.

All SQL the jobs need lives here, parameterized. Series writes take the caller's connection so a
page of rows and the watermark that covers it commit in one transaction.
"""

from __future__ import annotations

import functools
import itertools
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from liqmap.timeframes import timeframe_name
from models.bulk import copy_upsert
from models.jobs import IngestWatermark, JobRun
from models.market import Exchange, MarginTier, Market
from models.partitions import ensure_month_partitions
from models.records import (
    CandleRow,
    FundingRateRow,
    LiquidationEvent,
    MarketInfo,
    OpenInterestRow,
    RealizedTotal,
    TierTable,
)

EXCHANGE_NAMES = {"binanceusdm": "Binance USDⓈ-M", "bybit": "Bybit", "okx": "OKX"}


def to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_ms(ts: datetime) -> int:
    return round(ts.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class MarketRef:
    id: int
    exchange: str
    symbol: str
    base: str
    linear: bool
    contract_size: float


# --- markets ------------------------------------------------------------------------------------
async def upsert_markets(conn: AsyncConnection, markets: Sequence[MarketInfo]) -> list[MarketRef]:
    out: list[MarketRef] = []
    for m in markets:
        await conn.execute(
            insert(Exchange)
            .values(id=m.exchange, name=EXCHANGE_NAMES.get(m.exchange, m.exchange))
            .on_conflict_do_nothing()
        )
        values = {
            "exchange_id": m.exchange,
            "symbol": m.symbol,
            "exchange_symbol": m.exchange_symbol,
            "base": m.base,
            "quote": m.quote,
            "settle": m.settle,
            "linear": m.linear,
            "contract_size": m.contract_size,
            "price_precision": m.price_precision,
            "amount_precision": m.amount_precision,
            "active": m.active,
        }
        base_stmt = insert(Market).values(**values)
        upsert = base_stmt.on_conflict_do_update(
            index_elements=[Market.exchange_id, Market.symbol],
            set_={k: base_stmt.excluded[k] for k in values if k not in {"exchange_id", "symbol"}}
            | {"updated_at": func.now()},
        ).returning(Market.id)
        market_id = (await conn.execute(upsert)).scalar_one()
        out.append(MarketRef(market_id, m.exchange, m.symbol, m.base, m.linear, m.contract_size))
    return out


async def get_market(conn: AsyncConnection, exchange: str, symbol: str) -> MarketRef | None:
    stmt = select(
        Market.id,
        Market.exchange_id,
        Market.symbol,
        Market.base,
        Market.linear,
        Market.contract_size,
    ).where(Market.exchange_id == exchange, Market.symbol == symbol)
    row = (await conn.execute(stmt)).first()
    return None if row is None else MarketRef(*row)


# --- series writes --------------------------------------------------------------------------------
_SERIES_TABLES = {"candles": "candles", "open_interest": "open_interest"}
CANDLE_COLUMNS = (
    "market_id",
    "timeframe",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "taker_buy_volume",
)
OI_COLUMNS = ("market_id", "timeframe", "ts", "open_interest", "open_interest_usd")
FUNDING_COLUMNS = ("market_id", "ts", "funding_rate")


async def prepare_partitions(engine: AsyncEngine, dataset: str, timestamps: Sequence[int]) -> None:
    """Create the monthly partitions a page is about to write, in a short transaction of its own.

    Attaching a partition locks the parent's default partition and, for the foreign key, the
    markets table until the transaction ends; done inside a page's transaction, those locks
    would last as long as the page's write and stall every other writer creating a partition.
    Called before the page's transaction (which still checks, and creates what is missing).
    """
    if dataset not in _SERIES_TABLES or not timestamps:
        return
    first, last = to_datetime(min(timestamps)), to_datetime(max(timestamps))
    async with engine.begin() as conn:
        await ensure_month_partitions(conn, _SERIES_TABLES[dataset], first, last)


def _increasing(rows: Sequence[CandleRow | OpenInterestRow]) -> bool:
    """Strictly increasing timestamps: one series' rows with no key twice in the batch."""
    stamps = [r.timestamp for r in rows]
    return all(a < b for a, b in itertools.pairwise(stamps))


async def write_candles(
    conn: AsyncConnection, market_id: int, timeframe: str, rows: Sequence[CandleRow]
) -> int:
    if not rows:
        return 0
    stamps = [to_datetime(r.timestamp) for r in rows]
    await ensure_month_partitions(conn, "candles", min(stamps), max(stamps))
    records = [
        (market_id, timeframe, ts, r.open, r.high, r.low, r.close, r.volume, r.taker_buy_volume)
        for ts, r in zip(stamps, rows, strict=True)
    ]
    return await copy_upsert(conn, "candles", CANDLE_COLUMNS, records, unique=_increasing(rows))


async def write_open_interest(
    conn: AsyncConnection, market_id: int, timeframe: str, rows: Sequence[OpenInterestRow]
) -> int:
    if not rows:
        return 0
    stamps = [to_datetime(r.timestamp) for r in rows]
    await ensure_month_partitions(conn, "open_interest", min(stamps), max(stamps))
    records = [
        (market_id, timeframe, ts, r.open_interest, r.open_interest_usd)
        for ts, r in zip(stamps, rows, strict=True)
    ]
    return await copy_upsert(conn, "open_interest", OI_COLUMNS, records, unique=_increasing(rows))


async def write_funding_rates(
    conn: AsyncConnection, market_id: int, rows: Sequence[FundingRateRow]
) -> int:
    records = [(market_id, to_datetime(r.timestamp), r.funding_rate) for r in rows]
    return await copy_upsert(conn, "funding_rates", FUNDING_COLUMNS, records)


async def write_tier_table(conn: AsyncConnection, market_id: int, table: TierTable) -> int:
    valid_from = to_datetime(table.valid_from)
    records = [
        (
            market_id,
            valid_from,
            t.tier,
            t.min_notional,
            t.max_notional,
            t.maintenance_margin_rate,
            t.maintenance_amount,
            t.max_leverage,
            t.notional_unit,
            table.source,
        )
        for t in table.tiers
    ]
    cols = (
        "market_id",
        "valid_from",
        "tier",
        "min_notional",
        "max_notional",
        "maintenance_margin_rate",
        "maintenance_amount",
        "max_leverage",
        "notional_unit",
        "source",
    )
    return await copy_upsert(conn, "margin_tiers", cols, records)


async def latest_tier_table(
    conn: AsyncConnection, market_id: int, at: datetime | None = None
) -> list[Row[Any]]:
    """The tier table in force at ``at`` (latest when None), tiers ascending."""
    valid = select(func.max(MarginTier.valid_from)).where(MarginTier.market_id == market_id)
    if at is not None:
        valid = valid.where(MarginTier.valid_from <= at)
    # a Core connection returns rows, not ORM objects: select the columns (rows keep the names)
    stmt = (
        select(*MarginTier.__table__.columns)
        .where(MarginTier.market_id == market_id, MarginTier.valid_from == valid.scalar_subquery())
        .order_by(MarginTier.tier)
    )
    return list((await conn.execute(stmt)).all())


async def write_liquidation_events(
    conn: AsyncConnection, market_id: int, events: Sequence[LiquidationEvent]
) -> int:
    import orjson

    records = [
        (
            market_id,
            to_datetime(e.timestamp),
            e.side,
            e.price,
            e.quantity,
            e.usd_value,
            orjson.dumps(e.raw).decode() if e.raw else None,
        )
        for e in events
    ]
    cols = ("market_id", "ts", "side", "price", "quantity", "usd_value", "raw")
    return await copy_upsert(conn, "liquidation_events", cols, records, update=False)


async def write_realized_totals(conn: AsyncConnection, rows: Sequence[RealizedTotal]) -> int:
    cols = (
        "source",
        "exchange",
        "base",
        "symbol",
        "timeframe",
        "ts",
        "long_usd",
        "short_usd",
        "events",
        "lower_bound",
        "note",
    )
    records = [
        (
            r.source,
            r.exchange,
            r.base,
            r.symbol,
            r.timeframe,
            to_datetime(r.timestamp),
            r.long_usd,
            r.short_usd,
            r.events,
            r.lower_bound,
            r.note,
        )
        for r in rows
    ]
    return await copy_upsert(conn, "realized_liquidations", cols, records)


async def refresh_realized_from_events(
    conn: AsyncConnection, market: MarketRef, timeframe_ms: int, first: datetime, last: datetime
) -> int:
    """Recompute per-bar realized totals of one market from its stored events (idempotent)."""
    result = await conn.execute(
        text(
            """
            INSERT INTO realized_liquidations
                (source, exchange, base, symbol, timeframe, ts, long_usd, short_usd, events,
                 lower_bound, note)
            SELECT 'stream', m.exchange_id, m.base, m.symbol, :tf,
                   to_timestamp(floor(extract(epoch FROM e.ts) * 1000 / :step) * :step / 1000.0),
                   coalesce(sum(e.usd_value) FILTER (WHERE e.side = 'long'), 0),
                   coalesce(sum(e.usd_value) FILTER (WHERE e.side = 'short'), 0),
                   count(*), m.exchange_id = 'binanceusdm',
                   CASE WHEN m.exchange_id = 'binanceusdm'
                        THEN 'lower bound: Binance pushes at most one event per symbol per second'
                   END
            FROM liquidation_events e JOIN markets m ON m.id = e.market_id
            WHERE e.market_id = :market AND e.ts >= :first AND e.ts <= :last
            GROUP BY m.exchange_id, m.base, m.symbol, 6
            ON CONFLICT (source, exchange, base, symbol, timeframe, ts) DO UPDATE SET
                long_usd = EXCLUDED.long_usd, short_usd = EXCLUDED.short_usd,
                events = EXCLUDED.events, lower_bound = EXCLUDED.lower_bound,
                note = EXCLUDED.note
            """
        ),
        {
            "tf": timeframe_name(timeframe_ms),
            "step": timeframe_ms,
            "market": market.id,
            "first": first,
            "last": last,
        },
    )
    return int(result.rowcount or 0)


# --- watermarks ---------------------------------------------------------------------------------
async def get_watermark(conn: AsyncConnection, market_id: int, dataset: str) -> datetime | None:
    return (
        await conn.execute(
            select(IngestWatermark.watermark).where(
                IngestWatermark.market_id == market_id, IngestWatermark.dataset == dataset
            )
        )
    ).scalar_one_or_none()


async def set_watermark(
    conn: AsyncConnection, market_id: int, dataset: str, watermark: datetime
) -> None:
    """Move the watermark forward only (a late, smaller value never rewinds it)."""
    stmt = insert(IngestWatermark).values(market_id=market_id, dataset=dataset, watermark=watermark)
    stmt = stmt.on_conflict_do_update(
        index_elements=[IngestWatermark.market_id, IngestWatermark.dataset],
        set_={
            "watermark": func.greatest(IngestWatermark.watermark, stmt.excluded.watermark),
            "updated_at": func.now(),
        },
    )
    await conn.execute(stmt)


async def first_missing_bar(
    conn: AsyncConnection,
    dataset: str,
    market_id: int,
    timeframe: str,
    step_ms: int,
    start: datetime,
) -> datetime:
    """The first bar open at or after ``start`` (on the grid) with no stored row."""
    table = _SERIES_TABLES[dataset]
    params = {"m": market_id, "tf": timeframe, "start": start, "step_s": step_ms / 1000}
    present = await conn.execute(
        text(f"SELECT 1 FROM {table} WHERE market_id = :m AND timeframe = :tf AND ts = :start"),
        params,
    )
    if present.first() is None:
        return start
    # an ordered index scan from start that stops at the first break in the run of bars
    end_of_run = await conn.execute(
        text(
            f"""
            SELECT ts + make_interval(secs => :step_s) FROM (
                SELECT ts, lead(ts) OVER (ORDER BY ts) AS next_ts FROM {table}
                WHERE market_id = :m AND timeframe = :tf AND ts >= :start
            ) run
            WHERE next_ts IS NULL OR next_ts > ts + make_interval(secs => :step_s)
            ORDER BY ts LIMIT 1
            """
        ),
        params,
    )
    found: datetime = end_of_run.scalar_one()
    return found


async def advance_watermark_contiguously(
    conn: AsyncConnection, market_id: int, dataset: str, timeframe: str, step_ms: int
) -> datetime | None:
    """Move an existing watermark to the first missing bar after it; never past a hole.

    For writers that are not the watermark's own incremental walk (archive imports): rows they
    store beyond a hole leave the watermark before the hole. No watermark: nothing to move.
    """
    current = await get_watermark(conn, market_id, dataset)
    if current is None:
        return None
    new = await first_missing_bar(conn, dataset, market_id, timeframe, step_ms, current)
    if new > current:
        await set_watermark(conn, market_id, dataset, new)
    return new


# --- job runs -----------------------------------------------------------------------------------
def this_process() -> str:
    """This process as job runs name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@functools.cache
def pid_namespace() -> int | None:
    """The inode of this process's PID namespace (Linux; None elsewhere). Pids name processes
    only within one, and containers may share a hostname while each has its own."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


async def start_job_run(
    engine: AsyncEngine,
    job: str,
    exchange: str | None,
    symbol: str | None,
    dataset: str | None,
    watermark_from: datetime | None,
    *,
    worker: str | None = None,
    procrastinate_job_id: int | None = None,
) -> int:
    async with engine.begin() as conn:
        return (
            await conn.execute(
                insert(JobRun)
                .values(
                    job=job,
                    exchange=exchange,
                    symbol=symbol,
                    dataset=dataset,
                    status="running",
                    watermark_from=watermark_from,
                    # every run names its process, so a run a killed CLI command left 'running'
                    # can be told from one in progress (fail_runs_of_dead_processes)
                    worker=worker if worker is not None else this_process(),
                    pid_namespace=pid_namespace(),
                    procrastinate_job_id=procrastinate_job_id,
                )
                .returning(JobRun.id)
            )
        ).scalar_one()


async def finish_job_run(
    engine: AsyncEngine,
    run_id: int,
    status: str,
    rows_written: int,
    watermark_to: datetime | None,
    error: str | None = None,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(
                status=status,
                rows_written=rows_written,
                watermark_to=watermark_to,
                error=error,
                finished_at=func.now(),
            )
        )


# Runs outside the queue (CLI backfills, imports, `up`'s pipeline) are 'running' only while the
# process named in `worker` lives; queue jobs' runs are the stalled-job recovery's.
_RUNNING_OUTSIDE_QUEUE = text(
    """
    SELECT id, worker, started_at FROM job_runs
    WHERE status = 'running' AND procrastinate_job_id IS NULL
      AND left(worker, length(:host) + 1) = :host || ':'
      -- a pid means something only in its namespace (NULL: a run from before it was recorded)
      AND (pid_namespace IS NULL OR CAST(:pid_namespace AS bigint) IS NULL
           OR pid_namespace = :pid_namespace)
    """
)


async def runs_outside_queue(
    conn: AsyncConnection, host: str, namespace: int | None
) -> list[Row[Any]]:
    """The runs left 'running' outside the queue by processes of ``host`` in PID namespace
    ``namespace`` (None: any): (id, worker, started_at)."""
    params = {"host": host, "pid_namespace": namespace}
    return list((await conn.execute(_RUNNING_OUTSIDE_QUEUE, params)).all())


async def fail_running_run(conn: AsyncConnection, run_id: int, reason: str) -> bool:
    """Fail one run still 'running' (as recover_stalled_job fails a dead worker's)."""
    result = await conn.execute(
        update(JobRun)
        .where(JobRun.id == run_id, JobRun.status == "running")
        .values(status="failed", error=reason, finished_at=func.now())
    )
    return result.rowcount == 1


# --- history retention -------------------------------------------------------------------
# Finished runs older than the cutoff go, except those the status queries (COVERAGE_SQL, the
# API's market status) still read: per job and market dataset, the latest run, the latest
# success and the latest error (by start and by finish). Runs still 'running' are never touched.
_PRUNE_JOB_RUNS = text(
    """
    WITH keep AS (
        (SELECT DISTINCT ON (job, exchange, symbol, dataset) id FROM job_runs
         ORDER BY job, exchange, symbol, dataset, started_at DESC, id DESC)
        UNION
        (SELECT DISTINCT ON (job, exchange, symbol, dataset) id FROM job_runs
         WHERE status = 'succeeded'
         ORDER BY job, exchange, symbol, dataset, finished_at DESC NULLS LAST, id DESC)
        UNION
        (SELECT DISTINCT ON (job, exchange, symbol, dataset) id FROM job_runs
         WHERE error IS NOT NULL
         ORDER BY job, exchange, symbol, dataset, started_at DESC, id DESC)
        UNION
        (SELECT DISTINCT ON (job, exchange, symbol, dataset) id FROM job_runs
         WHERE error IS NOT NULL
         ORDER BY job, exchange, symbol, dataset, coalesce(finished_at, started_at) DESC, id DESC)
    )
    DELETE FROM job_runs r
    WHERE r.status <> 'running' AND coalesce(r.finished_at, r.started_at) < :cutoff
      AND NOT EXISTS (SELECT 1 FROM keep WHERE keep.id = r.id)
    """
)

# procrastinate's own ``delete_old_jobs`` would fail as a whole on a job that the last periodic
# defer of a task still references (``procrastinate_periodic_defers.job_id`` has no ON DELETE:
# a task removed from the configuration keeps its last job referenced for good); those stay.
# A job's events go with it (ON DELETE CASCADE).
_PRUNE_QUEUE_JOBS = text(
    """
    DELETE FROM procrastinate_jobs j
    WHERE j.queue_name = :queue
      AND j.status IN ('succeeded', 'failed', 'cancelled', 'aborted')
      AND NOT EXISTS (
          SELECT 1 FROM procrastinate_events e WHERE e.job_id = j.id AND e.at >= :cutoff)
      AND NOT EXISTS (SELECT 1 FROM procrastinate_periodic_defers d WHERE d.job_id = j.id)
    """
)


@dataclass(frozen=True, slots=True)
class PrunedHistory:
    job_runs: int
    queue_jobs: int


async def prune_job_history(conn: AsyncConnection, cutoff: datetime, queue: str) -> PrunedHistory:
    """Delete the bookkeeping older than ``cutoff``: finished job runs (but what the status
    queries read) and ``queue``'s finished procrastinate jobs with their events."""
    runs = await conn.execute(_PRUNE_JOB_RUNS, {"cutoff": cutoff})
    jobs = await conn.execute(_PRUNE_QUEUE_JOBS, {"cutoff": cutoff, "queue": queue})
    return PrunedHistory(job_runs=runs.rowcount, queue_jobs=jobs.rowcount)


# A queue job is stalled when it is 'doing' on a worker that stopped sending heartbeats (or was
# pruned): procrastinate's own rule (its select_stalled_jobs_by_heartbeat query), re-checked here
# under the job's row lock so two recovering workers never both act on one job.
_LOCK_STALLED_JOB = text(
    """
    SELECT j.queueing_lock FROM procrastinate_jobs j
    LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
    WHERE j.id = :job AND j.status = 'doing'
      AND (j.worker_id IS NULL
           OR w.id IS NULL
           OR w.last_heartbeat < now() - make_interval(secs => :stalled_after_s))
    FOR UPDATE OF j
    """
)


async def recover_stalled_job(
    conn: AsyncConnection, job_id: int, stalled_after_s: float, reason: str
) -> str | None:
    """Fail the job runs a dead worker left 'running' and hand its queue job on, atomically.

    Returns "retried" (the job goes back to 'todo' through procrastinate's
    ``procrastinate_retry_job_v2``, as ``JobManager.retry_job`` does), "superseded" (a newer run
    of the same periodic task already waits under the job's queueing lock: the stalled job is
    failed through ``procrastinate_finish_job_v1`` and the waiting one does the work), or None
    when the job is no longer stalled (another worker recovered it first).
    """
    row = (
        await conn.execute(_LOCK_STALLED_JOB, {"job": job_id, "stalled_after_s": stalled_after_s})
    ).first()
    if row is None:
        return None
    queueing_lock = row[0]
    waiting = (
        queueing_lock is not None
        and (
            await conn.execute(
                text(
                    "SELECT 1 FROM procrastinate_jobs WHERE queueing_lock = :lock "
                    "AND status = 'todo' AND id <> :job LIMIT 1"
                ),
                {"lock": queueing_lock, "job": job_id},
            )
        ).first()
        is not None
    )
    if waiting:
        outcome, then = "superseded", "a queued run of the same task takes over"
        await conn.execute(
            text("SELECT procrastinate_finish_job_v1(:job, 'failed', false)"), {"job": job_id}
        )
    else:
        outcome, then = "retried", "the job was retried"
        await conn.execute(
            text("SELECT procrastinate_retry_job_v2(:job, now(), NULL, NULL, NULL)"),
            {"job": job_id},
        )
    await conn.execute(
        update(JobRun)
        .where(JobRun.procrastinate_job_id == job_id, JobRun.status == "running")
        .values(status="failed", error=f"{reason}; {then}", finished_at=func.now())
    )
    return outcome


COVERAGE_SQL = text(
    """
    WITH series AS (
        SELECT market_id, 'candles' AS dataset, min(ts) AS first_ts, max(ts) AS last_ts,
               count(*) AS rows FROM candles WHERE timeframe = :tf GROUP BY market_id
        UNION ALL
        SELECT market_id, 'open_interest', min(ts), max(ts), count(*)
        FROM open_interest WHERE timeframe = :tf GROUP BY market_id
        UNION ALL
        SELECT market_id, 'funding', min(ts), max(ts), count(*)
        FROM funding_rates GROUP BY market_id
        UNION ALL
        SELECT market_id, 'tiers', min(valid_from), max(valid_from), count(*)
        FROM margin_tiers GROUP BY market_id
    ), runs AS (
        SELECT exchange, symbol, dataset,
               max(finished_at) FILTER (WHERE status = 'succeeded') AS last_success,
               (array_agg(job ORDER BY started_at DESC, id DESC))[1] AS last_job,
               (array_agg(status ORDER BY started_at DESC, id DESC))[1] AS last_status,
               (array_agg(error ORDER BY started_at DESC, id DESC)
                    FILTER (WHERE error IS NOT NULL))[1] AS last_error,
               max(coalesce(finished_at, started_at)) FILTER (WHERE error IS NOT NULL)
                   AS last_error_at
        FROM job_runs WHERE job IN ('ingest', 'backfill', 'import')
        GROUP BY exchange, symbol, dataset
    )
    SELECT m.id AS market_id, m.exchange_id AS exchange, m.symbol, d.dataset, s.first_ts,
           s.last_ts, coalesce(s.rows, 0) AS rows, r.last_success, r.last_job, r.last_status,
           r.last_error, r.last_error_at
    FROM markets m
    CROSS JOIN (VALUES ('candles'), ('open_interest'), ('funding'), ('tiers')) AS d(dataset)
    LEFT JOIN series s ON s.market_id = m.id AND s.dataset = d.dataset
    LEFT JOIN runs r ON r.exchange = m.exchange_id AND r.symbol = m.symbol
                    AND r.dataset = d.dataset
    ORDER BY m.exchange_id, m.symbol, d.dataset
    """
)

GAPS_SQL = text(
    """
    SELECT ts, next_ts FROM (
        SELECT ts, lead(ts) OVER (ORDER BY ts) AS next_ts
        FROM {table} WHERE market_id = :market AND timeframe = :tf
    ) g WHERE next_ts - ts > make_interval(secs => :step_s)
    ORDER BY ts
    """
)


async def find_gaps(
    conn: AsyncConnection, table: str, market_id: int, timeframe: str, step_ms: int
) -> list[tuple[datetime, datetime]]:
    """Holes in a stored series: (last bar before the hole, first bar after it)."""
    if table not in {"candles", "open_interest"}:
        raise ValueError(table)
    sql = text(GAPS_SQL.text.replace("{table}", table))
    rows = await conn.execute(sql, {"market": market_id, "tf": timeframe, "step_s": step_ms / 1000})
    return [(r[0], r[1]) for r in rows.all()]
