"""The web viewer in a real browser (Debian chromium, headless, via Playwright) against the app
serving what the real jobs stored.

Pixels are checked against the stored snapshots read back with plain SQL, not against the API:
every heatmap cell the page paints as non-background must hold USD in the database, and every
cell that holds USD must be painted. The test that runs the materializer comes last in this
module (it adds the held-back hour); the others do not depend on the order.
"""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import httpx
import numpy as np
from matplotlib import colormaps
from PIL import Image

from tests.api.conftest import LiveServer
from tests.viewer.conftest import (
    EMPTY_SYMBOL,
    NO_OI_EXCHANGE,
    SYMBOL,
    ViewerData,
    graphql_body,
    grid_matrix,
)

BUCKET = 50.0
ROWS = 500
DAY_MS = 86_400_000
LUT = np.round(colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).astype(int)
LUT_KEYS = {int(r) << 16 | int(g) << 8 | int(b) for r, g, b in LUT}
BACKGROUND_KEY = int(LUT[0][0]) << 16 | int(LUT[0][1]) << 8 | int(LUT[0][2])


async def wait_drawn(page: Any, previous: str | None = None) -> str:
    """Wait until a load finished drawing (and, with ``previous``, a newer one than that)."""
    await page.wait_for_function(
        "(prev) => document.body.dataset.drawn && document.body.dataset.drawn !== prev "
        "&& document.body.dataset.busy === 'false'",
        arg=previous,
        timeout=15_000,
    )
    return str(await page.evaluate("document.body.dataset.drawn"))


async def canvas_rgb(page: Any, selector: str = "#heatmap") -> np.ndarray:
    """The canvas's own pixels (H × W × 3), read with toDataURL."""
    url = await page.evaluate(f"document.querySelector('{selector}').toDataURL('image/png')")
    png = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


async def plot_box(page: Any) -> tuple[float, float, float, float]:
    text = await page.get_attribute("#heatmap", "data-plot")
    x0, y0, w, h = (float(v) for v in text.split(","))
    return x0, y0, w, h


def price_window(price: float) -> tuple[float, float]:
    """500 rows of 50 USD around the price."""
    low = np.floor((price - ROWS * BUCKET / 2) / BUCKET) * BUCKET
    return float(low), float(low + ROWS * BUCKET)


def classify_cells(
    rgb: np.ndarray, box: tuple[float, float, float, float], rows: int, columns: int
) -> np.ndarray:
    """Per cell: 1 painted with USD, 0 background, -1 covered (candle, price line)."""
    x0, y0, w, h = box
    xs = (x0 + (np.arange(columns) + 0.5) * w / columns).astype(int)
    ys = (y0 + (rows - 1 - np.arange(rows) + 0.5) * h / rows).astype(int)
    sampled = rgb[ys[:, None], xs[None, :]]
    keys = sampled[..., 0] << 16 | sampled[..., 1] << 8 | sampled[..., 2]
    in_lut = np.isin(keys, list(LUT_KEYS))
    return np.where(in_lut, (keys != BACKGROUND_KEY).astype(int), -1)


async def latest(viewer_data: ViewerData) -> tuple[int, float]:
    """Close (ms) and price of the newest aggregate snapshot, read with SQL."""
    close = await viewer_data.newest_bar_close_ms()
    bar = datetime.fromtimestamp((close - 300_000) / 1000, UTC)
    rows = await viewer_data.snapshots("all", "5m", bar, bar + timedelta(minutes=5))
    return close, float(rows[0].price)


