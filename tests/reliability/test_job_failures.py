"""Database errors inside a job surface as failed job runs, never as a crashed worker.

A real ``liqmap worker --replay`` runs while the database refuses two of its writes:

* candles: the server answers the write with SQLSTATE 53100 ``disk_full`` — what PostgreSQL
  sends when it cannot extend a file (raised by a trigger, so the test is deterministic and no
  disk has to fill up);
* open interest: the write takes longer than ``LIQMAP_DB_STATEMENT_TIMEOUT_MS`` (the worker's
  real statement timeout; a trigger sleeps), so PostgreSQL cancels it.

Both runs are stored as ``failed`` with the reason, nothing of their batch is written and the
watermark stays; funding keeps succeeding, the worker stays up, and once the database accepts
the writes again the next periods fill the data exactly, with no gap.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import create_database, drop_database
from tests.reliability.conftest import csv_bar_times, query_all, query_one
from tests.reliability.harness import LiqmapProcess, liqmap_env, running, wait_until

pytestmark = pytest.mark.slow

SABOTAGE = """
CREATE FUNCTION sabotage_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'could not extend file "base/16384/16999": No space left on device'
    USING ERRCODE = 'disk_full', HINT = 'Check free disk space.';
END $$;
CREATE FUNCTION sabotage_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(5); RETURN NEW; END $$;
CREATE TRIGGER disk_full BEFORE INSERT ON candles
  FOR EACH ROW EXECUTE FUNCTION sabotage_disk_full();
CREATE TRIGGER slow BEFORE INSERT ON open_interest
  FOR EACH ROW EXECUTE FUNCTION sabotage_slow();
"""
REPAIR = "DROP TRIGGER disk_full ON candles; DROP TRIGGER slow ON open_interest;"


@pytest.fixture
def failing_url(server_url: str) -> Iterator[str]:
    from liqmap import migrations

    url = create_database(server_url, "liqmap_test_rel_fail")
    migrations.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SABOTAGE)
    yield url
    drop_database(server_url, url)


def test_disk_full_and_statement_timeout_are_failed_runs(
    failing_url: str, shared_data: Path, tmp_path: Path
) -> None:
    url = failing_url
    env = liqmap_env(
        url,
        exchanges="binanceusdm",
        symbols='{"binanceusdm": ["BTC/USDT:USDT"]}',
        ingest_interval_s=2,
        materialize_interval_s=86_400,
        tiers_interval_s=86_400,
        backfill_days=2,
        db_statement_timeout_ms=1_000,
        retry_initial_s=0.05,
    )
    worker = LiqmapProcess(
        ["worker", "--replay", str(shared_data), "--concurrency", "2"], env, tmp_path / "w.log"
    )
    with running(worker):

        def failed_runs() -> dict[str, str]:
            rows = query_all(
                url, "SELECT dataset, error FROM job_runs WHERE status = 'failed' ORDER BY id"
            )
            return {dataset: error for dataset, error in rows}

        failures = wait_until(
            lambda: (f := failed_runs()).keys() >= {"candles", "open_interest"} and f,
            60,
            what="failed candles and open-interest runs",
        )
        assert "No space left on device" in failures["candles"], failures
        assert "statement timeout" in failures["open_interest"], failures
        # nothing of the refused batches, and their watermarks did not move
        assert query_one(url, "SELECT count(*) FROM candles") == 0
        assert query_one(url, "SELECT count(*) FROM open_interest") == 0
        marks = dict(query_all(url, "SELECT dataset, watermark FROM ingest_watermarks"))
        assert "candles" not in marks and "open_interest" not in marks
        # the other job goes on; the worker is up; the queue saw the failures as well
        wait_until(
            lambda: query_one(
                url,
                "SELECT count(*) FROM job_runs WHERE dataset = 'funding' AND status = 'succeeded'",
            ),
            30,
            what="funding to succeed meanwhile",
        )
        assert worker.alive(), worker.output()[-3000:]
        assert query_one(
            url,
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed' "
            "AND args->>'dataset' IN ('candles', 'open_interest')",
        )

        # the database accepts writes again: the next periods catch up by themselves
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(REPAIR)
        for dataset in ("candles", "open_interest"):
            wait_until(
                lambda d=dataset: query_one(
                    url,
                    "SELECT count(*) FROM job_runs WHERE dataset = %s "
                    "AND status = 'succeeded' AND rows_written > 0",
                    d,
                ),
                60,
                what=f"{dataset} to recover",
            )
        assert worker.alive()

    stuck = query_all(url, "SELECT id, dataset FROM job_runs WHERE status = 'running'")
    assert stuck == []
    stored = [row[0] for row in query_all(url, "SELECT ts FROM candles ORDER BY ts")]
    expected = [t for t in csv_bar_times(shared_data) if stored[0] <= t <= stored[-1]]
    assert stored == expected and len(stored) >= 2 * 288 - 1
