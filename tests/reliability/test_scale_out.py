"""Scale-out: three ``liqmap worker`` processes and two ``liqmap serve`` processes on one database.

Every periodic task (ingest per dataset, materialize) is queued exactly once per period however
many workers defer it, each queued job runs once, the work spreads over the workers, and when
one worker is killed with SIGKILL in the middle of a run, a live worker picks its job up. Both
API processes answer every request meanwhile, with the same data.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import create_database, drop_database
from tests.reliability.conftest import csv_bar_times, query_all, query_one
from tests.reliability.harness import (
    ApiProcess,
    LiqmapProcess,
    liqmap_env,
    running,
    wait_until,
)

pytestmark = pytest.mark.slow

# the periodic tasks the test counts periods of: the hourly history pruning and the per-minute
# tiers ingest are in the queue too, but run too seldom for that
ON_THE_INGEST_INTERVAL = "coalesce(args->>'dataset', '') <> 'tiers'"
LEVELS = {"query": '{ liquidationLevels(symbol: "BTC/USDT:USDT") { at price totalLongUsd } }'}


@pytest.fixture
def scale_url(server_url: str) -> Iterator[str]:
    url = create_database(server_url, "liqmap_test_rel_scale")
    yield url
    drop_database(server_url, url)


class Traffic(threading.Thread):
    """Clients alternating between the API processes until stopped; records every outcome."""

    def __init__(self, apis: list[ApiProcess]) -> None:
        super().__init__(daemon=True)
        self.apis = apis
        self.stop = threading.Event()
        self.outcomes: Counter[str] = Counter()
        self.per_api: Counter[int] = Counter()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                api = self.apis[n % len(self.apis)]
                n += 1
                try:
                    response = client.post(f"{api.url}/graphql", json=LEVELS)
                    body = response.json()
                    ok = response.status_code == 200 and not body.get("errors")
                    self.outcomes["ok" if ok else f"{response.status_code} {body}"[:300]] += 1
                except httpx.HTTPError as exc:
                    self.outcomes[type(exc).__name__] += 1
                self.per_api[api.port] += 1
                self.stop.wait(0.02)


def queue_state(url: str, processes: list[LiqmapProcess]) -> str:
    """What a timed-out wait saw: queue jobs and runs by status, and each process's log tail."""
    jobs = query_all(
        url,
        "SELECT task_name, args - 'timestamp', status, count(*), max(id) "
        "FROM procrastinate_jobs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    runs = query_all(
        url,
        "SELECT job, dataset, status, count(*), max(error) FROM job_runs "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    workers = query_all(url, "SELECT id, last_heartbeat FROM procrastinate_workers")
    lines = [
        "queue jobs:",
        *map(str, jobs),
        "job runs:",
        *map(str, runs),
        "workers:",
        *map(str, workers),
    ]
    for process in processes:
        tail = process.output().splitlines()[-25:]
        lines += [
            f"--- {' '.join(process.args[:1])} pid {process.pid} "
            f"({'alive' if process.alive() else 'exited'}):",
            *tail,
        ]
    return "\n".join(lines)


def test_workers_share_periodic_tasks_and_take_over_a_dead_ones_job(
    scale_url: str, shared_data: Path, tmp_path: Path
) -> None:
    url = scale_url
    env = liqmap_env(
        url,
        exchanges="binanceusdm",
        symbols='{"binanceusdm": ["BTC/USDT:USDT"]}',
        ingest_interval_s=2,
        materialize_interval_s=4,
        # tiers every minute, not daily: they run in every test, not only in those that start
        # within the periodic deferrer's 10-minute catch-up window after midnight UTC
        tiers_interval_s=60,
        backfill_days=2,
        replay_latency_ms=150,  # every exchange request takes a while: runs can be caught live
        worker_heartbeat_s=0.5,
        worker_stalled_after_s=2,
        retry_initial_s=0.05,
    )
    command = ["worker", "--replay", str(shared_data), "--concurrency", "1"]
    workers = [LiqmapProcess(command, env, tmp_path / f"worker-{i}.log") for i in range(3)]
    apis: list[ApiProcess] = []
    with running(*workers):
        wait_until(
            lambda: query_one(url, "SELECT version_num FROM alembic_version"), 60, what="schema"
        )
        apis = [ApiProcess(env, tmp_path / f"api-{i}.log") for i in range(2)]
        with running(*apis):
            for api in apis:
                api.wait_ready()
            traffic = Traffic(apis)
            traffic.start()

            def periods(task: str, at_least: int) -> bool:
                rows = query_all(
                    url,
                    "SELECT args - 'timestamp', count(DISTINCT args->>'timestamp') "
                    "FROM procrastinate_jobs WHERE task_name = %s AND status = 'succeeded' "
                    f"AND {ON_THE_INGEST_INTERVAL} GROUP BY 1",
                    task,
                )
                expected = 3 if task == "liqmap.ingest" else 1
                return len(rows) == expected and min(n for _, n in rows) >= at_least

            def explain() -> str:
                return queue_state(url, [*workers, *apis])

            wait_until(
                lambda: periods("liqmap.ingest", 3),
                90,
                what="three ingest periods",
                explain=explain,
            )
            wait_until(
                lambda: periods("liqmap.materialize", 1),
                60,
                what="a materialization",
                explain=explain,
            )

            # kill the worker that is in the middle of an ingest run
            pids = {str(w.pid): w for w in workers}

            def live_run() -> tuple[object, ...] | None:
                # a run younger than 50 ms: its exchange requests alone take 150 ms, so it is
                # still running when the signal lands
                rows = query_all(
                    url,
                    "SELECT id, procrastinate_job_id, worker FROM job_runs "
                    "WHERE status = 'running' AND job = 'ingest' "
                    "AND started_at > clock_timestamp() - interval '50 milliseconds' "
                    "ORDER BY id DESC",
                )
                return next((r for r in rows if str(r[2]).rsplit(":", 1)[-1] in pids), None)

            run_id, job_id, victim_name = wait_until(
                live_run, 30, interval=0.01, what="a run", explain=explain
            )
            victim = pids[str(victim_name).rsplit(":", 1)[-1]]
            os.kill(victim.pid, signal.SIGKILL)
            victim.proc.wait(timeout=10)
            survivors = [w for w in workers if w is not victim]

            # a live worker hands the dead one's job on: retried, or superseded by the next run
            failed = wait_until(
                lambda: query_one(
                    url, "SELECT error FROM job_runs WHERE id = %s AND status = 'failed'", run_id
                ),
                30,
                what="the dead worker's run to be failed",
                explain=explain,
            )
            assert "worker died" in str(failed), failed

            def taken_over() -> bool:
                status = query_one(
                    url, "SELECT status FROM procrastinate_jobs WHERE id = %s", job_id
                )
                if status == "succeeded":  # retried: someone else ran it to the end
                    runs = query_all(
                        url,
                        "SELECT worker FROM job_runs WHERE procrastinate_job_id = %s "
                        "AND status = 'succeeded'",
                        job_id,
                    )
                    return len(runs) == 1 and runs[0][0] != victim_name
                if status == "failed":  # superseded: the queued next period did the work
                    lock = query_one(
                        url, "SELECT lock FROM procrastinate_jobs WHERE id = %s", job_id
                    )
                    return bool(
                        query_one(
                            url,
                            "SELECT count(*) FROM procrastinate_jobs WHERE lock = %s "
                            "AND id > %s AND status = 'succeeded'",
                            lock,
                            job_id,
                        )
                    )
                return False

            wait_until(taken_over, 30, what="another worker to take the job over", explain=explain)
            resumed_after = query_one(url, "SELECT max(id) FROM procrastinate_jobs")
            wait_until(
                lambda: (
                    query_one(
                        url,
                        "SELECT count(DISTINCT task_name || (args - 'timestamp')::text) "
                        "FROM procrastinate_jobs WHERE id > %s AND status = 'succeeded' "
                        "AND task_name <> 'liqmap.prune_history'"  # hourly: in the run or not
                        f" AND {ON_THE_INGEST_INTERVAL}",
                        resumed_after,
                    )
                    == 4
                ),
                60,
                what="every task to run again after the kill",
                explain=explain,
            )
            assert all(w.alive() for w in survivors)
            traffic.stop.set()
            traffic.join(timeout=15)
            answers = [httpx.post(f"{api.url}/graphql", json=LEVELS).json() for api in apis]
            for worker in survivors:
                worker.stop()

    # both API processes answered everything, and agree
    assert set(traffic.outcomes) == {"ok"}, traffic.outcomes
    assert min(traffic.per_api.values()) > 20 and len(traffic.per_api) == 2, traffic.per_api
    assert answers[0] == answers[1] and answers[0]["data"]["liquidationLevels"]["price"] > 0

    # exactly one queued job per task and period, however many workers deferred it
    per_period = query_all(
        url,
        "SELECT task_name, args - 'timestamp', args->>'timestamp', count(*) "
        "FROM procrastinate_jobs GROUP BY 1, 2, 3",
    )
    assert per_period and all(n == 1 for *_, n in per_period), per_period
    # (the hourly liqmap.prune_history is there when the run crossed the top of an hour)
    assert {t for t, *_ in per_period} - {"liqmap.prune_history"} == {
        "liqmap.ingest",
        "liqmap.materialize",
    }
    # every finished ingest job has exactly one successful run; only the killed one failed
    runs = query_all(
        url,
        "SELECT j.id, j.status, count(r.id) FILTER (WHERE r.status = 'succeeded'), "
        "count(r.id) FILTER (WHERE r.status = 'failed') FROM procrastinate_jobs j "
        "LEFT JOIN job_runs r ON r.procrastinate_job_id = j.id "
        "WHERE j.task_name = 'liqmap.ingest' AND j.status IN ('succeeded', 'failed') "
        "GROUP BY 1, 2",
    )
    for jid, status, ok, bad in runs:
        if jid == job_id:
            assert bad == 1 and ok == (1 if status == "succeeded" else 0), (jid, status, ok, bad)
        else:
            assert (status, ok, bad) == ("succeeded", 1, 0), (jid, status, ok, bad)
    assert query_all(url, "SELECT id FROM job_runs WHERE status = 'running'") == []
    # the work spread: every worker ran ingest runs (the victim before it died)
    by_worker = Counter(
        str(w).rsplit(":", 1)[-1]
        for (w,) in query_all(url, "SELECT worker FROM job_runs WHERE status = 'succeeded'")
    )
    assert set(by_worker) == {str(w.pid) for w in workers}, by_worker
    # and the data is exactly the recording's
    stored = [row[0] for row in query_all(url, "SELECT ts FROM candles ORDER BY ts")]
    expected = [t for t in csv_bar_times(shared_data) if stored[0] <= t <= stored[-1]]
    assert stored == expected
