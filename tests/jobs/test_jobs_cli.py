"""The job commands as a user runs them: `liqmap worker | backfill | status | import`.

Real subprocesses of the installed console script (and of `python -m cli`), on a
database of their own, answering from the shared recordings. Expected numbers come from the
shared files.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from jobs.ingest import ingest_dataset
from jobs.runtime import Runtime
from liqmap.database import create_engine

from .conftest import make_settings

REPO = Path(__file__).resolve().parents[2]
LIQMAP = str(REPO / ".venv" / "bin" / "liqmap")
MODULE = (sys.executable, "-m", "cli")
SYMBOL = "BTC/USDT:USDT"
BAR = 300_000


def cli_env(database_url: str, **settings: str) -> dict[str, str]:
    """This environment without its liqmap settings, plus the database and ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIQMAP_")}
    env.pop("DATABASE_URL", None)
    env.update({"LIQMAP_DATABASE_URL": database_url, "COLUMNS": "250"})
    env.update({f"LIQMAP_{k.upper()}": v for k, v in settings.items()})
    return env


def run(
    *args: str, database_url: str, entry: tuple[str, ...] = (LIQMAP,), **settings: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*entry, *args],
        capture_output=True,
        text=True,
        env=cli_env(database_url, **settings),
        cwd=REPO,
        timeout=120,
    )


def _one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    """Exit code 2 and one error line, the last one (structured log lines may precede it)."""
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert errors == lines[-1:] and lines[-1].startswith("liqmap: error: "), out.stderr
    return lines[-1]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


@pytest.mark.parametrize("entry", [(LIQMAP,), MODULE], ids=["console-script", "python-m"])
def test_worker_with_unknown_exchange_or_unservable_bar_stops_at_start(
    entry: tuple[str, ...], fresh_database_url: str
) -> None:
    out = run(
        "worker",
        database_url=fresh_database_url,
        entry=entry,
        exchanges="binanceusdm,kraken,okx",
        timeframe="15m",
    )
    line = _one_line_error(out)
    assert out.stderr.strip() == line  # stopped before doing anything else
    valid = "valid: binanceusdm, bybit, hyperliquid, okx"
    assert f"unknown exchange 'kraken' in LIQMAP_EXCHANGES; {valid}" in line
    assert "okx serves open-interest history at 5m, 1h, 1d only" in line


def test_worker_with_unknown_market_lists_the_valid_ones(
    fresh_database_url: str, shared_data: Path
) -> None:
    out = run(
        "worker",
        "--replay",
        str(shared_data),
        database_url=fresh_database_url,
        exchanges="binanceusdm",
        symbols='{"binanceusdm": ["DOGE/USDT:USDT"]}',
    )
    line = _one_line_error(out)
    assert line.startswith("liqmap: error: binanceusdm: unknown market 'DOGE/USDT:USDT'")
    assert "valid perpetual markets (2): BTC/USDT:USDT, ETH/USDT:USDT" in line


def test_unknown_replay_window_is_one_line_naming_the_valid_ones(
    fresh_database_url: str, shared_data: Path
) -> None:
    out = run(
        "worker",
        "--replay",
        str(shared_data),
        "--replay-window",
        "bybit-2026-05",
        database_url=fresh_database_url,
    )
    line = _one_line_error(out)
    assert "unknown replay window 'bybit-2026-05'" in line
    assert "valid: binance-btc-2026-05, venues-2026-01" in line


@pytest.mark.parametrize("entry", [(LIQMAP,), MODULE], ids=["console-script", "python-m"])
def test_job_command_errors_are_one_line_with_exit_code_2(
    entry: tuple[str, ...], fresh_database_url: str
) -> None:
    out = run(
        "backfill",
        "--exchange",
        "binanceusdm",
        "--symbol",
        SYMBOL,
        "--since",
        "last tuesday",
        database_url=fresh_database_url,
        entry=entry,
    )
    assert "cannot read time 'last tuesday'" in _one_line_error(out)
    bad = run(
        "import", "liquidations", "/nonexistent.csv", database_url=fresh_database_url, entry=entry
    )
    assert "/nonexistent.csv: cannot open" in _one_line_error(bad)


