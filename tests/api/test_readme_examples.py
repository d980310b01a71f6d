"""Every GraphQL example in the docs runs against the real API and answers what the docs show.

The examples are read from the Markdown itself: the README's curl command (its
``--data-urlencode 'query=…'`` document, sent as curl sends it, a GET), and every ```graphql
block of docs/api.md (sent as a POST). The ```json block that follows an example is the answer
it shows, pasted from a run against ``scripts/up.sh --replay ../shared/data``; the API's answer
over the tests' database (the same recordings, through the same jobs) must have exactly the
fields shown, the same list lengths and the same values (floats to 1e-9 relative). The app runs
in replay mode, as ``up --replay`` does: "now" (``coverage.staleness``) is the data's clock.

docs/api.md's programs (```python example`` and the like) are run by
tests/api/interop/test_docs_examples.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.conftest import build_app
from tests.api.pipeline import Stored

REPO = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/api.md")

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
CURL_QUERY = re.compile(r"curl\s+-sG\s+(\S+)\s+--data-urlencode\s+'query=(.*?)'", re.DOTALL)


@dataclass(frozen=True)
class Example:
    source: str  # file:line of the example's fence
    query: str
    method: str  # GET as the curl command sends it, or POST for a bare graphql block
    url: str  # the address the doc sends it to ("" for a bare graphql block)
    answer: dict[str, Any] | None  # the ```json block that follows, if any


def examples(relative: str) -> list[Example]:
    text = (REPO / relative).read_text()
    blocks = [
        (m.group(1).strip(), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(text)
    ]
    found = []
    for i, (lang, body, line) in enumerate(blocks):
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        answer = json.loads(following[1]) if following and following[0] == "json" else None
        source = f"{relative}:{line}"
        if lang == "graphql":
            found.append(Example(source, body, "POST", "", answer))
        elif lang == "sh" and (curl := CURL_QUERY.search(body)):
            found.append(Example(source, curl.group(2), "GET", curl.group(1), answer))
    return found


EXAMPLES = [example for doc in DOCS for example in examples(doc)]


def test_the_docs_have_examples_with_answers() -> None:
    """Guards against a parametrization that silently finds nothing: the README's curl example
    and the examples of docs/api.md are found, each with the answer it shows."""
    readme = [e for e in EXAMPLES if e.source.startswith("README.md")]
    api = [e for e in EXAMPLES if e.source.startswith("docs/api.md")]
    curl = [e for e in readme if e.method == "GET"]
    assert curl and all(urlsplit(e.url).path == "/graphql" for e in curl), readme
    assert "liquidationMap" in curl[0].query and "longShortSplit" in curl[0].query
    assert len(api) >= 2, api
    assert all(e.answer is not None for e in EXAMPLES)


def assert_shown(shown: Any, actual: Any, path: str = "") -> None:
    """``actual`` has exactly the fields ``shown`` has, lists of the same length, equal values."""
    if isinstance(shown, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        assert set(actual) == set(shown), f"{path}: fields {sorted(actual)} != {sorted(shown)}"
        for key, value in shown.items():
            assert_shown(value, actual[key], f"{path}.{key}")
    elif isinstance(shown, list):
        assert isinstance(actual, list), f"{path}: {actual!r} is not a list"
        assert len(actual) == len(shown), f"{path}: {len(actual)} items, the doc shows {len(shown)}"
        for i, (s, a) in enumerate(zip(shown, actual, strict=True)):
            assert_shown(s, a, f"{path}[{i}]")
    elif isinstance(shown, float) and not isinstance(actual, bool):
        message = f"{path}: {actual!r}, the doc shows {shown!r}"
        assert actual == pytest.approx(shown, rel=1e-9), message
    else:
        assert actual == shown, f"{path}: {actual!r}, the doc shows {shown!r}"


@pytest.fixture
async def client(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> AsyncIterator[httpx.AsyncClient]:
    """The app as `liqmap up --replay` serves it (the docs' answers come from there)."""
    app = build_app(api_engine, api_database_url, replay_dir=stored.shared_data)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://liqmap.test") as c:
        yield c
    await app.state.hub.close()


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.source for e in EXAMPLES])
async def test_example_answers_as_shown(client: httpx.AsyncClient, example: Example) -> None:
    if example.method == "GET":
        response = await client.get("/graphql", params={"query": example.query})
    else:
        response = await client.post("/graphql", json={"query": example.query})
    assert response.status_code == 200, response.text
    body = response.json()
    assert example.answer is not None
    if "errors" not in example.answer:
        assert "errors" not in body, body["errors"]
    assert_shown(example.answer, body, example.source)
