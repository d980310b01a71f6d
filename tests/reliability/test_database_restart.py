"""The database restarted under a running API and worker.

A private PostgreSQL (never the shared one) serves one ``liqmap worker --replay`` and one
``liqmap serve``. The server is stopped (``pg_ctl -m fast``: every session is cut) while the
worker is in the middle of a job, kept down for a while, and started again. While it is down the
API answers at once with HTTP 503 and ``SERVICE_UNAVAILABLE`` (no hang, no traceback, nothing
internal leaked); afterwards both processes — the same PIDs, never restarted — serve and work
again, and no job is lost: the interrupted job is handed on, every queued job reaches a final
state, no job run stays ``running``, and the stored bars are exactly the recording's.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.conftest import (
    csv_bar_times,
    fresh_database,
    query_all,
    query_one,
)
from tests.reliability.harness import (
    ApiProcess,
    LiqmapProcess,
    PrivatePostgres,
    liqmap_env,
    running,
    wait_until,
)

pytestmark = pytest.mark.slow

INTERVAL_S = 5
CANDLES = """query ($start: DateTime!, $end: DateTime!) {
  candles(symbol: "BTC/USDT:USDT", exchange: "binanceusdm", start: $start, end: $end) { ts close }
}"""
LEVELS = '{ liquidationLevels(symbol: "BTC/USDT:USDT") { at price totalLongUsd } }'


def post(api: ApiProcess, query: str, **variables: object) -> httpx.Response:
    return httpx.post(
        f"{api.url}/graphql", json={"query": query, "variables": variables}, timeout=15
    )


def test_database_restart_under_running_api_and_worker(
    private_pg: PrivatePostgres, shared_data: Path, tmp_path: Path
) -> None:
    fresh_database(private_pg.url, "restart")
    url = private_pg.database_url("restart")
    env = liqmap_env(
        url,
        ingest_interval_s=INTERVAL_S,
        materialize_interval_s=INTERVAL_S,
        worker_heartbeat_s=1,
        worker_stalled_after_s=3,
        api_cache_entries=0,  # every request reaches the database
        api_column_cache_entries=0,
    )
    worker = LiqmapProcess(["worker", "--replay", str(shared_data)], env, tmp_path / "worker.log")
    api: ApiProcess | None = None
    with running(worker):
        wait_until(
            lambda: query_one(url, "SELECT version_num FROM alembic_version"), 60, what="migrations"
        )
        api = ApiProcess(env, tmp_path / "api.log")
        with running(api):
            api.wait_ready()
            worker_pid, api_pid = worker.pid, api.pid

            # the bars arrive; stop the server while the first (full) materialization runs
            wait_until(
                lambda: query_one(url, "SELECT count(*) FROM candles") == 8014, 90, what="ingest"
            )
            window = {"start": "2026-06-01T00:00:00Z", "end": "2026-06-01T01:00:00Z"}
            before = post(api, CANDLES, **window)
            assert before.status_code == 200 and len(before.json()["data"]["candles"]) == 12
            wait_until(
                lambda: query_one(
                    url,
                    "SELECT count(*) FROM procrastinate_jobs "
                    "WHERE status = 'doing' AND task_name = 'liqmap.materialize'",
                ),
                60,
                interval=0.05,
                what="a materialize job in flight",
            )
            private_pg.stop("fast")
            stopped_at = time.time()

            # down: a clear, immediate answer on every route
            for _ in range(3):
                started = time.perf_counter()
                response = post(api, CANDLES, **window)
                elapsed = time.perf_counter() - started
                assert response.status_code == 503, response.text
                assert elapsed < 3.0, f"a request took {elapsed:.1f} s while the database was down"
                assert response.headers["retry-after"].isdigit()
                errors = response.json()["errors"]
                assert [e["extensions"]["code"] for e in errors] == ["SERVICE_UNAVAILABLE"]
                assert "127.0.0.1" not in response.text and "Traceback" not in response.text
            assert httpx.get(f"{api.url}/health/ready", timeout=10).status_code == 503
            assert httpx.get(f"{api.url}/health/live", timeout=10).status_code == 200
            time.sleep(4)  # long enough for the worker to lose its connections and stop
            assert worker.alive() and api.alive(), "a process died with the database"

            private_pg.start()
            restarted_at = time.time()

            # back: the same processes serve and work again
            after = wait_until(
                lambda: (r := post(api, CANDLES, **window)).status_code == 200 and r,
                30,
                what="the API to answer again",
            )
            assert after.json() == before.json()
            wait_until(
                lambda: httpx.get(f"{api.url}/health/ready").status_code == 200, 30, what="ready"
            )
            levels = wait_until(
                lambda: (
                    (r := post(api, LEVELS)).status_code == 200
                    and (r.json()["data"] or {}).get("liquidationLevels")
                    and r
                ),
                90,
                what="a liquidation map after the restart",
            )
            assert levels.json()["data"]["liquidationLevels"]["price"] > 0

            # the worker resumed: periods after the restart ran, for every periodic task
            def resumed() -> bool:
                rows = query_all(
                    url,
                    "SELECT DISTINCT task_name, args - 'timestamp' FROM procrastinate_jobs "
                    "WHERE status = 'succeeded' AND (args->>'timestamp')::bigint > %s",
                    restarted_at + INTERVAL_S,
                )
                return len(rows) >= 4  # candles, open interest, funding, materialize

            wait_until(resumed, 60, what="periodic jobs after the restart")

            # no job lost: everything queued before the restart reached a final state
            def settled() -> list[tuple[object, ...]]:
                return query_all(
                    url,
                    "SELECT id, task_name, status FROM procrastinate_jobs "
                    "WHERE status IN ('todo', 'doing') AND (args->>'timestamp')::bigint < %s",
                    restarted_at,
                )

            wait_until(lambda: not settled(), 60, what=f"queued jobs to settle: {settled()}")
            assert worker.pid == worker_pid and worker.alive()
            assert api.pid == api_pid and api.alive()

    stuck = query_all(
        url,
        "SELECT id, job, dataset, worker, procrastinate_job_id, started_at FROM job_runs "
        "WHERE status = 'running'",
    )
    assert stuck == [], f"job runs left running: {stuck}; queue: " + str(
        query_all(url, "SELECT id, task_name, args, status, attempts FROM procrastinate_jobs")
    )
    statuses = dict(query_all(url, "SELECT status, count(*) FROM procrastinate_jobs GROUP BY 1"))
    assert statuses.get("succeeded", 0) > 0 and set(statuses) <= {"succeeded", "failed"}
    # every failed job failed because of the outage, and a later run did its work
    failed = query_all(
        url,
        "SELECT args, (args->>'timestamp')::bigint FROM procrastinate_jobs WHERE status = 'failed'",
    )
    assert all(ts is None or ts <= restarted_at for _, ts in failed), failed
    assert stopped_at < restarted_at

    # the data is exactly the recording: no gap, no duplicate, nothing half-written
    stored = [row[0] for row in query_all(url, "SELECT ts FROM candles ORDER BY ts")]
    expected = [t for t in csv_bar_times(shared_data) if stored[0] <= t <= stored[-1]]
    assert stored == expected
    series = query_all(
        url,
        "SELECT s.scope, count(*) FROM heatmap_snapshots h "
        "JOIN heatmap_series s ON s.id = h.series_id GROUP BY 1",
    )
    assert series and all(count > 0 for _, count in series)
