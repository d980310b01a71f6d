"""The procrastinate app: one periodic task per (exchange, market, dataset) and per symbol.

Any number of ``liqmap worker`` processes, on any number of machines, share the queue. Each task
carries a ``lock`` (no two runs of the same job at once) and a ``queueing_lock`` (at most one
waiting), and procrastinate defers each periodic task once per period however many workers run.

A worker that dies (SIGKILL, lost machine) leaves its job ``doing``, and the job's lock would
block every later run of that task. Workers send heartbeats (``worker_heartbeat_s``); every
worker looks for the jobs of workers silent for ``worker_stalled_after_s`` with procrastinate's
``JobManager.get_stalled_jobs`` and hands each one on (retried, or failed when a newer run of the
same task already waits), marking the job run the dead worker left ``running`` as failed.

An hourly ``liqmap.prune_history`` deletes the bookkeeping older than ``history_retention_days``
(finished job runs and queue jobs; ``models.jobs_store.prune_job_history`` says what stays).
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
import psutil
from procrastinate import JobContext, PsycopgConnector
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.ingest import DATASETS, ingest_dataset
from jobs.runtime import Runtime
from liqmap.logs import get_logger
from liqmap.schedules import cron_for
from liqmap.settings import Settings
from models import jobs_store

log = get_logger(__name__)

QUEUE = "liqmap"
KNOWN_POSITIONS_VENUE = "hyperliquid"  # the venue whose accounts' positions are public
PRUNE_HISTORY_INTERVAL_S = 3600  # bookkeeping grows hourly (docs/performance.md, Storage growth)
WORKER_DIED = "worker died: no heartbeat from {worker} for {seconds:g} s"

# The runtime of this worker process; set by run_queue_worker before tasks run.
_runtime: Runtime | None = None


def set_runtime(rt: Runtime | None) -> None:
    global _runtime
    _runtime = rt


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("no job runtime in this process (start it with `liqmap worker`)")
    return _runtime


def worker_name() -> str:
    """This process as job runs name it: ``host:pid``."""
    return jobs_store.this_process()


PROCESS_DIED = "process died: {worker} no longer runs"


def process_gone(pid: int, started_at: datetime) -> bool:
    """Whether the process that started a run at ``started_at`` has ended: no such pid, a
    zombie, or a pid reused by a process started after the run (so not the one that ran it)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        return process.create_time() > started_at.timestamp() + 1
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:  # someone else's live process: not ours to judge
        return False


async def fail_runs_of_dead_processes(engine: AsyncEngine) -> list[int]:
    """Fail the runs that processes of this host which have since died (a CLI backfill or
    import, ``liqmap up``'s pipeline, killed outright) left 'running'; returns their ids.

    Only the processes of this host and PID namespace can be checked (containers sharing a
    hostname each have their own pids); runs of queue jobs are the stalled-job recovery's
    (``recover_stalled_jobs``).
    """
    failed: list[int] = []
    async with engine.begin() as conn:
        runs = await jobs_store.runs_outside_queue(
            conn, socket.gethostname(), jobs_store.pid_namespace()
        )
        for run in runs:
            pid = str(run.worker).rpartition(":")[2]
            if not pid.isdigit() or run.worker == worker_name():  # this process's own: alive
                continue
            if process_gone(int(pid), run.started_at) and await jobs_store.fail_running_run(
                conn, run.id, PROCESS_DIED.format(worker=run.worker)
            ):
                failed.append(run.id)
    if failed:
        log.warning("job runs of dead processes marked failed", runs=failed)
    return failed


def ingest_lock(exchange: str, symbol: str, dataset: str) -> str:
    return f"ingest:{exchange}:{symbol}:{dataset}"


