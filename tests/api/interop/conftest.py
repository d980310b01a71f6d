"""Interoperability fixtures: a real ``liqmap serve`` process and the npm clients.

The clients are used as their users install them: Python ``gql`` from PyPI (the dev extras),
npm ``graphql-ws``, ``graphql-http``, ``graphql`` and ``ws`` from the npm registry, pinned in
``node/package.json`` and ``node/package-lock.json`` and installed with ``npm ci`` (by
scripts/test.sh, or here when ``node_modules`` is missing or older than the lock file). Nothing
is skipped: without node or npm, or when ``npm ci`` fails, the tests fail saying why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.pipeline import Stored
from tests.reliability.harness import ApiProcess, liqmap_env, running

NODE_DIR = Path(__file__).resolve().parent / "node"


def npm_ci(folder: Path) -> None:
    """``npm ci`` in ``folder`` unless its node_modules matches its lock file already."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed for the interoperability tests (Node.js ≥ 20)")
    installed = folder / "node_modules" / ".package-lock.json"  # written by npm ci / install
    lock = folder / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(
            f"npm ci failed in {folder} (the npm registry must be reachable):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )


@pytest.fixture(scope="session")
def node_clients() -> Path:
    """The folder of the npm clients, installed from the committed lock file."""
    npm_ci(NODE_DIR)
    return NODE_DIR


def run_node(script: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a Node.js script of the clients' folder (its node_modules resolve from there)."""
    node = shutil.which("node")
    assert node is not None
    return subprocess.run(
        [node, str(script), *args],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def serve(database_url: str, log: Path, **settings: object) -> ApiProcess:
    """``liqmap serve`` (the installed console script) against ``database_url``, ready."""
    server = ApiProcess(liqmap_env(database_url, **settings), log)
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def api_server(
    api_database_url: str, stored: Stored, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    """A real server over the API tests' database (the replayed window, see pipeline.py)."""
    server = serve(api_database_url, tmp_path_factory.mktemp("interop") / "serve.log")
    with running(server):
        yield server
