"""Every program in docs/api.md runs against a real server and prints what the guide shows.

docs/api.md marks its programs by the fence's info string: ```` ```python example ````,
```` ```js example ```` and ```` ```sh example ```` (run with this interpreter, ``node`` and
``bash``), followed by a ```` ```text ```` block with what they print. They read the server's
address from ``LIQMAP_URL`` / ``LIQMAP_WS_URL``, which the test sets to a real ``liqmap serve``
in replay mode over the API tests' database (the guide's outputs come from
``scripts/up.sh --replay ../shared/data``: the same recordings through the same jobs). Programs
marked ``live`` subscribe: they run against a server over the subscription tests' database while
the held-back bars are ingested and materialized one at a time, and each line they print is
checked against the map the materializer stored for that bar. ```` ```graphql ```` blocks and
their ```` ```json ```` answers are tests/api/test_readme_examples.py's. Any other fenced block
fails the test: the guide has no example that is not run.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api.interop.conftest import serve
from tests.api.interop.test_clients import materialize_up_to
from tests.api.pipeline import BAR, Stored
from tests.api.test_subscriptions import Live, live, live_template, snapshots  # noqa: F401
from tests.reliability.harness import ApiProcess, running

REPO = Path(__file__).resolve().parents[3]
GUIDE = REPO / "docs" / "api.md"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
LANGUAGES = {"python", "js", "sh"}
ANSWERS = {"graphql", "json", "text"}  # checked here (text) or by test_readme_examples


@dataclass(frozen=True)
class Example:
    source: str  # docs/api.md:line
    language: str
    live: bool
    code: str
    output: str | None  # the ```text block that follows


def fenced(text: str) -> list[tuple[str, str, int]]:
    return [
        (m.group(1).strip(), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(text)
    ]


def examples() -> list[Example]:
    blocks = fenced(GUIDE.read_text())
    found = []
    for k, (info, body, line) in enumerate(blocks):
        words = info.split()
        if len(words) >= 2 and words[1] == "example":
            after = blocks[k + 1] if k + 1 < len(blocks) else None
            output = after[1] if after and after[0] == "text" else None
            found.append(
                Example(f"docs/api.md:{line}", words[0], "live" in words[2:], body, output)
            )
    return found


EXAMPLES = examples()
STATIC = [e for e in EXAMPLES if not e.live]
LIVE = [e for e in EXAMPLES if e.live]


def test_every_fenced_block_is_a_run_example_or_an_answer() -> None:
    for info, _body, line in fenced(GUIDE.read_text()):
        words = info.split()
        known = info in ANSWERS or (
            len(words) >= 2
            and words[0] in LANGUAGES
            and words[1] == "example"
            and set(words[2:]) <= {"live"}
        )
        assert known, f"docs/api.md:{line}: ```{info} is neither a run example nor an answer"
    assert all(e.output is not None for e in EXAMPLES), [e.source for e in EXAMPLES]
    kinds = {(e.language, e.live) for e in EXAMPLES}
    assert kinds == {
        ("js", False),
        ("python", False),
        ("sh", False),
        ("js", True),
        ("python", True),
    }
    assert any("FLOAT32" in e.code or "atob" in e.code for e in STATIC if e.language == "js")
    assert any("np.frombuffer" in e.code for e in STATIC if e.language == "python")
    assert any("pandas" in e.code and "endCursor" in e.code for e in STATIC)
    assert any("graphql-ws" in e.code for e in LIVE) and any("gql" in e.code for e in LIVE)


def run(example: Example, env: dict[str, str], node_dir: Path, timeout: float = 120) -> Any:
    """Start the example's program; returns the process (its stdout piped)."""
    name = f".docs-example-{uuid.uuid4().hex[:8]}"
    if example.language == "js":
        path = node_dir / f"{name}.mjs"  # beside node_modules, whose packages it imports
        command = [shutil.which("node") or "node", str(path)]
    elif example.language == "python":
        path = node_dir.parent / f"{name}.py"
        command = [sys.executable, str(path)]
    else:
        path = node_dir.parent / f"{name}.sh"
        command = ["bash", str(path)]
    path.write_text(example.code)
    process = subprocess.Popen(
        command,
        cwd=path.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.example_file = path  # type: ignore[attr-defined]
    return process


def finish(process: Any, timeout: float) -> tuple[str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        process.example_file.unlink(missing_ok=True)
    return out, err


def environment(server: ApiProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIQMAP_")}
    env["LIQMAP_URL"] = f"{server.url}/graphql"
    env["LIQMAP_WS_URL"] = server.url.replace("http", "ws") + "/graphql"
    return env


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip("\n").splitlines()]


@pytest.fixture(scope="module")
def replay_server(
    api_database_url: str, stored: Stored, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """liqmap serve as `liqmap up --replay` runs it: "now" is the data's clock."""
    log = tmp_path_factory.mktemp("docs") / "serve.log"
    server = serve(api_database_url, log, replay_dir=stored.shared_data)
    with running(server):
        yield server


@pytest.mark.parametrize("example", STATIC, ids=[e.source for e in STATIC])
def test_example_prints_what_the_guide_shows(
    example: Example, replay_server: ApiProcess, node_clients: Path
) -> None:
    process = run(example, environment(replay_server), node_clients)
    out, err = finish(process, timeout=120)
    assert process.returncode == 0, f"{example.source} failed:\n{err[-3000:]}"
    assert example.output is not None
    assert lines(out) == lines(example.output), f"{example.source} printed:\n{out}"


@pytest.fixture
def live_server(live: Live, tmp_path: Path) -> Any:  # noqa: F811
    server = serve(live.url, tmp_path / "serve.log", replay_dir=live.stored.shared_data)
    with running(server):
        yield server


LIVE_LINE = re.compile(
    r"^(?P<at>\S+) price (?P<price>[0-9.]+): largest long bucket (?P<bucket>[0-9.]+), "
    r"(?P<usd>[0-9]+) USD$"
)


async def test_live_examples_print_the_new_maps(
    live: Live,  # noqa: F811
    live_server: ApiProcess,
    node_clients: Path,
) -> None:
    before = snapshots(live.stored, "binanceusdm")
    env = environment(live_server)
    processes = [run(example, env, node_clients) for example in LIVE]
    try:
        until = before[-1].at + BAR
        for _ in range(11):  # one held-back bar at a time, until every program has exited
            if all(p.poll() is not None for p in processes):
                break
            await materialize_up_to(live, until)
            for _ in range(60):  # a subscribed program prints this bar's line in well under 3 s
                if all(p.poll() is not None for p in processes):
                    break
                await asyncio.sleep(0.05)
            until += BAR
        outputs = [await asyncio.to_thread(finish, p, 30) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
            p.example_file.unlink(missing_ok=True)
    stored = {s.at.isoformat(): s for s in snapshots(live.stored, "binanceusdm")}
    for example, process, (out, err) in zip(LIVE, processes, outputs, strict=True):
        assert process.returncode == 0, f"{example.source} failed:\n{err[-3000:]}"
        printed = lines(out)
        assert len(printed) == 2, (example.source, out)
        for line in printed:
            match = LIVE_LINE.match(line)
            assert match, (example.source, line)
            snap = stored[match["at"]]
            assert snap.at > before[-1].at  # a new bar, not one stored before
            assert float(match["price"]) == snap.price
            peak = int(np.argmax(snap.long_usd))
            assert float(match["bucket"]) == (snap.first + peak) * snap.bucket_size
            assert int(match["usd"]) == round(float(snap.long_usd[peak]))
        print(f"{example.source}:\n{out}")