def build_app(settings: Settings, database_url: str) -> procrastinate.App:
    # a pool connection is waited for 10 s at most (psycopg_pool: 30): a worker whose database
    # went away stops, and is restarted, sooner
    app = procrastinate.App(connector=PsycopgConnector(conninfo=database_url, timeout=10.0))

    @app.task(name="liqmap.ingest", queue=QUEUE, pass_context=True)
    async def ingest(
        context: JobContext, exchange: str, symbol: str, dataset: str, timestamp: int | None = None
    ) -> dict[str, Any]:
        result = await ingest_dataset(
            runtime(), exchange, symbol, dataset, queue_job_id=context.job.id
        )
        if result.status == "failed":
            # surfaced as a failed procrastinate job too, not only in job_runs
            raise RuntimeError(result.error)
        return {"status": result.status, "rows": result.rows_written}

    @app.task(name="liqmap.materialize", queue=QUEUE, pass_context=False)
    async def materialize(symbol: str, timestamp: int | None = None) -> dict[str, Any]:
        from jobs.materialize import materialize_symbol

        report = await materialize_symbol(runtime(), symbol)
        return {"snapshots": report.snapshots_written}

    @app.task(name="liqmap.prune_history", queue=QUEUE, pass_context=False)
    async def prune_history(timestamp: int | None = None) -> dict[str, int]:
        rt = runtime()
        cutoff = datetime.now(UTC) - timedelta(days=rt.settings.history_retention_days)
        async with rt.engine.begin() as conn:
            pruned = await jobs_store.prune_job_history(conn, cutoff, QUEUE)
        log.info(
            "job history pruned",
            job_runs=pruned.job_runs,
            queue_jobs=pruned.queue_jobs,
            older_than=cutoff.isoformat(),
        )
        return {"job_runs": pruned.job_runs, "queue_jobs": pruned.queue_jobs}

    @app.task(name="liqmap.known_positions", queue=QUEUE, pass_context=False)
    async def known_positions(timestamp: int | None = None) -> dict[str, Any]:
        from jobs.known_positions import collect_known_positions

        report = await collect_known_positions(runtime())
        return {
            "recorded_snapshots": report.recorded_snapshots,
            "round": report.round_id,
            "accounts": report.accounts_read,
            "failed": report.accounts_failed,
            "positions": report.positions,
            "liquidation_fills": report.liquidation_fills,
        }

    if KNOWN_POSITIONS_VENUE in settings.exchanges:
        app.periodic(
            cron=cron_for(settings.known_positions_interval_s),
            periodic_id=f"known_positions|{KNOWN_POSITIONS_VENUE}",
            lock=f"known_positions:{KNOWN_POSITIONS_VENUE}",
            queueing_lock=f"known_positions:{KNOWN_POSITIONS_VENUE}",
        )(known_positions)

    app.periodic(
        cron=cron_for(PRUNE_HISTORY_INTERVAL_S),
        periodic_id="prune_history",
        lock="prune_history",
        queueing_lock="prune_history",
    )(prune_history)

    for exchange in settings.exchanges:
        for symbol in settings.symbols_for(exchange):
            for dataset in DATASETS:
                interval = (
                    settings.tiers_interval_s if dataset == "tiers" else settings.ingest_interval_s
                )
                lock = ingest_lock(exchange, symbol, dataset)
                app.periodic(
                    cron=cron_for(interval),
                    periodic_id=f"{exchange}|{symbol}|{dataset}",
                    task_kwargs={"exchange": exchange, "symbol": symbol, "dataset": dataset},
                    lock=lock,
                    queueing_lock=lock,
                )(ingest)  # type: ignore[arg-type]  # procrastinate adds `timestamp`
    for symbol in sorted({s for e in settings.exchanges for s in settings.symbols_for(e)}):
        lock = f"materialize:{symbol}"
        app.periodic(
            cron=cron_for(settings.materialize_interval_s),
            periodic_id=f"materialize|{symbol}",
            task_kwargs={"symbol": symbol},
            lock=lock,
            queueing_lock=lock,
        )(materialize)  # type: ignore[arg-type]
    return app


