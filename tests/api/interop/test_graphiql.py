"""GraphiQL works offline: its page and bundle come from the server, in a real chromium whose
every request to a host other than the server is aborted (as on a machine without internet)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.api.pipeline import Stored
from tests.reliability.harness import ApiProcess
from tests.viewer.conftest import CHROMIUM, CHROMIUM_ARGS

QUERY = '{ liquidationMap(symbol: "BTC/USDT:USDT", exchanges: ["binanceusdm"]) { at price } }'


def test_graphiql_assets_are_served_with_their_licences(api_server: ApiProcess) -> None:
    page = httpx.get(f"{api_server.url}/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    sources = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert sources and all(s.startswith(("graphiql/", "data:")) for s in sources), sources
    for asset in (
        "graphiql/graphiql-3.8.3/graphiql.min.js",
        "graphiql/react-18.2.0/react.production.min.js",
        "graphiql/react-dom-18.2.0/react-dom.production.min.js",
        "graphiql/plugin-explorer-1.0.2/index.umd.js",
    ):
        assert f'src="{asset}"' in page.text
        response = httpx.get(f"{api_server.url}/{asset}")
        assert response.status_code == 200 and len(response.content) > 10_000, asset
        assert "immutable" in response.headers["cache-control"]
        licence = httpx.get(f"{api_server.url}/{asset.rsplit('/', 1)[0]}/LICENSE")
        assert licence.status_code == 200 and "MIT License" in licence.text


async def test_graphiql_renders_and_runs_a_query_offline(
    api_server: ApiProcess, stored: Stored, tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does)")
    from playwright.async_api import async_playwright

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    server_host = urlsplit(api_server.url).netloc
    aborted: list[str] = []

    async def offline(route: object) -> None:
        request = route.request  # type: ignore[attr-defined]
        if urlsplit(request.url).netloc == server_host or request.url.startswith("data:"):
            await route.continue_()  # type: ignore[attr-defined]
        else:
            aborted.append(request.url)
            await route.abort()  # type: ignore[attr-defined]

    snap = stored.latest("binanceusdm")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.route("**/*", offline)
            # GraphiQL's page takes its editor's text from ?q= (?query= would run the query)
            await page.goto(f"{api_server.url}/graphql?q={quote(QUERY)}", wait_until="load")
            editor = page.locator(".graphiql-query-editor")
            await editor.wait_for(timeout=30_000)
            await page.locator(".graphiql-execute-button").click()
            result = page.locator(".result-window")
            await result.get_by_text(snap.at.isoformat()).wait_for(timeout=30_000)
            text = await result.inner_text()
            await page.screenshot(path=str(tmp_path / "graphiql.png"))
        finally:
            await browser.close()
    assert '"price"' in text and repr(snap.price) in text.replace(" ", ""), text
    assert not errors, errors
    assert not aborted, f"GraphiQL asked for outside resources: {aborted}"
