"""The viewer's files: served by the app at / and /viewer/, shipped in the wheel, and the colour
table the page ships is matplotlib's "inferno" (the one `liqmap render` uses)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import httpx
import numpy as np
from matplotlib import colormaps
from starlette.applications import Starlette

from api.viewer import STATIC_DIR

REPO = Path(__file__).resolve().parents[2]


async def test_page_and_its_modules_are_served(viewer_app: Starlette) -> None:
    transport = httpx.ASGITransport(app=viewer_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://viewer.test") as client:
        page = await client.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        assert '<script type="module" src="/viewer/main.js">' in page.text
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
    assert shipped == set(STATIC_DIR.iterdir())


def test_the_page_colour_table_is_matplotlibs_inferno() -> None:
    source = (STATIC_DIR / "colormap.js").read_text()
    hexes = "".join(re.findall(r'"([0-9a-f]+)"', source.split("const HEX =", 1)[1].split(";")[0]))
    page = np.array(
        [[int(hexes[i + k : i + k + 2], 16) for k in (0, 2, 4)] for i in range(0, len(hexes), 6)]
    )
    expected = np.round(colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).astype(int)
    assert page.shape == (256, 3)
    np.testing.assert_array_equal(page, expected)