async def recover_stalled_jobs(rt: Runtime, app: procrastinate.App) -> dict[int, str]:
    """Hand on the jobs of dead workers; returns {job id: "retried" | "superseded"}."""
    stalled_after = rt.settings.worker_stalled_after_s
    stalled = await app.job_manager.get_stalled_jobs(
        queue=QUEUE, seconds_since_heartbeat=stalled_after
    )
    done: dict[int, str] = {}
    for job in stalled:
        if job.id is None:
            continue
        who = f"procrastinate worker {job.worker_id}" if job.worker_id else "a pruned worker"
        reason = WORKER_DIED.format(worker=who, seconds=stalled_after)
        outcome = None
        for attempt in (1, 2):
            try:
                async with rt.engine.begin() as conn:
                    outcome = await jobs_store.recover_stalled_job(
                        conn, job.id, stalled_after, reason
                    )
                break
            except Exception as exc:
                # a periodic defer raced us to the queueing lock (it queued the next run while
                # this one was being retried): asked again at once, the job is superseded by
                # that run, instead of holding the task's lock until the next round
                if attempt == 2:
                    log.warning("stalled job not recovered this time", job=job.id, error=repr(exc))
        if outcome is None:
            continue
        done[job.id] = outcome
        log.warning(
            "job of a dead worker handed on",
            job=job.id,
            task=job.task_name,
            lock=job.lock,
            outcome=outcome,
            worker=job.worker_id,
        )
    return done


async def _recover_forever(rt: Runtime, app: procrastinate.App) -> None:
    while True:
        try:
            await recover_stalled_jobs(rt, app)
            await fail_runs_of_dead_processes(rt.engine)
        except Exception as exc:  # never let recovery take the worker down
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # a cancellation that a driver turned into its own error (procrastinate wraps
                # what psycopg raises while its pool closes): stop, or the worker's teardown
                # waits for this loop for ever (issue 17: "AppNotOpen" every second)
                raise asyncio.CancelledError from exc
            log.error("stalled-job recovery failed", error=repr(exc))
        await asyncio.sleep(rt.settings.worker_heartbeat_s)


# How long a stopping worker waits for its running jobs (then aborts them) and for its side tasks
# (then leaves them): a job or task stuck on a database that went away never holds a restart.
WORKER_SHUTDOWN_GRACE_S = 20.0
WORKER_TEARDOWN_S = 10.0


async def _stop_tasks(tasks: list[asyncio.Task[Any]], timeout: float) -> None:
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, stuck = await asyncio.wait(tasks, timeout=timeout)
    if stuck:
        log.error(
            "worker side tasks did not stop; left behind",
            tasks=sorted(t.get_name() for t in stuck),
            waited_s=timeout,
        )


async def run_queue_worker(rt: Runtime, database_url: str, *, concurrency: int = 2) -> None:
    """Run the procrastinate worker on an open runtime until cancelled: periodic deferrals, job
    execution, the liquidation collectors and stalled-job recovery."""
    from jobs.liquidations import run_collector_forever

    app = build_app(rt.settings, database_url)
    set_runtime(rt)
    collectors = [
        asyncio.create_task(run_collector_forever(rt, exchange), name=f"collector:{exchange}")
        for exchange in rt.settings.exchanges
    ]
    try:
        async with app.open_async():
            recovery = asyncio.create_task(_recover_forever(rt, app), name="stalled-recovery")
            try:
                log.info("worker started", concurrency=concurrency, worker=worker_name())
                await app.run_worker_async(
                    queues=[QUEUE],
                    concurrency=concurrency,
                    name=worker_name(),
                    install_signal_handlers=False,
                    update_heartbeat_interval=rt.settings.worker_heartbeat_s,
                    stalled_worker_timeout=rt.settings.worker_stalled_after_s,
                    shutdown_graceful_timeout=WORKER_SHUTDOWN_GRACE_S,
                )
            finally:  # before the app closes: the recovery loop uses its connections
                await _stop_tasks([recovery], WORKER_TEARDOWN_S)
    except asyncio.CancelledError:
        log.info("worker stopped")
        raise
    finally:
        await _stop_tasks(collectors, WORKER_TEARDOWN_S)
        set_runtime(None)
