"""Process orchestration for `liqmap up` and `liqmap serve`: one process group, clean shutdown."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any

import uvicorn

from liqmap import migrations
from liqmap.database import DatabaseTarget, check_connection, create_engine, is_connection_error
from liqmap.logs import get_logger
from liqmap.settings import Settings

log = get_logger(__name__)


async def migrate(target: DatabaseTarget) -> None:
    await asyncio.to_thread(migrations.upgrade, target.url)
    log.info("database migrated", revision=migrations.head_revision(), embedded=target.embedded)


async def run_serve(settings: Settings, target: DatabaseTarget) -> None:
    from api.app import create_app
    from api.connection_deadlines import deadline_protocol

    engine = create_engine(
        target.url,
        pool_size=settings.db_pool_size,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    app = create_app(settings, engine, database_url=target.url)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        http=deadline_protocol(
            settings.api_request_head_timeout_seconds,
            settings.api_response_send_timeout_seconds,
            on_send_timeout=app.state.metrics.http.labels("send_timeout").inc,
        ),
        log_config=None,
        # X-Forwarded-* only from the configured proxies: from anyone else (loopback included)
        # they are the client's own claim, and would pick its rate-limit bucket
        proxy_headers=bool(settings.api_trusted_proxies),
        forwarded_allow_ips=list(settings.api_trusted_proxies),
        lifespan="on",
        ws_max_size=settings.api_max_body_bytes,  # websocket messages: the same bound as bodies
    )
    server = uvicorn.Server(config)
    frozen = freeze_startup_heap()
    log.info(
        "serving",
        url=f"http://{settings.api_host}:{settings.api_port}/graphql",
        frozen_objects=frozen,
    )
    try:
        await server.serve()
    finally:
        await engine.dispose()


def freeze_startup_heap() -> int:
    """Take every object alive now (modules, schema, app) out of the cyclic collector's scans.

    A full (oldest-generation) collection walks every tracked object (the API's imports alone
    are about 105,000) and stops every request in flight on the process's one event loop, so
    these pauses set the API's worst latencies (``liqmap_gc_pause_seconds`` on ``/metrics``;
    measured in docs/performance.md, Garbage-collector pauses). What is alive when serving
    starts lives as long as the process, so the collector gains nothing by walking it again:
    frozen, those collections only walk what was allocated since. Garbage is collected first so
    that none of it is kept for good. Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def run_up(
    settings: Settings, target: DatabaseTarget, *, ingest: bool = True, once: bool = False
) -> None:
    """Database ready → migrations → ingest → materialize → serve (with the worker in process)."""
    await migrate(target)
    if not ingest:
        await run_serve(settings, target)
        return
    from jobs.pipeline import run_pipeline_once

    await run_pipeline_once(settings, target)
    if once:
        return
    worker = asyncio.create_task(supervise_worker_process(settings, target), name="liqmap-worker")
    try:
        await run_serve(settings, target)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


