"""``liqmap up --replay`` through a database restart, with live subscribers (the short version
of ``bench/fault_matrix.py``, whose 5-restart run docs/reliability.md records).

A private PostgreSQL (never the shared one) is stopped with ``pg_ctl -m fast`` under a running
``liqmap up --replay`` whose replay clock runs, kept down, and started again. The same
``liqmap up`` process goes on serving; its worker (a child process) is restarted and ingest
resumes within 60 s of the database's return; both ``heatmapUpdated`` subscribers get columns
again; afterwards candles, open interest, funding rates and 5-minute heatmap snapshots equal a
clean replay's (the session's ``liqmap up --replay --once`` database), row by row, and each
subscriber got every stored column once, in order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.outages import SCOPES, run

pytestmark = pytest.mark.slow

RECOVERY_BOUND_S = 60.0  # issue 17: ingest resumes within 60 s of the database's return


def test_liqmap_up_recovers_from_a_database_restart(
    replayed_template: str, shared_data: Path, tmp_path: Path
) -> None:
    report = run(
        restarts=1,
        down_s=10.0,
        speed=120.0,
        span_hours=5.0,
        work=tmp_path,
        shared=shared_data,
        clean_url=replayed_template,
    )
    print(report.matrix())
    (trial,) = report.trials
    assert trial.survived, (tmp_path / "up.log").read_text()[-5000:]
    assert trial.worker_restarts >= 1  # the worker stopped with its database, and came back
    assert trial.ingest_recovered_s is not None and trial.ingest_recovered_s < RECOVERY_BOUND_S
    assert set(trial.subscribers_recovered_s) == set(SCOPES)
    assert all(
        s is not None and s < RECOVERY_BOUND_S for s in trial.subscribers_recovered_s.values()
    )
    assert report.up_pid_kept
    assert report.tables_equal == dict.fromkeys(
        ("candles", "open_interest", "funding_rates", "heatmap_snapshots"), True
    ), report.rows_compared
    assert report.rows_compared["candles"] > 7000 and all(report.rows_compared.values())
    assert report.subscribers_exact == dict.fromkeys(SCOPES, True), report.columns_received
