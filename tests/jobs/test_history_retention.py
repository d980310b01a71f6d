"""The hourly prune of bookkeeping: old job runs and finished queue jobs go, what the status
queries read stays.

Runs are written through ``models.jobs_store`` and queue jobs through procrastinate's own
JobManager; only their age is set by hand. The expected survivors are worked out by hand per
case below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import procrastinate
import pytest
from sqlalchemy import text

from jobs.app import QUEUE, build_app, set_runtime
from jobs.runtime import Runtime
from liqmap.database import create_engine
from models import jobs_store

from .conftest import make_settings

SYMBOL = "BTC/USDT:USDT"
NOW = datetime.now(UTC)


@pytest.fixture
async def queue(
    fresh_database_url: str, shared_data: Path
) -> AsyncIterator[tuple[Runtime, procrastinate.App]]:
    settings = make_settings(replay_dir=shared_data, history_retention_days=30)
    rt = Runtime(settings=settings, engine=create_engine(fresh_database_url))
    async with rt.engine.begin() as conn:  # a market, so the status query reports its runs
        await conn.execute(text("INSERT INTO exchanges (id, name) VALUES ('binanceusdm', 'B')"))
        await conn.execute(
            text(
                "INSERT INTO markets (exchange_id, symbol, exchange_symbol, base, quote, settle, "
                "linear, contract_size) VALUES ('binanceusdm', :s, 'BTCUSDT', 'BTC', 'USDT', "
                "'USDT', true, 1)"
            ),
            {"s": SYMBOL},
        )
    app = build_app(settings, fresh_database_url)
    async with app.open_async():
        yield rt, app
    await rt.engine.dispose()


async def _run(
    rt: Runtime,
    job: str,
    dataset: str | None,
    status: str,
    days_ago: float,
    error: str | None = None,
    took_days: float = 0.0,
) -> int:
    exchange = None if job == "materialize" else "binanceusdm"
    run = await jobs_store.start_job_run(rt.engine, job, exchange, SYMBOL, dataset, None)
    if status != "running":
        await jobs_store.finish_job_run(rt.engine, run, status, 1, None, error)
    started = NOW - timedelta(days=days_ago)
    async with rt.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE job_runs SET started_at = CAST(:t AS timestamptz), "
                "finished_at = CASE WHEN finished_at IS NULL THEN NULL "
                "ELSE CAST(:t AS timestamptz) + interval '1 s' + make_interval(secs => :took) "
                "END WHERE id = :id"
            ),
            {"t": started, "id": run, "took": took_days * 86_400},
        )
    return run


async def _job(
    rt: Runtime, app: procrastinate.App, dataset: str, final: str | None, days_ago: float
) -> int:
    """A queue job deferred and, unless ``final`` is None, fetched and finished by a worker;
    then all its events are dated ``days_ago``."""
    lock = f"retention-test:{dataset}"
    job_id = await app.configure_task("liqmap.ingest", lock=lock, queueing_lock=lock).defer_async(
        exchange="binanceusdm", symbol=SYMBOL, dataset=dataset
    )
    if final is not None:
        worker = await app.job_manager.register_worker()
        job = await app.job_manager.fetch_job(queues=[QUEUE], worker_id=worker)
        assert job is not None and job.id == job_id
        await app.job_manager.finish_job(job, procrastinate.jobs.Status(final), delete_job=False)
    async with rt.engine.begin() as conn:
        await conn.execute(
            text("UPDATE procrastinate_events SET at = :t WHERE job_id = :id"),
            {"t": NOW - timedelta(days=days_ago), "id": job_id},
        )
    return job_id


async def _ids(rt: Runtime, sql: str) -> set[int]:
    async with rt.engine.connect() as conn:
        return {row[0] for row in (await conn.execute(text(sql))).all()}


async def _status(rt: Runtime) -> list[tuple[object, ...]]:
    """What the status query (``liqmap status``, the API's market coverage) reads of the runs."""
    async with rt.engine.connect() as conn:
        rows = await jobs_store.coverage(conn, rt.settings.timeframe)
    return [
        (r.last_success, r.last_job, r.last_status, r.last_error, r.last_error_at) for r in rows
    ]


async def test_prune_deletes_old_history_and_keeps_what_status_reads(
    queue: tuple[Runtime, procrastinate.App],
) -> None:
    rt, app = queue
    # candles: old success, old failure, old success (the latest success), an old run still
    # running (the latest run; never touched) -> only the first goes
    c_old = await _run(rt, "ingest", "candles", "succeeded", 40)
    c_err = await _run(rt, "ingest", "candles", "failed", 39, error="HTTP 503")
    c_ok = await _run(rt, "ingest", "candles", "succeeded", 38)
    c_running = await _run(rt, "ingest", "candles", "running", 37)
    # funding: an old success and a recent one -> the old one goes
    f_old = await _run(rt, "ingest", "funding", "succeeded", 40)
    f_new = await _run(rt, "ingest", "funding", "succeeded", 1)
    # open interest: two old rejections (the later is the latest error), a recent success
    o_old = await _run(rt, "ingest", "open_interest", "rejected", 40, error="bad row")
    o_err = await _run(rt, "ingest", "open_interest", "rejected", 39, error="bad row again")
    o_new = await _run(rt, "ingest", "open_interest", "succeeded", 2)
    # tiers: the latest error by start is not the latest by finish (a run that took two days):
    # the status reads the message of one and the time of the other -> both stay, beside the
    # latest run (a success)
    t_long = await _run(rt, "ingest", "tiers", "failed", 40, error="slow failure", took_days=2)
    t_late = await _run(rt, "ingest", "tiers", "failed", 39, error="quick failure")
    t_ok = await _run(rt, "ingest", "tiers", "succeeded", 37)
    # materialize (no exchange, no dataset: NULLs group together) -> the older one goes
    m_old = await _run(rt, "materialize", None, "succeeded", 41)
    m_new = await _run(rt, "materialize", None, "succeeded", 40)

    j_old = await _job(rt, app, "candles", "succeeded", 40)
    j_failed = await _job(rt, app, "funding", "failed", 35)
    j_recent = await _job(rt, app, "open_interest", "succeeded", 1)
    j_defer = await _job(rt, app, "liquidations", "succeeded", 40)
    j_todo = await _job(rt, app, "tiers", None, 40)  # waiting, however old: kept
    async with rt.engine.begin() as conn:  # the last defer of a periodic task since removed
        await conn.execute(
            text(
                "INSERT INTO procrastinate_periodic_defers (task_name, periodic_id, "
                "defer_timestamp, job_id) VALUES ('liqmap.ingest', 'gone|x|y', 1, :id)"
            ),
            {"id": j_defer},
        )
    status_before = await _status(rt)
    assert any(row[3] == "HTTP 503" for row in status_before)  # the query reads these runs

    async with rt.engine.begin() as conn:
        pruned = await jobs_store.prune_job_history(conn, NOW - timedelta(days=30), QUEUE)

    assert (pruned.job_runs, pruned.queue_jobs) == (4, 2)
    assert await _ids(rt, "SELECT id FROM job_runs") == {
        c_err,
        c_ok,
        c_running,
        f_new,
        o_err,
        o_new,
        t_long,
        t_late,
        t_ok,
        m_new,
    }
    assert {c_old, f_old, o_old, m_old}.isdisjoint(await _ids(rt, "SELECT id FROM job_runs"))
    assert await _ids(rt, "SELECT id FROM procrastinate_jobs") == {j_recent, j_todo, j_defer}
    events = await _ids(rt, "SELECT DISTINCT job_id FROM procrastinate_events")
    assert events == {j_recent, j_todo, j_defer}  # the deleted jobs' events went with them
    assert j_old not in events and j_failed not in events
    assert await _status(rt) == status_before  # what status reports is unchanged

    async with rt.engine.begin() as conn:  # nothing more to do: idempotent
        again = await jobs_store.prune_job_history(conn, NOW - timedelta(days=30), QUEUE)
    assert (again.job_runs, again.queue_jobs) == (0, 0)


async def test_prune_runs_hourly_as_a_periodic_task_through_a_worker(
    queue: tuple[Runtime, procrastinate.App],
) -> None:
    rt, app = queue
    periodic = {
        (p.task.name, p.periodic_id, p.cron) for p in app.periodic_registry.periodic_tasks.values()
    }
    assert ("liqmap.prune_history", "prune_history", "0 */1 * * *") in periodic
    old = await _run(rt, "ingest", "candles", "succeeded", 40)
    new = await _run(rt, "ingest", "candles", "succeeded", 31)
    await app.configure_task("liqmap.prune_history").defer_async()
    set_runtime(rt)
    try:
        await app.run_worker_async(queues=[QUEUE], wait=False, install_signal_handlers=False)
    finally:
        set_runtime(None)
    # (the worker also ran the ingest periods due at its start: their runs are new ones)
    remaining = await _ids(rt, "SELECT id FROM job_runs")
    assert new in remaining and old not in remaining
    statuses = await _ids(
        rt,
        "SELECT 1 FROM procrastinate_jobs WHERE task_name = 'liqmap.prune_history' "
        "AND status = 'succeeded'",
    )
    assert statuses == {1}
