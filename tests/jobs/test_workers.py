"""Real `liqmap worker` processes on the replayed Binance window: SIGKILL and resume, and two
workers sharing the periodic tasks. Expected rows come from the shared CSV."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]
LIQMAP = REPO / ".venv" / "bin" / "liqmap"
SYMBOL = "BTC/USDT:USDT"
BAR = 300_000

pytestmark = pytest.mark.slow


class Workers:
    """Starts `liqmap worker` processes on one database; stops whatever is left at the end."""

    def __init__(self, database_url: str, shared_data: Path, folder: Path) -> None:
        self.database_url = database_url
        self.shared_data = shared_data
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **settings: object) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIQMAP_")}
        env.pop("DATABASE_URL", None)
        env.update(
            {
                "LIQMAP_DATABASE_URL": self.database_url,
                "LIQMAP_EXCHANGES": "binanceusdm",
                "LIQMAP_SYMBOLS": '{"binanceusdm": ["BTC/USDT:USDT"]}',
                "LIQMAP_TIERS_INTERVAL_S": "86400",
                "LIQMAP_MATERIALIZE_INTERVAL_S": "86400",
                "LIQMAP_WORKER_HEARTBEAT_S": "0.5",
                "LIQMAP_WORKER_STALLED_AFTER_S": "2",
                "LIQMAP_RETRY_INITIAL_S": "0.05",
            }
        )
        env.update({f"LIQMAP_{k.upper()}": str(v) for k, v in settings.items()})
        log = (self.folder / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [str(LIQMAP), "worker", "--replay", str(self.shared_data), "--concurrency", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.folder,
        )
        self.procs.append(proc)
        return proc

    def log(self, index: int) -> str:
        return (self.folder / f"worker-{index}.log").read_text(errors="replace")[-3000:]

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # a graceful stop: running jobs finish first
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(fresh_database_url: str, shared_data: Path, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(fresh_database_url, shared_data, tmp_path)
    yield started
    started.close()


def _query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def _wait_for(what: str, check: Callable[[], Any], timeout: float, workers: Workers) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        for index, proc in enumerate(workers.procs):
            if proc.poll() not in (None, -signal.SIGKILL):
                pytest.fail(f"worker {index} exited {proc.returncode}:\n{workers.log(index)}")
        time.sleep(0.05)
    logs = "\n".join(workers.log(i) for i in range(len(workers.procs)))
    pytest.fail(f"timed out waiting for {what}\n{logs}")


def _ms(value: Any) -> int:
    return round(value.timestamp() * 1000)


def test_sigkill_mid_batch_then_restart_leaves_no_duplicates_and_no_gaps(
    workers: Workers, fresh_database_url: str, binance_rows: list[dict[str, str]]
) -> None:
    url = fresh_database_url
    # a slow link, so that the worker dies with open interest pages still to fetch
    first = workers.start(replay_latency_ms=250)

    def killed_mid_batch() -> list[tuple[Any, ...]]:
        # the open-interest run is going and has committed at least one page (its watermark)
        return _query(
            url,
            "SELECT r.id, r.procrastinate_job_id, w.watermark FROM job_runs r "
            "JOIN ingest_watermarks w ON w.dataset = r.dataset "
            "WHERE r.dataset = 'open_interest' AND r.status = 'running'",
        )

    ((run_id, job_id, committed),) = _wait_for("a run mid-batch", killed_mid_batch, 60, workers)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert _query(url, "SELECT status FROM procrastinate_jobs WHERE id = %s", job_id) == [
        ("doing",)
    ]  # the dead worker's job holds its lock: without recovery nothing would run it again

    second = workers.start()  # no latency: it finishes quickly once it has taken the job over

    def resumed() -> list[tuple[Any, ...]]:
        return _query(
            url,
            "SELECT id, procrastinate_job_id, worker FROM job_runs WHERE dataset = "
            "'open_interest' AND status = 'succeeded' AND id > %s",
            run_id,
        )

    ((_, rerun_job, rerun_worker),) = _wait_for(
        "the killed task to run again", resumed, 60, workers
    )
    pending = (
        "SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing') "
        "AND task_name = 'liqmap.ingest'"
    )
    _wait_for("the queue to drain", lambda: not _query(url, pending), 30, workers)
    workers.stop(second)

    # the run the dead worker left 'running' is failed with the reason
    ((status, error, dead_worker),) = _query(
        url, "SELECT status, error, worker FROM job_runs WHERE id = %s", run_id
    )
    assert status == "failed" and error.startswith("worker died: no heartbeat")
    assert dead_worker.endswith(f":{first.pid}") and rerun_worker.endswith(f":{second.pid}")
    # retried as the same job, or (had a new period begun meanwhile) superseded by its run
    ((killed_status,),) = _query(url, "SELECT status FROM procrastinate_jobs WHERE id = %s", job_id)
    assert (killed_status, rerun_job == job_id) in {("succeeded", True), ("failed", False)}
    # it resumed from the committed watermark, not from scratch
    ((resumed_from,),) = _query(
        url,
        "SELECT watermark_from FROM job_runs WHERE procrastinate_job_id = %s AND id > %s "
        "AND dataset = 'open_interest'",
        rerun_job,
        run_id,
    )
    assert _ms(resumed_from) == _ms(committed)

    now = int(binance_rows[-1]["timestamp"]) + BAR - 1  # the replay clock
    closed = [int(r["timestamp"]) for r in binance_rows if int(r["timestamp"]) + BAR <= now]
    snapshots = [int(r["timestamp"]) - BAR for r in binance_rows]  # each closes the bar before
    for table, expected in (("candles", closed), ("open_interest", snapshots)):
        stamps = [_ms(r[0]) for r in _query(url, f"SELECT ts FROM {table} ORDER BY ts")]
        assert stamps == expected, table  # same count, first and last; none twice, none missing
        assert all(b - a == BAR for a, b in itertools.pairwise(stamps))
        ((n, keys),) = _query(
            url, f"SELECT count(*), count(DISTINCT (market_id, timeframe, ts)) FROM {table}"
        )
        assert n == keys == len(expected)
    by_stamp = {int(r["timestamp"]): r for r in binance_rows}
    for ts, close, oi_usd in _query(
        url,
        "SELECT c.ts, c.close, o.open_interest_usd FROM candles c JOIN open_interest o "
        "USING (market_id, timeframe, ts) ORDER BY c.ts",
    ):
        assert close == float(by_stamp[_ms(ts)]["price_close"])
        assert oi_usd == float(by_stamp[_ms(ts) + BAR]["open_interest_usd"])


def test_two_workers_run_each_periodic_task_once_per_period(
    workers: Workers, fresh_database_url: str
) -> None:
    url = fresh_database_url
    # tiers every minute, not daily: they run in every test (and are counted as one task among
    # the others), not only in those that start within the periodic deferrer's 10-minute
    # catch-up window after midnight UTC
    settings = {"ingest_interval_s": 2, "backfill_days": 1, "tiers_interval_s": 60}
    pair = [workers.start(**settings), workers.start(**settings)]

    def periods_done() -> bool:
        rows = _query(
            url,
            "SELECT count(DISTINCT args->>'timestamp') FROM procrastinate_jobs "
            "WHERE task_name = 'liqmap.ingest' AND status = 'succeeded' "
            "AND args->>'dataset' <> 'tiers' GROUP BY args->>'dataset'",
        )
        return len(rows) == 3 and min(r[0] for r in rows) >= 4

    _wait_for("four periods of every ingest task", periods_done, 60, workers)
    for proc in pair:
        workers.stop(proc)

    # one job per task and period, however many workers deferred it
    jobs = _query(
        url,
        "SELECT args->>'dataset', args->>'timestamp', count(*) FROM procrastinate_jobs "
        "WHERE task_name = 'liqmap.ingest' GROUP BY 1, 2",
    )
    assert jobs and all(n == 1 for _, _, n in jobs)
    assert {d for d, _, _ in jobs} == {"candles", "open_interest", "funding", "tiers"}
    # every job ran exactly once, and each succeeded
    ran = _query(
        url,
        "SELECT j.id, j.status, count(r.id) FROM procrastinate_jobs j "
        "LEFT JOIN job_runs r ON r.procrastinate_job_id = j.id "
        "WHERE j.task_name = 'liqmap.ingest' AND j.status NOT IN ('todo', 'cancelled') "
        "GROUP BY j.id, j.status",
    )
    assert ran and all((status, n) == ("succeeded", 1) for _, status, n in ran), ran
    # never two runs of one task at once
    runs = _query(
        url,
        "SELECT dataset, started_at, finished_at, worker FROM job_runs ORDER BY dataset, "
        "started_at",
    )
    for dataset, group in itertools.groupby(runs, key=lambda r: r[0]):
        spans = list(group)
        for before, after in itertools.pairwise(spans):
            assert after[1] >= before[2], f"{dataset}: runs overlap: {before} {after}"
    # and the work spread over both processes
    assert {w.rsplit(":", 1)[1] for *_, w in runs} == {str(p.pid) for p in pair}


def test_workers_run_at_a_lower_cpu_priority_than_the_api(workers: Workers) -> None:
    """`liqmap worker` lowers its own CPU priority (niceness 10 by default) so that API
    processes on the same host take the cores first; ``worker_nice=0`` keeps it as started."""
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    default, unchanged = workers.start(), workers.start(worker_nice=0)
    for index in range(2):
        _wait_for(
            "the worker's priority line",
            lambda i=index: "job worker priority" in workers.log(i),
            30,
            workers,
        )
    assert os.getpriority(os.PRIO_PROCESS, default.pid) == max(10, ours)
    assert os.getpriority(os.PRIO_PROCESS, unchanged.pid) == ours
    for proc in (default, unchanged):
        workers.stop(proc)
