"""Ingest bookkeeping: watermarks, job runs, coverage and the queue's upkeep (``queries.sql``)."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.market_data_store import DATASETS, dataset_extents, first_missing_bar
from models.market_store import MarketRow
from models.queries import Executor, query


@dataclass(frozen=True, slots=True)
class IngestLag:
    exchange: str
    symbol: str
    dataset: str
    watermark: datetime


@dataclass(frozen=True, slots=True)
class RunningRun:
    """A job run left 'running'."""

    id: int
    worker: str | None
    started_at: datetime


@dataclass(frozen=True, slots=True)
class PrunedHistory:
    job_runs: int
    queue_jobs: int


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """What is stored of one market dataset (bars of the base timeframe) and how ingest fared."""

    market_id: int
    exchange: str
    symbol: str
    dataset: str
    first_ts: datetime | None
    last_ts: datetime | None
    rows: int
    last_success: datetime | None
    last_job: str | None
    last_status: str | None
    last_error: str | None
    last_error_at: datetime | None


@dataclass(frozen=True, slots=True)
class MarketDatasetCoverage:
    """First/last stored timestamp of one market dataset and its latest ingest run."""

    market_id: int
    dataset: str
    first_ts: datetime | None
    last_ts: datetime | None
    last_success: datetime | None
    last_status: str | None
    last_error: str | None


# --- watermarks ---------------------------------------------------------------------------------
async def watermark(conn: Executor, market_id: int, dataset: str) -> datetime | None:
    """Everything of the dataset before this instant is stored (the ingest watermark)."""
    params = {"market": market_id, "dataset": dataset}
    found: datetime | None = (await conn.execute(query("watermark"), params)).scalar_one_or_none()
    return found


async def set_watermark(conn: Executor, market_id: int, dataset: str, watermark: datetime) -> None:
    """Move the watermark forward only (a late, smaller value never rewinds it)."""
    params = {"market_id": market_id, "dataset": dataset, "watermark": watermark}
    await conn.execute(query("advance_watermark"), params)


async def advance_watermark_contiguously(
    conn: Executor, market_id: int, dataset: str, timeframe: str, step_ms: int
) -> datetime | None:
    """Move an existing watermark to the first missing bar after it; never past a hole.

    For writers that are not the watermark's own incremental walk (archive imports): rows they
    store beyond a hole leave the watermark before the hole. No watermark: nothing to move.
    """
    current = await watermark(conn, market_id, dataset)
    if current is None:
        return None
    new = await first_missing_bar(conn, dataset, market_id, timeframe, step_ms, current)
    if new > current:
        await set_watermark(conn, market_id, dataset, new)
    return new


async def newest_watermark(conn: Executor, dataset: str) -> datetime | None:
    """The newest watermark of ``dataset`` over every market (None before any ingest)."""
    found: datetime | None = (
        await conn.execute(query("newest_watermark"), {"dataset": dataset})
    ).scalar_one_or_none()
    return found


async def ingest_lag(conn: Executor) -> list[IngestLag]:
    """The watermark of every market and dataset."""
    return [IngestLag(*r) for r in await conn.execute(query("watermarks"))]


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
    params = {
        "job": job,
        "exchange": exchange,
        "symbol": symbol,
        "dataset": dataset,
        "watermark_from": watermark_from,
        # every run names its process, so a run a killed CLI command left 'running' can be
        # told from one in progress (fail_runs_of_dead_processes)
        "worker": worker if worker is not None else this_process(),
        "pid_namespace": pid_namespace(),
        "procrastinate_job_id": procrastinate_job_id,
    }
    async with engine.begin() as conn:
        run_id: int = (await conn.execute(query("start_job_run"), params)).scalar_one()
    return run_id


async def finish_job_run(
    engine: AsyncEngine,
    run_id: int,
    status: str,
    rows_written: int,
    watermark_to: datetime | None,
    error: str | None = None,
) -> None:
    params = {
        "id": run_id,
        "status": status,
        "rows_written": rows_written,
        "watermark_to": watermark_to,
        "error": error,
    }
    async with engine.begin() as conn:
        await conn.execute(query("finish_job_run"), params)


async def runs_outside_queue(conn: Executor, host: str, namespace: int | None) -> list[RunningRun]:
    """The runs left 'running' outside the queue by processes of ``host`` in PID namespace
    ``namespace`` (None: any)."""
    params = {"host": host, "pid_namespace": namespace}
    return [RunningRun(*r) for r in await conn.execute(query("runs_outside_queue"), params)]


async def fail_running_run(conn: AsyncConnection, run_id: int, reason: str) -> bool:
    """Fail one run still 'running' (as recover_stalled_job fails a dead worker's)."""
    result = await conn.execute(query("fail_running_run"), {"id": run_id, "reason": reason})
    return result.rowcount == 1


async def fail_orphaned_runs(conn: AsyncConnection, reason: str) -> int:
    """Fail the runs left 'running' although their queue job has ended (the database went away
    before they could store their outcome); ``reason`` is appended to their error. How many."""
    result = await conn.execute(query("fail_orphaned_runs"), {"reason": reason})
    return int(result.rowcount or 0)


async def prune_job_history(conn: AsyncConnection, cutoff: datetime, queue: str) -> PrunedHistory:
    """Delete the bookkeeping older than ``cutoff``: finished job runs (but what the status
    queries read) and ``queue``'s finished procrastinate jobs with their events."""
    runs = await conn.execute(query("prune_job_runs"), {"cutoff": cutoff})
    jobs = await conn.execute(query("prune_queue_jobs"), {"cutoff": cutoff, "queue": queue})
    return PrunedHistory(job_runs=runs.rowcount, queue_jobs=jobs.rowcount)


async def recover_stalled_job(
    conn: Executor, job_id: int, stalled_after_s: float, reason: str
) -> str | None:
    """Fail the job runs a dead worker left 'running' and hand its queue job on, atomically.

    Returns "retried" (the job goes back to 'todo' through procrastinate's
    ``procrastinate_retry_job_v2``, as ``JobManager.retry_job`` does), "superseded" (a newer run
    of the same periodic task already waits under the job's queueing lock: the stalled job is
    failed through ``procrastinate_finish_job_v1`` and the waiting one does the work), or None
    when the job is no longer stalled (another worker recovered it first).
    """
    params = {"job": job_id, "stalled_after_s": stalled_after_s}
    row = (await conn.execute(query("lock_stalled_job"), params)).first()
    if row is None:
        return None
    queueing_lock = row[0]
    waiting = (
        queueing_lock is not None
        and (
            await conn.execute(query("queued_under_lock"), {"lock": queueing_lock, "job": job_id})
        ).first()
        is not None
    )
    if waiting:
        outcome, then = "superseded", "a queued run of the same task takes over"
        await conn.execute(query("fail_queue_job"), {"job": job_id})
    else:
        outcome, then = "retried", "the job was retried"
        await conn.execute(query("retry_queue_job"), {"job": job_id})
    error = f"{reason}; {then}"
    await conn.execute(query("fail_runs_of_queue_job"), {"job": job_id, "error": error})
    return outcome


# --- coverage -----------------------------------------------------------------------------------
async def coverage(conn: Executor, timeframe: str) -> list[CoverageRow]:
    """Per market and dataset (bars of ``timeframe``): what is stored and how ingest fared."""
    return [CoverageRow(*r) for r in await conn.execute(query("coverage"), {"tf": timeframe})]


@dataclass(frozen=True, slots=True)
class LatestRun:
    """The latest ingest run of one market dataset."""

    exchange: str
    symbol: str
    dataset: str
    status: str
    error: str | None


async def latest_runs(conn: Executor, symbols: Sequence[str]) -> list[LatestRun]:
    """Per exchange, symbol and dataset of ``symbols``: the latest ingest run's status and
    error (no stored extents: an index lookup per market dataset)."""
    rows = await conn.execute(query("latest_ingest_runs"), {"symbols": sorted(set(symbols))})
    return [LatestRun(r.exchange, r.symbol, r.dataset, r.status, r.error) for r in rows]


async def market_coverage(
    conn: Executor, markets: Sequence[MarketRow]
) -> list[MarketDatasetCoverage]:
    """First/last timestamp and the latest ingest run per market and dataset."""
    extents = {
        (e.market_id, e.dataset): e for e in await dataset_extents(conn, [m.id for m in markets])
    }
    symbols = sorted({m.symbol for m in markets})
    runs = {
        (r.exchange, r.symbol, r.dataset): r
        for r in await conn.execute(query("latest_ingest_runs"), {"symbols": symbols})
    }
    out = []
    for m in markets:
        for dataset in DATASETS:
            extent = extents.get((m.id, dataset))
            run = runs.get((m.exchange, m.symbol, dataset))
            out.append(
                MarketDatasetCoverage(
                    m.id,
                    dataset,
                    extent.first_ts if extent else None,
                    extent.last_ts if extent else None,
                    run.last_success if run else None,
                    run.status if run else None,
                    run.error if run else None,
                )
            )
    return out


# --- locks --------------------------------------------------------------------------------------
async def try_session_lock(conn: Executor, key: int) -> bool:
    """Take a session-level advisory lock if it is free."""
    return bool((await conn.execute(query("try_session_lock"), {"key": key})).scalar())


async def release_session_lock(conn: Executor, key: int) -> None:
    await conn.execute(query("release_session_lock"), {"key": key})
