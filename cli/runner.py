"""Process orchestration for `liqmap up` and `liqmap serve`: one process group, clean shutdown."""

from __future__ import annotations

import asyncio
import gc
import os
import time

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
    worker = asyncio.create_task(supervise_worker(settings, target), name="liqmap-worker")
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
        if time.monotonic() - started > 2 * WORKER_RESTART_MAX_S:
            delay = WORKER_RESTART_MIN_S  # it ran fine for a while: start over from short waits
        log.warning("job worker stopped; restarting when the database answers", reason=reason)
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, WORKER_RESTART_MAX_S)
            try:
                await check_connection(target.url, timeout=5)
                break
            except Exception as exc:  # DatabaseConfigError: still down
                log.info("database still unavailable", error=str(exc), retry_in=delay)
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
