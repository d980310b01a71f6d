"""The viewer's files: served by the app at / (with the shared definitions inlined) and /viewer/,
and shipped in the wheel."""

from __future__ import annotations

import html
import json
import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from starlette.applications import Starlette

from api.viewer import FIRST_ID, STATIC_DIR
from api.viewer.shared import SCRIPT_ID, documents, style
from tests.api.conftest import build_app
from tests.viewer.conftest import ViewerData

REPO = Path(__file__).resolve().parents[2]


async def test_page_and_its_modules_are_served(viewer_app: Starlette) -> None:
    transport = httpx.ASGITransport(app=viewer_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://viewer.test") as client:
        page = await client.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        assert '<script type="module" src="/viewer/main.js">' in page.text
        # viewer.json and the GraphQL documents arrive inlined, as the files hold them
        inline = re.search(
            rf'<script type="application/json" id="{SCRIPT_ID}">(.*?)</script>', page.text, re.S
        )
        assert inline is not None
        assert json.loads(inline.group(1)) == {"style": style(), "documents": documents()}
        assert "liqmap:shared" not in page.text  # the placeholder is gone
        assert f"--long:{style()['colours']['long']};" in page.text
        # an unchanged page is not sent again
        again = await client.get("/", headers={"If-None-Match": page.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        # every module the page imports, transitively, is served as JavaScript
        pending, seen = ["main.js"], set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            response = await client.get(f"/viewer/{name}")
            assert response.status_code == 200, name
            assert "javascript" in response.headers["content-type"]
            pending += re.findall(r'from "\./([\w.]+)"', response.text)
        assert seen == {p.name for p in STATIC_DIR.glob("*.js")}
        # the shared files are served too, for other clients to read
        served = await client.get("/viewer/viewer.json")
        assert served.status_code == 200 and served.json() == style()
        heatmap = await client.get("/viewer/graphql/heatmap.graphql")
        assert heatmap.status_code == 200 and heatmap.text == documents()["heatmap"]
        css = await client.get("/viewer/viewer.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert (await client.get("/viewer/nope.js")).status_code == 404
        # GraphiQL still answers a browser at /graphql
        ide = await client.get("/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 200 and "graphiql" in ide.text.lower()


def test_static_files_are_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["api.viewer"]
    shipped = {p for pattern in patterns for p in (STATIC_DIR.parent).glob(pattern)}
    assert shipped == {p for p in STATIC_DIR.rglob("*") if p.is_file()}
    assert any(p.suffix == ".graphql" for p in shipped) and STATIC_DIR / "viewer.json" in shipped


def first_answers(html: str) -> dict[str, Any] | None:
    element = rf'<script type="application/json" id="{FIRST_ID}">(.*?)</script>'
    found = re.search(element, html, re.S)
    return None if found is None else json.loads(found.group(1))


async def test_page_embeds_the_apis_answers_to_its_first_two_queries(
    viewer_app: Starlette, viewer_data: ViewerData
) -> None:
    """The page carries the answers /graphql gives to its first two documents (limits, and the
    newest map of the symbol its address names), byte for byte, so that its first request can
    be the heatmap; with keys required (anonymous answers are refused) it carries none and the
    page asks for them itself, as it did before."""
    transport = httpx.ASGITransport(app=viewer_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://viewer.test") as client:

        async def asked(doc: str, variables: dict[str, Any]) -> str:
            body = {"query": documents()[doc], "variables": variables}
            return (await client.post("/graphql", json=body)).text

        for address, variables in [
            ("/", {"symbol": style()["defaults"]["symbol"], "exchanges": None}),
            (
                "/?symbol=ETH/USDT:USDT&exchanges=binanceusdm,%20&range=7d",
                {"symbol": "ETH/USDT:USDT", "exchanges": ["binanceusdm"]},
            ),
            (
                "/?exchanges=binanceusdm&range=7d&axis=full",
                {"symbol": style()["defaults"]["symbol"], "exchanges": ["binanceusdm"]},
            ),
        ]:
            page = (await client.get(address)).text
            first = first_answers(page)
            assert first is not None, address
            assert first["variables"] == variables
            assert first["limits"] == await asked("limits", {})
            assert first["latest"] == await asked("latest", variables)
            assert "errors" not in json.loads(first["latest"])
            # the page's first heatmap, named by a GET address the page preloads: it answers
            # what POSTing the heatmap document with those variables answers, byte for byte
            heatmap = first["heatmap"]
            if json.loads(first["latest"])["data"]["liquidationMap"] is None:
                assert heatmap is None, address  # no map of ETH: no window to derive
                continue
            preload = re.search(
                r'<link rel="preload" as="fetch" crossorigin="anonymous" '
                r'href="([^"]+)">',
                page,
            )
            near = style()["defaults"]["near_price_pct"] if "axis=full" not in address else None
            assert heatmap["variables"]["withinPct"] == near
            assert preload is not None and html.unescape(preload.group(1)) == heatmap["url"]
            assert heatmap["url"].startswith("/graphql?")
            got = await client.get(heatmap["url"])
            assert got.status_code == 200 and "errors" not in got.json(), address
            preloaded = got.json()
            posted = json.loads(await asked("heatmap", heatmap["variables"]))
            for answer in (preloaded, posted):  # seconds to now: moves between the two
                answer["data"]["heatmap"]["coverage"].pop("staleness")
            assert preloaded == posted, address
        # the BTC map's instant is the newest stored snapshot's close, from SQL
        latest = json.loads(first_answers((await client.get("/")).text)["latest"])  # type: ignore[index]
        async with viewer_data.engine.connect() as conn:
            newest = (
                await conn.execute(
                    text(
                        "SELECT max(ts) FROM heatmap_snapshots WHERE series_id = :sid"
                        " AND resolution = '5m'"
                    ),
                    {"sid": await viewer_data.series_id()},
                )
            ).scalar()
        at = datetime.fromisoformat(latest["data"]["liquidationMap"]["at"])
        assert at == newest + timedelta(minutes=5)
        # an unknown symbol's error is not embedded: the page asks and shows it as before
        unknown = first_answers((await client.get("/?symbol=NOPE/USDT:USDT")).text)
        assert unknown is not None and unknown["latest"] is None and unknown["limits"]
        assert unknown["heatmap"] is None  # and nothing preloaded
        assert 'rel="preload" as="fetch"' not in (await client.get("/?symbol=NOPE")).text
        # an address whose first heatmap the server does not derive: no preload either
        fixed = (await client.get("/?res=ONE_HOUR")).text
        assert first_answers(fixed)["heatmap"] is None  # type: ignore[index]
        assert 'rel="preload" as="fetch"' not in fixed
        # the address's symbol is in the page as data, never as markup
        hostile = "</script><script>alert(1)</script><!--<script>"
        page = await client.get("/", params={"symbol": hostile})
        assert "alert(1)</script>" not in page.text and "<!--<script>" not in page.text
        embedded = first_answers(page.text)
        assert embedded is not None and embedded["variables"]["symbol"] == hostile

    keyed = build_app(viewer_data.engine, viewer_data.url, require_api_keys=True)
    try:
        transport = httpx.ASGITransport(app=keyed)
        async with httpx.AsyncClient(transport=transport, base_url="http://viewer.test") as client:
            page = await client.get("/")
            assert page.status_code == 200 and first_answers(page.text) is None
    finally:
        await keyed.state.hub.close()
