"""The CLI as a user meets it: helpful --help, one-line errors and exit code 2 for bad settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from liqmap import migrations
from liqmap.database import with_database

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "LIQMAP_DATABASE_URL"}
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=REPO,
        timeout=120,
    )


@pytest.mark.integration  # runs the installed command in a process of its own
def test_help_lists_commands() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for word in ("db", "up", "serve"):
        assert word in out.stdout


@pytest.mark.integration  # starts PostgreSQL or dials a server
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://postgres@127.0.0.1:1/liqmap", "cannot reach PostgreSQL"),
        ("mysql://root@127.0.0.1/liqmap", "unsupported database URL scheme"),
    ],
)
def test_bad_database_url_is_one_clear_line(url: str, expected: str) -> None:
    out = run_cli("db", "upgrade", env={"DATABASE_URL": url})
    assert out.returncode == 2
    assert expected in out.stderr
    assert "DATABASE_URL" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_database_names_the_fix(server_url: str) -> None:
    url = with_database(server_url, "liqmap_no_such_db")
    out = run_cli("db", "upgrade", env={"DATABASE_URL": url})
    assert out.returncode == 2
    assert "does not exist" in out.stderr and "DATABASE_URL" in out.stderr


@pytest.mark.integration  # starts PostgreSQL or dials a server
def test_embedded_server_that_cannot_start_fails_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = run_cli("db", "current", env={"LIQMAP_DATA_DIR": str(blocker)})
    assert out.returncode == 2
    assert "embedded PostgreSQL" in out.stderr and "LIQMAP_DATA_DIR" in out.stderr
    assert "Traceback" not in out.stderr


def test_db_upgrade_via_cli_and_alembic_agree(empty_database_url: str) -> None:
    out = run_cli("db", "upgrade", "--database-url", empty_database_url)
    assert out.returncode == 0, out.stderr
    assert migrations.current_revision(empty_database_url) == migrations.head_revision()
    env = {k: v for k, v in os.environ.items() if k != "LIQMAP_DATABASE_URL"}
    env["DATABASE_URL"] = empty_database_url
    alembic = subprocess.run(
        [sys.executable, "-m", "alembic", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert alembic.returncode == 0, alembic.stderr
    assert "No new upgrade operations detected" in alembic.stdout + alembic.stderr


def test_log_json_setting_makes_every_log_line_json(server_url: str, shared_data: Path) -> None:
    import json

    from tests.conftest import create_database, drop_database

    url = create_database(server_url, "liqmap_test_logs")
    try:
        refused = run_cli("ingest", "--replay", str(shared_data), env={"DATABASE_URL": url})
        migrations.upgrade(url)
        out = run_cli(
            "ingest",
            "--replay",
            str(shared_data),
            env={
                "DATABASE_URL": url,
                "LIQMAP_LOG_JSON": "true",
                "LIQMAP_EXCHANGES": "binanceusdm",
                "LIQMAP_SYMBOLS": '{"binanceusdm": ["BTC/USDT:USDT"]}',
            },
        )
    finally:
        drop_database(server_url, url)
    # an unmigrated database is one clear line, not a traceback
    assert refused.returncode == 2 and "liqmap db upgrade" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    ingested = [r for r in records if r.get("event") == "ingested"]
    assert {r["dataset"] for r in ingested} >= {"candles", "open_interest", "funding"}
    assert all("timestamp" in r and "level" in r for r in records)


def _serve_on_embedded(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """``liqmap serve`` with no DATABASE_URL on a migrated data folder, once ready: the process
    and its server's pgdata."""
    import time

    import httpx

    from tests.api.conftest import free_port

    assert run_cli("db", "upgrade", env=_embedded_env(tmp_path)).returncode == 0
    pgdata = tmp_path / "pgdata"
    assert not (pgdata / "postmaster.pid").exists()  # db upgrade stopped it on exit
    port = free_port()
    unset = {"DATABASE_URL", "LIQMAP_DATABASE_URL"}
    full_env = {k: v for k, v in os.environ.items() if k not in unset}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", str(port)],
        env={**full_env, **_embedded_env(tmp_path)},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                return proc, pgdata
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("liqmap serve did not come up")


def _embedded_env(tmp_path: Path) -> dict[str, str]:
    return {"LIQMAP_DATA_DIR": str(tmp_path), "LIQMAP_LOG_LEVEL": "WARNING"}


def _stop_left_server(proc: subprocess.Popen[bytes], pgdata: Path) -> list[str]:
    """Kill ``proc`` if it still runs, and stop a server left running (never leave one behind,
    whatever a test's assertions say); returns what postmaster.pid held (empty: none left)."""
    import signal
    import time

    if proc.poll() is None:
        proc.kill()
    postmaster = pgdata / "postmaster.pid"
    left = postmaster.read_text().split() if postmaster.exists() else []
    if left:
        os.kill(int(left[0]), signal.SIGINT)
        time.sleep(1)
    return left


@pytest.mark.integration  # starts PostgreSQL or dials a server
def test_term_stops_the_embedded_server_serve_started(tmp_path: Path) -> None:
    """``liqmap serve`` on the embedded PostgreSQL, ended by TERM (as by systemd, docker or a
    supervisor): it shuts down and stops the server it started instead of leaving it running."""
    import json
    import signal

    proc, pgdata = _serve_on_embedded(tmp_path)
    try:
        assert (pgdata / "postmaster.pid").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        left = _stop_left_server(proc, pgdata)
    assert not left
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == []


@pytest.mark.integration  # starts PostgreSQL or dials a server
def test_a_killed_process_does_not_keep_the_embedded_server_running(tmp_path: Path) -> None:
    """``liqmap serve`` killed outright (SIGKILL, OOM) never takes itself off the embedded
    server's handle list; the next command that uses the server forgets it, so that command's
    clean exit, as the last user, stops the server."""
    import json

    proc, pgdata = _serve_on_embedded(tmp_path)
    handles = pgdata / ".handle_pids.json"
    try:
        proc.kill()
        proc.wait(timeout=30)
        # the dead process is still on the list, and the server it started still runs
        assert json.loads(handles.read_text()) == [proc.pid]
        assert (pgdata / "postmaster.pid").exists()

        after = run_cli("db", "upgrade", env=_embedded_env(tmp_path))  # a clean run on it
        assert after.returncode == 0, after.stderr
        assert str(proc.pid) in after.stderr  # it says which dead process it forgot
    finally:
        left = _stop_left_server(proc, pgdata)
    assert not left  # the last user's exit stopped the server
    assert json.loads(handles.read_text()) == []
