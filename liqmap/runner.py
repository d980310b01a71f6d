"""Process orchestration for `liqmap up` and `liqmap serve`: one process group, clean shutdown."""

from __future__ import annotations

import asyncio

import uvicorn

from liqmap import migrations
from liqmap.database import DatabaseTarget, create_engine
from liqmap.logs import get_logger
from liqmap.settings import Settings

log = get_logger(__name__)


async def migrate(target: DatabaseTarget) -> None:
    await asyncio.to_thread(migrations.upgrade, target.url)
    log.info("database migrated", revision=migrations.head_revision(), embedded=target.embedded)


async def run_serve(settings: Settings, target: DatabaseTarget) -> None:
    from api.app import create_app

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
        log_config=None,
        proxy_headers=True,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    log.info("serving", url=f"http://{settings.api_host}:{settings.api_port}/graphql")
    try:
        await server.serve()
    finally:
        await engine.dispose()


async def run_up(
    settings: Settings, target: DatabaseTarget, *, ingest: bool = True, once: bool = False
) -> None:
    """Database ready → migrations → ingest → materialize → serve (with the worker in process)."""
    await migrate(target)
    if not ingest:
        await run_serve(settings, target)
        return
    from jobs.pipeline import run_pipeline_once, run_worker

    await run_pipeline_once(settings, target)
    if once:
        return
    worker = asyncio.create_task(run_worker(settings, target), name="liqmap-worker")
    try:
        await run_serve(settings, target)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