async def test_heatmap_is_drawn_where_the_stored_usd_is_and_within_a_second(
    page: Any, viewer_server: LiveServer, viewer_data: ViewerData
) -> None:
    close, price = await latest(viewer_data)
    low, high = price_window(price)
    await page.goto(f"{viewer_server.url}/?range=24h&res=FIVE_MINUTES&pmin={low:g}&pmax={high:g}")
    await wait_drawn(page)
    assert await page.get_attribute("#heatmap", "data-rows") == str(ROWS)
    assert await page.get_attribute("#heatmap", "data-columns") == "288"
    start = datetime.fromisoformat(await page.get_attribute("#heatmap", "data-start"))
    end = datetime.fromisoformat(await page.get_attribute("#heatmap", "data-end"))
    assert round(end.timestamp() * 1000) == close  # a preset range ends at the newest bar
    assert end - start == timedelta(hours=24)

    # the 24 h × 500-row heatmap is drawn within 1 s of its response arriving
    measures = await page.evaluate(
        "['liqmap:heatmap-draw', 'liqmap:heatmap-paint'].map("
        "n => performance.getEntriesByName(n)[0].duration)"
    )
    assert all(0 <= m < 1000 for m in measures), measures
    print(
        f"24 h × 500-row heatmap: drawn {measures[0]:.0f} ms, painted {measures[1]:.0f} ms "
        "after the response"
    )

    # every cell is painted iff the stored aggregate snapshot of its bar holds USD there
    rows = await viewer_data.snapshots("all", "5m", start, end)
    assert len(rows) == 288
    columns = [round((r.ts - start).total_seconds()) // 300 for r in rows]
    assert columns == list(range(288))
    long_m, short_m = grid_matrix(rows, round(low / BUCKET), ROWS)
    stored = (long_m + short_m) > 0
    painted = classify_cells(await canvas_rgb(page), await plot_box(page), ROWS, 288)
    seen = painted >= 0
    assert seen.mean() > 0.95  # few cells are hidden under candles and the price line
    agree = (painted == stored.astype(int))[seen].mean()
    assert agree > 0.995, agree
    # the rows with data are painted, rows without any are background; a v2 map spans the whole
    # book (≥ ±30 %), so data reaches both edges of this ±19 % window (a v1 map stopped at ±10 %)
    filled_rows = np.flatnonzero(stored.any(axis=1))
    assert filled_rows[0] == 0 and filled_rows[-1] == ROWS - 1
    assert (painted[~stored.any(axis=1)] <= 0).all()
    assert (painted[filled_rows] == 1).mean() > 0.5

    # the colour legend tops out at the largest stored cell of the window
    legend_max = float(await page.get_attribute("#legend", "data-max"))
    both = (long_m.astype(np.float32) + short_m.astype(np.float32)).max()
    assert legend_max == float(both)
    # the liquidation map beside it is the newest map, on the same price axis
    assert await page.get_attribute("#map-at", "data-at-ms") == str(close)
    assert await page.get_attribute("#map", "data-levels") == str(ROWS)


def _gql_requests(page: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    def record(request: Any) -> None:
        if (body := graphql_body(request)) is not None:
            sent.append(body)

    page.on("request", record)
    return sent


def _heatmaps(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s["variables"] for s in sent if "heatmap(" in s["query"]]


def _span_ms(variables: dict[str, Any]) -> int:
    start = datetime.fromisoformat(variables["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(variables["end"].replace("Z", "+00:00"))
    return round((end - start).total_seconds() * 1000)


def _query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url).query)


async def test_controls_issue_the_right_queries_and_the_url_follows(
    page: Any, viewer_server: LiveServer, viewer_data: ViewerData
) -> None:
    sent = _gql_requests(page)
    await page.goto(f"{viewer_server.url}/")
    drawn = await wait_drawn(page)
    first = _heatmaps(sent)[-1]
    assert first["symbol"] == SYMBOL and first["exchanges"] is None
    assert _span_ms(first) == DAY_MS and first["interval"] is None
    assert _query_of(page.url)["range"] == ["24h"]
    close = await viewer_data.newest_bar_close_ms()
    assert datetime.fromisoformat(first["end"].replace("Z", "+00:00")).timestamp() * 1000 == close

    await page.click("#ranges button[data-range='3d']")
    drawn = await wait_drawn(page, drawn)
    assert _span_ms(_heatmaps(sent)[-1]) == 3 * DAY_MS
    assert _query_of(page.url)["range"] == ["3d"]

    await page.select_option("#res", "ONE_HOUR")
    drawn = await wait_drawn(page, drawn)
    hourly = _heatmaps(sent)[-1]
    assert hourly["interval"] == "ONE_HOUR"
    # the range ends at the last whole hour of the data, not past the newest bar
    end_ms = datetime.fromisoformat(hourly["end"].replace("Z", "+00:00")).timestamp() * 1000
    assert end_ms == close - close % 3_600_000 and _span_ms(hourly) == 3 * DAY_MS
    assert await page.get_attribute("#heatmap", "data-columns") == str(3 * 24)
    assert _query_of(page.url)["res"] == ["ONE_HOUR"]

    await page.check("input.exchange[value='binanceusdm']")
    drawn = await wait_drawn(page, drawn)
    assert _heatmaps(sent)[-1]["exchanges"] == ["binanceusdm"]
    assert _query_of(page.url)["exchanges"] == ["binanceusdm"]
    assert "binanceusdm" in (await page.text_content("#title") or "")

    # a symbol whose market is listed but has nothing materialized: the empty-data message
    await page.select_option("#symbol", EMPTY_SYMBOL)
    drawn = await wait_drawn(page, drawn)
    eth = _heatmaps(sent)[-1]
    assert eth["symbol"] == EMPTY_SYMBOL and eth["exchanges"] is None
    assert _span_ms(eth) == 3 * DAY_MS and eth["interval"] == "ONE_HOUR"
    message = page.locator("#message")
    assert await message.get_attribute("data-kind") == "empty"
    assert await message.text_content() == (
        f"No liquidation data has been materialized for {EMPTY_SYMBOL} yet."
    )
    assert _query_of(page.url)["symbol"] == [EMPTY_SYMBOL]

    # the address is the view: Back restores the previous one and asks for it again
    await page.go_back()
    drawn = await wait_drawn(page, drawn)
    back = _heatmaps(sent)[-1]
    assert back["symbol"] == SYMBOL and back["exchanges"] == ["binanceusdm"]
    assert await page.is_hidden("#message")
    assert await page.input_value("#symbol") == SYMBOL
    assert await page.is_checked("input.exchange[value='binanceusdm']")

    # a venue without open interest is offered (its market is tracked) but has no map
    await page.uncheck("input.exchange[value='binanceusdm']")
    drawn = await wait_drawn(page, drawn)
    await page.check(f"input.exchange[value='{NO_OI_EXCHANGE}']")
    await wait_drawn(page, drawn)
    alone = _heatmaps(sent)[-1]
    assert alone["symbol"] == SYMBOL and alone["exchanges"] == [NO_OI_EXCHANGE]
    assert _query_of(page.url)["exchanges"] == [NO_OI_EXCHANGE]
    assert await message.get_attribute("data-kind") == "empty"
    assert await message.text_content() == (
        f"No liquidation data has been materialized for {SYMBOL} yet."
    )


async def test_unknown_symbol_shows_the_apis_error(
    page: Any, viewer_server: LiveServer, viewer_data: ViewerData
) -> None:
    symbol = "DOGE/USDT:USDT"
    async with httpx.AsyncClient(base_url=viewer_server.url) as client:
        body = (
            await client.post(
                "/graphql",
                json={"query": f'{{ liquidationMap(symbol: "{symbol}") {{ at }} }}'},
            )
        ).json()
    expected = body["errors"][0]
    assert expected["extensions"]["code"] == "NOT_FOUND"
    await page.goto(f"{viewer_server.url}/?symbol={quote(symbol, safe='')}")
    message = page.locator("#message")
    await message.wait_for(state="visible")
    assert await message.get_attribute("data-kind") == "error"
    assert await message.get_attribute("data-code") == "NOT_FOUND"
    assert await message.text_content() == f"Not found: {expected['message']}"
    assert "BTC/USDT:USDT" in expected["message"]  # the API names the close match


async def test_a_new_materialized_snapshot_appears_without_reload(
    page: Any, browser: Any, viewer_server: LiveServer, viewer_data: ViewerData
) -> None:
    before, price = await latest(viewer_data)
    low, high = price_window(price)
    view = f"{viewer_server.url}/?range=24h&res=FIVE_MINUTES&pmin={low:g}&pmax={high:g}"
    await page.goto(view)
    await wait_drawn(page)
    await page.wait_for_selector("#status[data-ws='open']")
    await page.evaluate("window.__sameDocument = true")
    # the same view of two leverage bands only: its live columns carry those bands
    banded_view = f"{view}&leverage=UP_TO_10X,FROM_50X_TO_100X"
    banded_context = await browser.new_context(
        viewport={"width": 1600, "height": 1300}, device_scale_factor=1
    )
    banded = await banded_context.new_page()
    banded_sent = _gql_requests(banded)
    await banded.goto(banded_view)
    await wait_drawn(banded)
    await banded.wait_for_selector("#status[data-ws='open']")
    heatmaps_before = len(_heatmaps(banded_sent))
    await page.wait_for_timeout(500)  # the subscriptions reach the server's listener

    written = await viewer_data.catch_up()  # the real ingest + materializer, held-back hour
    assert written > 0
    after = await viewer_data.newest_bar_close_ms()
    assert after - before == 3_600_000

    await page.wait_for_function(
        f"document.querySelector('#last-bar').dataset.atMs === '{after}'", timeout=15_000
    )
    await page.wait_for_function(
        f"Date.parse(document.querySelector('#heatmap').dataset.end) === {after}", timeout=5_000
    )
    await page.wait_for_function(
        f"document.querySelector('#map-at').dataset.atMs === '{after}'", timeout=10_000
    )
    assert await page.evaluate("window.__sameDocument") is True  # no reload happened
    live_pixels = await canvas_rgb(page)

    # the 12 new columns hold the newly stored snapshots
    live_start = await page.get_attribute("#heatmap", "data-start")
    end = datetime.fromisoformat(await page.get_attribute("#heatmap", "data-end"))
    rows = await viewer_data.snapshots("all", "5m", end - timedelta(hours=1), end)
    assert len(rows) == 12
    long_m, short_m = grid_matrix(rows, round(low / BUCKET), ROWS)
    painted = classify_cells(live_pixels, await plot_box(page), ROWS, 288)[:, -12:]
    seen = painted >= 0
    assert (painted == ((long_m + short_m) > 0).astype(int))[seen].mean() > 0.995

    # and the live-patched picture is the one a fresh load of the same view draws
    fresh_context = await browser.new_context(
        viewport={"width": 1600, "height": 1300}, device_scale_factor=1
    )
    try:
        fresh = await fresh_context.new_page()
        await fresh.goto(view)
        await wait_drawn(fresh)
        await fresh.wait_for_function(
            f"document.querySelector('#map-at').dataset.atMs === '{after}'"
        )
        assert await fresh.get_attribute("#heatmap", "data-start") == live_start
        fresh_pixels = await canvas_rgb(fresh)
    finally:
        await fresh_context.close()
    same = (live_pixels == fresh_pixels).all(axis=2).mean()
    assert same > 0.999, same

    # the band-filtered page placed its columns as they came, without asking for the heatmap
    # again, and shows what a fresh load of that view shows
    try:
        await banded.wait_for_function(
            f"Date.parse(document.querySelector('#heatmap').dataset.end) === {after}",
            timeout=10_000,
        )
        await banded.wait_for_function(
            f"document.querySelector('#map-at').dataset.atMs === '{after}'", timeout=10_000
        )
        assert len(_heatmaps(banded_sent)) == heatmaps_before
        banded_pixels = await canvas_rgb(banded)
        await banded.goto(banded_view)
        await wait_drawn(banded)
        await banded.wait_for_function(
            f"document.querySelector('#map-at').dataset.atMs === '{after}'"
        )
        assert _heatmaps(banded_sent)[-1]["leverage"] == ["UP_TO_10X", "FROM_50X_TO_100X"]
        reloaded = await canvas_rgb(banded)
    finally:
        await banded_context.close()
    same = (banded_pixels == reloaded).all(axis=2).mean()
    assert same > 0.999, same
    assert (banded_pixels != live_pixels).any(axis=2).mean() > 0.001  # not the unfiltered one
