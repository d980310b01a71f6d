"""First paint of a cold 24 h view against a running server, in headless Debian chromium.

Prints, as JSON, the page's ``liqmap:first-paint`` measure (navigation start to the first
heatmap on screen), the heatmap request's time in the browser and the columns drawn. Restart
the server before each run for cold caches (docs/performance.md, Web viewer):

    .venv/bin/python bench/first_paint.py http://127.0.0.1:8000/
"""

from __future__ import annotations

import asyncio
import json
import sys

from playwright.async_api import async_playwright

MEASURE = """() => ({
  total: performance.getEntriesByName('liqmap:first-paint')[0].duration,
  heatmap: performance.getEntriesByName('liqmap:heatmap:response')[0].startTime
    - performance.getEntriesByName('liqmap:heatmap:sent')[0].startTime,
  columns: document.querySelector('#heatmap').dataset.columns,
})"""


async def first_paint(url: str) -> dict[str, object]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            context = await browser.new_context(
                viewport={"width": 1600, "height": 1000}, device_scale_factor=1
            )
            page = await context.new_page()
            await page.goto(url)
            await page.wait_for_function(
                "performance.getEntriesByName('liqmap:first-paint').length > 0", timeout=15_000
            )
            result: dict[str, object] = await page.evaluate(MEASURE)
            return result
        finally:
            await browser.close()


if __name__ == "__main__":
    print(
        json.dumps(
            asyncio.run(first_paint(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/"))
        )
    )