def lower_cpu_priority(nice: int) -> int:
    """Run this process at niceness ``nice`` at least (a process may always lower its own
    priority; it is never raised here). Returns the niceness it runs at."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        current = nice
    return current


WORKER_RESTART_MIN_S = 1.0
WORKER_RESTART_MAX_S = 30.0
DATABASE_POLL_MIN_S = 0.5
DATABASE_POLL_MAX_S = 5.0


async def supervise_worker(
    settings: Settings, target: DatabaseTarget, *, concurrency: int = 2
) -> None:
    """Run the job worker until cancelled, through database outages.

    procrastinate stops a worker whose database connection fails (its listener is a side task);
    this loop waits until the database answers again and starts a fresh worker in the same
    process, with exponential backoff. Any other error still ends the command.
    """
    from jobs.pipeline import run_worker

    delay = WORKER_RESTART_MIN_S
    while True:
        started = time.monotonic()
        try:
            await run_worker(settings, target, concurrency=concurrency)
            reason = "the worker stopped on its own (its database connection failed)"
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            reason = f"database unavailable: {type(exc).__name__}"
        if time.monotonic() - started > WORKER_RESTART_MAX_S:
            delay = WORKER_RESTART_MIN_S  # it ran fine for a while: no crash loop, short waits
        log.warning("job worker stopped; restarting when the database answers", reason=reason)
        await wait_for_database(target, delay)
        delay = min(delay * 2, WORKER_RESTART_MAX_S)
        await mark_orphaned_runs(target)


WORKER_EXIT_STOPPED = 75  # EX_TEMPFAIL: the worker stopped (its database went away); restart it
WORKER_STOP_TIMEOUT_S = 30.0  # a child asked to stop that has not exited by then is killed
_CHILD_POLL_S = 0.5


def worker_child_settings(settings: Settings) -> Settings:
    """The settings of ``liqmap up``'s worker process: this process's, with the replay clock
    pinned to this process's start. A clock started earlier (``replay_start``) otherwise runs
    from its own process's start, so every restarted worker would begin again at
    ``replay_start``; pinned, the clock continues through worker restarts."""
    if settings.replay_start is None or settings.replay_epoch is not None:
        return settings
    from datetime import UTC, datetime

    from jobs.replay import process_started_ms

    epoch = datetime.fromtimestamp(process_started_ms() / 1000, tz=UTC)
    return settings.model_copy(update={"replay_epoch": epoch})


def worker_process_main(
    settings: Settings, target: DatabaseTarget, concurrency: int, parent_pid: int, log_level: str
) -> None:
    """The entry point of ``liqmap up``'s worker process (spawned, so nothing is inherited but
    these arguments).

    Runs one job worker and exits when it stops: ``WORKER_EXIT_STOPPED`` when it stopped by
    itself (its database connection failed), 0 when asked to stop (TERM, INT) or when
    ``liqmap up`` is gone, 1 on any other error. It exits with ``os._exit`` once the worker has
    ended: whatever a driver left running in the background cannot hold the process, and the
    supervisor starts a fresh one.
    """
    from liqmap.logs import configure_logging

    configure_logging(log_level, settings.log_json)
    log.info("job worker process", pid=os.getpid(), nice=lower_cpu_priority(settings.worker_nice))

    async def main() -> None:
        # exit from inside the loop: asyncio.run's teardown would wait for every task left
        _exit_now(await _worker_process(settings, target, concurrency, parent_pid))

    try:
        asyncio.run(main())
    except BaseException as exc:
        log.error("job worker process failed", error=repr(exc))
    _exit_now(1)


def _exit_now(code: int) -> None:
    import logging
    import sys

    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)


async def _worker_process(
    settings: Settings, target: DatabaseTarget, concurrency: int, parent_pid: int
) -> int:
    import signal

    from jobs.pipeline import run_worker

    loop = asyncio.get_running_loop()
    worker = asyncio.create_task(run_worker(settings, target, concurrency=concurrency))
    asked_to_stop = False

    def stop(why: str) -> None:
        nonlocal asked_to_stop
        if not asked_to_stop:
            asked_to_stop = True
            log.info("job worker process stopping", reason=why)
            worker.cancel()
            # a worker that does not end in time is abandoned (the exit below ends it)
            loop.call_later(WORKER_STOP_TIMEOUT_S - 5, _abandon, worker)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signal.Signals(signum).name)

    async def watch_parent() -> None:
        while os.getppid() == parent_pid:
            await asyncio.sleep(1.0)
        stop("liqmap up is gone")

    watcher = asyncio.create_task(watch_parent())
    try:
        await worker
    except asyncio.CancelledError:
        return 0
    except Exception as exc:
        if not is_connection_error(exc):
            log.error("job worker failed", error=repr(exc))
            return 1
        log.warning("job worker stopped: database unavailable", error=type(exc).__name__)
        return WORKER_EXIT_STOPPED
    finally:
        watcher.cancel()
    if asked_to_stop:
        return 0
    log.warning("job worker stopped by itself (its database connection failed)")
    return WORKER_EXIT_STOPPED


def _abandon(task: asyncio.Task[None]) -> None:
    if not task.done():
        log.error("job worker did not stop in time; exiting without it")
        _exit_now(0)


async def supervise_worker_process(
    settings: Settings, target: DatabaseTarget, *, concurrency: int = 2
) -> None:
    """``liqmap up``'s job worker: a child process, restarted whenever it exits, until cancelled.

    A worker whose database went away stops (procrastinate ends a worker whose listener lost its
    connection); in a process of its own it stops completely, with nothing left running that
    could hold a restart, and this loop waits with backoff until the database answers again,
    marks the runs the outage orphaned, and starts a fresh one. The worker also runs at the
    lower CPU priority of ``LIQMAP_WORKER_NICE``, as ``liqmap worker`` does, so the API it
    shares the host with answers first.
    """
    import logging
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no copy of the event loop or the pools
    child_settings = worker_child_settings(settings)
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    delay = WORKER_RESTART_MIN_S
    while True:
        process = context.Process(
            target=worker_process_main,
            args=(child_settings, target, concurrency, os.getpid(), level),
            name="liqmap-worker",
            daemon=False,
        )
        process.start()
        started = time.monotonic()
        log.info("job worker process started", pid=process.pid)
        try:
            while process.exitcode is None:
                await asyncio.sleep(_CHILD_POLL_S)
        except asyncio.CancelledError:
            stop_child(process)
            raise
        ran_s = time.monotonic() - started
        if ran_s > WORKER_RESTART_MAX_S:
            delay = WORKER_RESTART_MIN_S  # it ran fine for a while: no crash loop, short waits
        log.warning(
            "job worker process exited; restarting when the database answers",
            pid=process.pid,
            exit_code=process.exitcode,
            ran_s=round(ran_s, 1),
        )
        await wait_for_database(target, delay)
        delay = min(delay * 2, WORKER_RESTART_MAX_S)
        await mark_orphaned_runs(target)


def stop_child(process: Any) -> None:
    """TERM, then KILL if it has not exited within ``WORKER_STOP_TIMEOUT_S``."""
    if process.exitcode is None:
        process.terminate()
        process.join(WORKER_STOP_TIMEOUT_S)
    if process.exitcode is None:
        log.error("job worker process did not stop; killing it", pid=process.pid)
        process.kill()
        process.join(5)


async def wait_for_database(target: DatabaseTarget, delay: float) -> None:
    """Wait ``delay`` seconds (the restart backoff: it doubles while a worker keeps stopping
    soon after its start), then until the database answers, asking every 0.5 s at first and
    every ``DATABASE_POLL_MAX_S`` at most: a worker starts within seconds of its return,
    however long the outage was."""
    await asyncio.sleep(delay)
    poll = DATABASE_POLL_MIN_S
    attempts = 0
    while True:
        try:
            await check_connection(target.url, timeout=5)
            return
        except Exception as exc:  # DatabaseConfigError: still down
            if attempts % 12 == 0:  # one line a minute or so during a long outage
                log.info("database still unavailable", error=str(exc), attempts=attempts + 1)
            attempts += 1
        await asyncio.sleep(poll)
        poll = min(poll * 2, DATABASE_POLL_MAX_S)


async def mark_orphaned_runs(target: DatabaseTarget) -> None:
    try:
        orphaned = await fail_orphaned_runs(target.url)
    except Exception as exc:  # the database went away again: the next round retries
        log.warning("could not check for orphaned job runs", error=repr(exc))
        orphaned = 0
    log.info("database reachable again; restarting the job worker", orphaned_runs=orphaned)


ORPHANED_RUN = (
    "the database went away during the run, before its outcome could be stored; "
    "the next run of the job resumes from the stored watermark"
)


async def fail_orphaned_runs(url: str) -> int:
    """Mark failed the job runs left ``running`` although their queue job has ended.

    A run is ``running`` only while its procrastinate job is ``doing``. When the database goes
    away mid-run, the run cannot record its outcome, but procrastinate (which retries storing
    the job's status) still ends the job; such runs would stay ``running`` forever. (Jobs that
    stay ``doing`` because their worker died are the stalled-job recovery's to hand on.)
    """
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from liqmap.database import to_async_url
    from models import jobs_store

    # one connection of its own, given up on quickly: the database has only just come back
    engine = create_async_engine(to_async_url(url), poolclass=NullPool, connect_args={"timeout": 5})
    try:
        async with engine.begin() as conn:
            count = await jobs_store.fail_orphaned_runs(conn, ORPHANED_RUN)
    finally:
        await engine.dispose()
    if count:
        log.warning("job runs orphaned by the outage marked failed", runs=count)
    return count