def test_backfill_shows_progress_and_stores_the_range(
    fresh_database_url: str, shared_data: Path, binance_rows: list[dict[str, str]]
) -> None:
    since, until = int(binance_rows[100]["timestamp"]), int(binance_rows[1100]["timestamp"])
    out = run(
        "backfill",
        "--exchange",
        "binanceusdm",
        "--symbol",
        SYMBOL,
        "--since",
        _iso(since),
        "--until",
        str(until),
        "--dataset",
        "candles",
        "--dataset",
        "open_interest",
        "--replay",
        str(shared_data),
        database_url=fresh_database_url,
    )
    assert out.returncode == 0, out.stderr
    progress = [line for line in out.stdout.splitlines() if "100%" in line]
    assert [line.split()[0] for line in progress] == ["candles", "open_interest"]
    assert all("1000 rows" in line for line in progress), out.stdout
    assert "succeeded" in out.stdout
    with psycopg.connect(fresh_database_url) as conn:
        candles = conn.execute("SELECT count(*), min(ts), max(ts) FROM candles").fetchone()
        closes = dict(conn.execute("SELECT ts, close FROM candles").fetchall())
        runs = conn.execute("SELECT job, status, rows_written FROM job_runs ORDER BY id").fetchall()
    assert candles is not None
    assert candles[0] == 1000
    assert round(candles[1].timestamp() * 1000) == since
    assert round(candles[2].timestamp() * 1000) == until - BAR
    expected = {int(r["timestamp"]): float(r["price_close"]) for r in binance_rows[100:1100]}
    assert {round(ts.timestamp() * 1000): c for ts, c in closes.items()} == expected
    assert runs == [("backfill", "succeeded", 1000), ("backfill", "succeeded", 1000)]


