"""Screenshots of the viewer (24 h and a year) for docs/: taken by the real page in chromium
over what the real jobs stored. They are written to the test's temporary folder; to refresh
the committed ones in docs/:

    LIQMAP_SCREENSHOTS=docs .venv/bin/python -m pytest -q tests/viewer/test_screenshots.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tests.api.conftest import LiveServer
from tests.viewer.test_browser import wait_drawn

DOCS = Path(__file__).resolve().parents[2] / "docs"
SHOTS = {"viewer-24h.png": "?range=24h", "viewer-1y.png": "?range=1y"}
SIZE = (1600, 1000)


async def test_screenshots_of_a_day_and_a_year(
    browser: Any, viewer_server: LiveServer, tmp_path: Path
) -> None:
    folder = DOCS if os.environ.get("LIQMAP_SCREENSHOTS") == "docs" else tmp_path
    context = await browser.new_context(
        viewport={"width": SIZE[0], "height": SIZE[1]}, device_scale_factor=1
    )
    try:
        page = await context.new_page()
        for name, query in SHOTS.items():
            await page.goto(f"{viewer_server.url}/{query}")
            await wait_drawn(page)
            # every overlay that is on has answered (drawn, or said there is nothing to draw)
            await page.wait_for_function(
                "[...document.querySelectorAll('#overlay-list input:checked')].every(b => "
                "['drawn', 'empty'].includes(b.closest('label').dataset.state))"
            )
            await page.wait_for_function("document.body.dataset.busy === 'false'")
            await page.mouse.move(0, 0)
            path = folder / name
            await page.screenshot(path=str(path))
            image = np.asarray(Image.open(path).convert("RGB"))
            assert image.shape == (SIZE[1], SIZE[0], 3)
            assert len(np.unique(image.reshape(-1, 3), axis=0)) > 200  # a picture, not a blank
    finally:
        await context.close()
