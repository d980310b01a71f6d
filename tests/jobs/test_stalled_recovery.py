"""A dead worker's job: found by procrastinate's heartbeat rule, handed on, its run failed.

The queue state is procrastinate's own (jobs deferred and fetched through its JobManager); only
the dead worker's silence is simulated, by ageing its heartbeat. The real SIGKILL is in
test_workers.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import procrastinate
import pytest
from sqlalchemy import text

from jobs.app import QUEUE, build_app, ingest_lock, recover_stalled_jobs
from jobs.runtime import Runtime
from liqmap.database import create_engine
from models import jobs_store

from .conftest import make_settings

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture
async def queue(
    fresh_database_url: str, shared_data: Path
) -> AsyncIterator[tuple[Runtime, procrastinate.App]]:
    settings = make_settings(replay_dir=shared_data, worker_heartbeat_s=1, worker_stalled_after_s=3)
    rt = Runtime(settings=settings, engine=create_engine(fresh_database_url))
    app = build_app(settings, fresh_database_url)
    async with app.open_async():
        yield rt, app
    await rt.engine.dispose()


async def _defer(app: procrastinate.App, dataset: str = "candles") -> int:
    lock = ingest_lock("binanceusdm", SYMBOL, dataset)
    return await app.configure_task("liqmap.ingest", lock=lock, queueing_lock=lock).defer_async(
        exchange="binanceusdm", symbol=SYMBOL, dataset=dataset
    )


async def _take(rt: Runtime, app: procrastinate.App) -> tuple[int, int, int]:
    """A worker registers, fetches the job and starts its run: (worker, job, run) ids."""
    worker = await app.job_manager.register_worker()
    job = await app.job_manager.fetch_job(queues=[QUEUE], worker_id=worker)
    assert job is not None and job.id is not None
    run = await jobs_store.start_job_run(
        rt.engine,
        "ingest",
        "binanceusdm",
        SYMBOL,
        "candles",
        None,
        worker=f"host:{worker}",
        procrastinate_job_id=job.id,
    )
    return worker, job.id, run


async def _silence(rt: Runtime, worker: int) -> None:
    async with rt.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 minute' "
                "WHERE id = :w"
            ),
            {"w": worker},
        )


async def _job(rt: Runtime, job: int) -> tuple[str, int, int | None]:
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, attempts, worker_id FROM procrastinate_jobs WHERE id = :j"),
                {"j": job},
            )
        ).one()
    return row[0], row[1], row[2]


async def _run(rt: Runtime, run: int) -> tuple[str, str | None, bool]:
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, error, finished_at IS NOT NULL FROM job_runs WHERE id = :r"),
                {"r": run},
            )
        ).one()
    return row[0], row[1], row[2]


async def test_a_silent_workers_job_is_retried_and_its_run_failed(
    queue: tuple[Runtime, procrastinate.App],
) -> None:
    rt, app = queue
    await _defer(app)
    worker, job, run = await _take(rt, app)
    assert await recover_stalled_jobs(rt, app) == {}  # its heartbeat is fresh: alive
    assert (await _job(rt, job))[0] == "doing"

    await _silence(rt, worker)
    assert await recover_stalled_jobs(rt, app) == {job: "retried"}
    assert await _job(rt, job) == ("todo", 1, worker)  # back in the queue, one attempt spent
    status, error, finished = await _run(rt, run)
    assert (status, finished) == ("failed", True)
    assert error is not None and error.startswith(
        f"worker died: no heartbeat from procrastinate worker {worker} for 3 s"
    )
    assert error.endswith("the job was retried")
    assert await recover_stalled_jobs(rt, app) == {}  # handed on once

    # a live worker takes the retried job: the same job id, no longer blocked by its own lock
    alive = await app.job_manager.register_worker()
    again = await app.job_manager.fetch_job(queues=[QUEUE], worker_id=alive)
    assert again is not None and again.id == job


async def test_a_queued_run_of_the_same_task_supersedes_the_stalled_job(
    queue: tuple[Runtime, procrastinate.App],
) -> None:
    rt, app = queue
    await _defer(app)
    worker, job, run = await _take(rt, app)
    newer = await _defer(app)  # the next period's run waits behind the stalled job's lock
    await _silence(rt, worker)
    # retrying would put two jobs under one queueing lock: the waiting run does the work instead
    assert await recover_stalled_jobs(rt, app) == {job: "superseded"}
    assert (await _job(rt, job))[0] == "failed"
    assert (await _job(rt, newer))[0] == "todo"
    status, error, _ = await _run(rt, run)
    assert status == "failed" and error is not None
    assert "worker died" in error and error.endswith("a queued run of the same task takes over")
    alive = await app.job_manager.register_worker()
    taken = await app.job_manager.fetch_job(queues=[QUEUE], worker_id=alive)
    assert taken is not None and taken.id == newer


async def test_a_pruned_workers_job_is_recovered_and_other_jobs_are_left_alone(
    queue: tuple[Runtime, procrastinate.App],
) -> None:
    rt, app = queue
    await _defer(app, "candles")
    await _defer(app, "funding")
    dead, job, _ = await _take(rt, app)
    alive = await app.job_manager.register_worker()
    busy = await app.job_manager.fetch_job(queues=[QUEUE], worker_id=alive)
    assert busy is not None and busy.id is not None
    await _silence(rt, dead)
    # a worker starting up prunes silent workers (their jobs keep worker_id NULL)
    assert await app.job_manager.prune_stalled_workers(3) == [dead]
    assert await recover_stalled_jobs(rt, app) == {job: "retried"}
    assert (await _job(rt, busy.id))[0] == "doing"  # the live worker's job is untouched