async def test_status_reports_coverage_gaps_stale_tail_success_and_errors(
    fresh_database_url: str, shared_data: Path, binance_rows: list[dict[str, str]]
) -> None:
    rt = Runtime(
        settings=make_settings(replay_dir=shared_data),
        engine=create_engine(fresh_database_url),
    )
    try:
        t = [int(r["timestamp"]) for r in binance_rows]
        # candles for two stretches with a hole between them, ending 1000 bars before the
        # replay clock: a gap, and a tail that is overdue by far more than one interval
        for a, b in ((t[0], t[2000]), (t[2100], t[7000])):
            done = await ingest_dataset(
                rt, "binanceusdm", SYMBOL, "candles", since_ms=a, until_ms=b, job="backfill"
            )
            assert done.status == "succeeded"
        transport = rt.adapter("binanceusdm").transport
        assert transport is not None
        transport.inject("fundingRate", 400, body='{"code":-1121,"msg":"Invalid symbol."}')
        failed = await ingest_dataset(rt, "binanceusdm", SYMBOL, "funding")
        assert failed.status == "failed"
        async with rt.engine.connect() as conn:
            success = (
                await conn.execute(
                    text("SELECT max(finished_at) FROM job_runs WHERE status = 'succeeded'")
                )
            ).scalar_one()
    finally:
        await rt.close()
        await rt.engine.dispose()

    out = run(
        "status",
        "--replay",
        str(shared_data),
        database_url=fresh_database_url,
        exchanges="binanceusdm",
        symbols='{"binanceusdm": ["BTC/USDT:USDT"]}',
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    (candles,) = [line for line in lines if "│ candles" in line]
    cells = [c.strip() for c in candles.split("│")]
    # rows, first, last, gaps, stale tail, last success, last run
    assert cells[4:11] == [
        str(2000 + 4900),
        _iso(t[0])[:16].replace("T", " "),
        _iso(t[6999])[:16].replace("T", " "),
        "1",
        f"since {_iso(t[7000])[:16].replace('T', ' ')}",
        success.strftime("%Y-%m-%d %H:%M"),
        "backfill succeeded",
    ]
    fmt = lambda ms: _iso(ms)[:16].replace("T", " ")  # noqa: E731
    assert f"binanceusdm BTC/USDT:USDT candles: gap {fmt(t[2000])} → {fmt(t[2100])}" in lines[-3]
    assert (
        f"binanceusdm BTC/USDT:USDT candles: stale tail: nothing stored from {fmt(t[7000])} on"
        in out.stdout
    )
    (funding,) = [line for line in lines if "│ funding" in line]
    assert "ingest failed" in funding
    assert (
        "binanceusdm BTC/USDT:USDT funding: last error" in out.stdout
        and 'BadSymbol: binanceusdm {"code":-1121,"msg":"Invalid symbol."}' in out.stdout
    )


def test_import_liquidations_loads_per_bar_totals(
    fresh_database_url: str, shared_data: Path
) -> None:
    path = shared_data / "coinglass" / "BTC_agg_liquidation_30m.csv"
    with path.open(newline="") as handle:
        source = list(csv.DictReader(handle))
    out = run("import", "liquidations", str(path), "--base", "btc", database_url=fresh_database_url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(f"imported {len(source)} bars of realized liquidations")
    with psycopg.connect(fresh_database_url) as conn:
        rows = conn.execute(
            "SELECT source, exchange, base, symbol, timeframe, count(*), sum(long_usd), "
            "sum(short_usd) FROM realized_liquidations GROUP BY 1, 2, 3, 4, 5"
        ).fetchall()
        run_row = conn.execute("SELECT job, dataset, status, rows_written FROM job_runs").fetchall()
    ((src, exchange, base, symbol, timeframe, n, longs, shorts),) = rows
    assert (src, exchange, base, symbol, timeframe, n) == (
        "coinglass",
        "*",
        "BTC",
        "*",
        "30m",
        len(source),
    )
    assert longs == pytest.approx(sum(float(r["longUsd"]) for r in source), rel=1e-12)
    assert shorts == pytest.approx(sum(float(r["shortUsd"]) for r in source), rel=1e-12)
    assert run_row == [("import", "realized", "succeeded", len(source))]
    mismatch = run(
        "import",
        "liquidations",
        str(path),
        "--base",
        "BTC",
        "--symbol",
        "ETH/USDT:USDT",
        database_url=fresh_database_url,
    )
    assert "market 'ETH/USDT:USDT' is not a BTC market" in _one_line_error(mismatch)


def test_a_killed_backfill_run_is_failed_by_the_next_command(
    fresh_database_url: str, shared_data: Path, binance_rows: list[dict[str, str]]
) -> None:
    """A backfill killed outright (SIGKILL, a closed terminal's OOM) cannot record its end; the
    next job command on the host finds its process gone and fails the run, naming it. Runs of
    live processes stay 'running', whoever started them; a run whose pid now belongs to a
    process started after it is failed too (that process is not the one that ran it)."""
    import signal
    import socket
    import time

    since, until = int(binance_rows[100]["timestamp"]), int(binance_rows[3100]["timestamp"])
    env = cli_env(fresh_database_url, replay_latency_ms="200")
    backfill = subprocess.Popen(
        [
            LIQMAP,
            "backfill",
            "--exchange",
            "binanceusdm",
            "--symbol",
            SYMBOL,
            "--since",
            _iso(since),
            "--until",
            str(until),
            "--dataset",
            "candles",
            "--replay",
            str(shared_data),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = socket.gethostname()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # its run has started and written a page
            with psycopg.connect(fresh_database_url) as conn:
                row = conn.execute(
                    "SELECT id, worker FROM job_runs WHERE status = 'running'"
                ).fetchone()
                pages = conn.execute("SELECT count(*) FROM candles").fetchone()
            if row is not None and pages is not None and pages[0] > 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the backfill did not start")
        backfill.kill()
        backfill.wait(timeout=30)
    finally:
        if backfill.poll() is None:
            backfill.kill()
    killed_run, worker = row
    assert worker == f"{host}:{backfill.pid}"  # every run names its process
    namespace = os.stat("/proc/self/ns/pid").st_ino  # and its PID namespace (Linux)
    later = subprocess.Popen(["sleep", "60"])  # a live process started after the runs below
    try:
        with psycopg.connect(fresh_database_url) as conn:
            assert conn.execute(
                "SELECT pid_namespace FROM job_runs WHERE id = %s", (killed_run,)
            ).fetchone() == (namespace,)
            live, reused = (
                conn.execute(
                    "INSERT INTO job_runs (job, status, worker, started_at) VALUES "
                    "('import', 'running', %s, now()) RETURNING id",
                    (f"{host}:{pid}",),
                ).fetchone()[0]  # type: ignore[index]
                for pid in (os.getpid(), later.pid)
            )
            # the dead backfill's pid, on this hostname, but in another PID namespace (another
            # container sharing the hostname): not this host's processes to judge
            elsewhere = conn.execute(
                "INSERT INTO job_runs (job, status, worker, pid_namespace, started_at) VALUES "
                "('backfill', 'running', %s, %s, now()) RETURNING id",
                (f"{host}:{backfill.pid}", namespace + 1),
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                "UPDATE job_runs SET started_at = now() - interval '1 hour' WHERE id = %s",
                (reused,),
            )
        with psycopg.connect(fresh_database_url) as conn:
            assert conn.execute(
                "SELECT status FROM job_runs WHERE id = %s", (killed_run,)
            ).fetchone() == ("running",)  # nothing has looked yet

        status = run("status", database_url=fresh_database_url)  # any job command looks
        assert status.returncode == 0, status.stderr
    finally:
        later.send_signal(signal.SIGKILL)
        later.wait()
    with psycopg.connect(fresh_database_url) as conn:
        states = dict(
            (i, (s, e)) for i, s, e in conn.execute("SELECT id, status, error FROM job_runs")
        )
    assert states[killed_run] == ("failed", f"process died: {host}:{backfill.pid} no longer runs")
    assert states[live] == ("running", None)  # this test's process: alive
    assert states[reused][0] == "failed"  # the pid now belongs to a process newer than the run
    assert states[elsewhere] == ("running", None)
