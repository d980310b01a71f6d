"""The procrastinate app: one periodic task per (exchange, market, dataset) and per symbol.

Any number of ``liqmap worker`` processes, on any number of machines, share the queue. Each task
carries a ``lock`` (no two runs of the same job at once) and a ``queueing_lock`` (at most one
waiting), and procrastinate defers each periodic task once per period however many workers run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import procrastinate
from procrastinate import PsycopgConnector

from jobs.ingest import DATASETS, ingest_dataset
from jobs.runtime import Runtime
from liqmap.logs import get_logger
from liqmap.settings import Settings

log = get_logger(__name__)

QUEUE = "liqmap"

# The runtime of this worker process; set by run_worker before tasks run.
_runtime: Runtime | None = None


def set_runtime(rt: Runtime | None) -> None:
    global _runtime
    _runtime = rt


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("no job runtime in this process (start it with `liqmap worker`)")
    return _runtime


def cron_for(interval_s: int) -> str:
    """procrastinate schedules are cron lines; a 6th field gives seconds."""
    if interval_s % 86_400 == 0:
        return "0 0 * * *"
    if interval_s % 3600 == 0:
        return f"0 */{interval_s // 3600} * * *"
    if interval_s % 60 == 0:
        return f"*/{interval_s // 60} * * * *"
    return f"* * * * * */{interval_s}"


def ingest_lock(exchange: str, symbol: str, dataset: str) -> str:
    return f"ingest:{exchange}:{symbol}:{dataset}"


def build_app(settings: Settings, database_url: str) -> procrastinate.App:
    app = procrastinate.App(connector=PsycopgConnector(conninfo=database_url))

    @app.task(name="liqmap.ingest", queue=QUEUE, pass_context=False)
    async def ingest(
        exchange: str, symbol: str, dataset: str, timestamp: int | None = None
    ) -> dict[str, Any]:
        result = await ingest_dataset(runtime(), exchange, symbol, dataset)
        if result.status == "failed":
            # surfaced as a failed procrastinate job too, not only in job_runs
            raise RuntimeError(result.error)
        return {"status": result.status, "rows": result.rows_written}

    @app.task(name="liqmap.materialize", queue=QUEUE, pass_context=False)
    async def materialize(symbol: str, timestamp: int | None = None) -> dict[str, Any]:
        from jobs.materialize import materialize_symbol

        report = await materialize_symbol(runtime(), symbol)
        return {"snapshots": report.snapshots_written}

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


async def run_worker(rt: Runtime, database_url: str, *, concurrency: int = 2) -> None:
    """Run a worker until cancelled: periodic deferrals plus job execution."""
    from jobs.liquidations import run_collector_forever

    app = build_app(rt.settings, database_url)
    set_runtime(rt)
    collectors = [
        asyncio.create_task(run_collector_forever(rt, exchange), name=f"collector:{exchange}")
        for exchange in rt.settings.exchanges
    ]
    try:
        async with app.open_async():
            log.info("worker started", concurrency=concurrency)
            await app.run_worker_async(
                queues=[QUEUE], concurrency=concurrency, install_signal_handlers=False
            )
    except asyncio.CancelledError:
        log.info("worker stopped")
        raise
    finally:
        for task in collectors:
            task.cancel()
        await asyncio.gather(*collectors, return_exceptions=True)
        set_runtime(None)
