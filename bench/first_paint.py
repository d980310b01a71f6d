"""First paint of a cold 24 h view from a real `liqmap serve` process, in headless Debian chromium.

Run (after the quick start has filled the database once):

    .venv/bin/liqmap up --replay ../shared/data --once
    .venv/bin/python bench/first_paint.py [--runs 5] [--url DATABASE_URL]

Each run starts a new `liqmap serve` (replay mode, the quick start's database: the embedded
PostgreSQL unless ``--url``/``DATABASE_URL`` names one), so its caches are empty; it runs the
server's code paths once on other data (the newest map, a 7-day heatmap of hourly columns;
``--just-started`` skips this and measures a process's first page), then opens ``/`` in a new
browser context and reads the page's ``liqmap:first-paint`` measure (navigation start to the
first heatmap on screen) and the heatmap request's time from request to response. Two servers
alternate (ABAB…), so both see the same machine load:

* ``shipped``: this checkout's server, whose page names its first heatmap for the browser to
  preload (api/viewer/first_view.py);
* ``baseline``: the same database served by the code of ``--baseline`` (a commit, default
  ``bee8d11``: before the preload and the in-memory files), unpacked with ``git archive`` into
  a temporary folder and run with its own code first on ``PYTHONPATH``.

Prints the medians per variant and their ratio, with the 1-minute load per core before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from playwright.async_api import Browser, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from api.viewer.shared import documents, style

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LIQMAP_SHARED_DATA", REPO.parent / "shared" / "data"))

# the heatmap is the page's first GraphQL request in both (a preload, or first.js's POST)
MEASURE = """() => {
  const heatmap = performance.getEntriesByType('resource')
    .find((e) => new URL(e.name).pathname === '/graphql');
  return {
    total: performance.getEntriesByName('liqmap:first-paint')[0].duration,
    sent: heatmap.startTime,
    answered: heatmap.responseEnd,
    columns: document.querySelector('#heatmap').dataset.columns,
  };
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def load_per_core() -> float:
    return os.getloadavg()[0] / (os.cpu_count() or 1)


async def exercise(client: httpx.AsyncClient) -> None:
    """Run the server's code paths once on other data than the measured view: the newest map
    and a 7-day heatmap at 1 h columns (hourly snapshots; the view reads 5-minute ones)."""
    latest = await client.post(
        "/graphql",
        json={
            "query": documents()["latest"],
            "variables": {"symbol": style()["defaults"]["symbol"]},
        },
    )
    at = datetime.fromisoformat(latest.json()["data"]["liquidationMap"]["at"])
    variables = {
        "symbol": style()["defaults"]["symbol"],
        "start": (at - timedelta(days=7)).isoformat(),
        "end": at.isoformat(),
        "interval": "ONE_HOUR",
    }
    answer = await client.post(
        "/graphql", json={"query": documents()["heatmap"], "variables": variables}
    )
    assert "errors" not in answer.json(), answer.text[:300]


def unpack(revision: str, into: Path) -> Path:
    """The tree of ``revision`` in a folder of its own (``git archive``)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


async def one_run(
    browser: Browser, code: Path, database_url: str | None, just_started: bool
) -> dict:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "LIQMAP_LOG_LEVEL": "WARNING",
        "LIQMAP_REPLAY": str(SHARED),
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from cli.main import main; sys.exit(main())",
            "serve",
            "--port",
            str(port),
        ],
        cwd=code,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            for _ in range(300):
                try:
                    if (await client.get("/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("liqmap serve did not become ready")
            if not just_started:
                await exercise(client)
        context = await browser.new_context(
            viewport={"width": 1600, "height": 1000}, device_scale_factor=1
        )
        try:
            page = await context.new_page()
            await page.goto(base + "/")
            await page.wait_for_function(
                "performance.getEntriesByName('liqmap:first-paint').length > 0", timeout=15_000
            )
            result: dict = await page.evaluate(MEASURE)
            return result
        finally:
            await context.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


async def main(runs: int, database_url: str | None, just_started: bool, baseline: str) -> None:
    before = load_per_core()
    with tempfile.TemporaryDirectory() as folder:
        variants = {"shipped": REPO, f"baseline {baseline}": unpack(baseline, Path(folder))}
        results: dict[str, list[dict]] = {name: [] for name in variants}
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium")
            try:
                for _ in range(runs):
                    for name, code in variants.items():
                        results[name].append(
                            await one_run(browser, code, database_url, just_started)
                        )
            finally:
                await browser.close()
    after = load_per_core()
    what = "just started" if just_started else "running (code paths exercised on other data)"
    print(
        f"server {what}; load per core (1 min): {before:.2f} before, {after:.2f} after; "
        f"{runs} runs each"
    )
    medians = {}
    for name, rows in results.items():
        assert all(r["columns"] == "288" for r in rows), rows
        medians[name] = statistics.median(r["total"] for r in rows)
        each = ", ".join(f"{r['total']:.0f}" for r in rows)
        print(
            f"{name:>16}: first paint median {medians[name]:.0f} ms ({each}); heatmap asked at "
            f"{statistics.median(r['sent'] for r in rows):.0f} ms, answered at "
            f"{statistics.median(r['answered'] for r in rows):.0f} ms"
        )
    ratio = medians[f"baseline {baseline}"] / medians["shipped"]
    print(f"baseline / shipped: {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument(
        "--just-started", action="store_true", help="measure the first request of each process"
    )
    parser.add_argument("--baseline", default="bee8d11", help="commit to compare with")
    args = parser.parse_args()
    started = time.perf_counter()
    asyncio.run(main(args.runs, args.url, args.just_started, args.baseline))
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
