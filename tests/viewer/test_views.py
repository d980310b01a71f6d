"""The viewer at long ranges, with overlays, on a phone and from the keyboard, in real chromium.

Expected values come from plain SQL over what the jobs stored, or from the API itself where the
question is what the API accepts; the time axis is read from the labels as the page measured
them when drawing (``#heatmap[data-time-ticks]``).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
from sqlalchemy import text

from tests.api.conftest import LiveServer, build_app
from tests.viewer.conftest import ViewerData
from tests.viewer.test_browser import canvas_rgb, wait_drawn

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
PRESETS_MS = {"24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS, "1y": 365 * DAY_MS}
NO_OVERLAYS = "&overlays="
LONG_RGB = (0x2D, 0xD4, 0xBF)
SHORT_RGB = (0xF4, 0x72, 0xB6)
HEATMAP_COLUMNS = """query ($start: DateTime!, $end: DateTime!, $interval: Interval) {
  heatmap(symbol: "BTC/USDT:USDT", start: $start, end: $end, interval: $interval,
          priceMin: 60000, priceMax: 60100) { columns } }"""


async def newest_close_ms(viewer_data: ViewerData) -> int:
    return await viewer_data.newest_bar_close_ms()


async def ticks_drawn(page: Any) -> list[dict[str, Any]]:
    return list(json.loads(await page.get_attribute("#heatmap", "data-time-ticks")))


async def canvas_width(page: Any) -> float:
    return float(await page.evaluate("document.querySelector('#heatmap').clientWidth"))


def month_starts(start_ms: float, end_ms: float) -> list[int]:
    day = datetime.fromtimestamp(start_ms / 1000, UTC).replace(day=1, hour=0, minute=0)
    out = []
    while day.timestamp() * 1000 <= end_ms:
        if day.timestamp() * 1000 >= start_ms:
            out.append(round(day.timestamp() * 1000))
        day = (day + timedelta(days=32)).replace(day=1)
    return out


async def test_time_axis_at_a_day_a_month_and_a_year(
    page: Any, viewer_server: LiveServer, viewer_data: ViewerData
) -> None:
    close = await newest_close_ms(viewer_data)
    for name, expect in (("24h", "hours"), ("30d", "days"), ("1y", "months")):
        await page.goto(f"{viewer_server.url}/?range={name}{NO_OVERLAYS}")
        await wait_drawn(page)
        start = datetime.fromisoformat(await page.get_attribute("#heatmap", "data-start"))
        end = datetime.fromisoformat(await page.get_attribute("#heatmap", "data-end"))
        start_ms, end_ms = start.timestamp() * 1000, end.timestamp() * 1000
        # the preset ends at the newest data: its last whole column, never past it
        assert end_ms <= close and close - end_ms < DAY_MS and end_ms - start_ms == PRESETS_MS[name]
        ticks = await ticks_drawn(page)
        width = await canvas_width(page)
        labels = [t["label"] for t in ticks]
        assert len(ticks) >= 5, (name, labels)
        # measured as drawn: inside the canvas, and never overlapping
        assert ticks[0]["left"] >= 0 and ticks[-1]["right"] <= width, (name, ticks)
        assert all(a["right"] < b["left"] for a, b in itertools.pairwise(ticks)), ticks
        times = [datetime.fromtimestamp(t["t"] / 1000, UTC) for t in ticks]
        if expect == "hours":
            assert all(t.minute == 0 for t in times)
            assert all(":" in label or label.startswith("Jun") for label in labels)
        elif expect == "days":
            assert all(t.hour == 0 and t.minute == 0 for t in times)
            assert all(label[:3] in ("May", "Jun") for label in labels)
        else:
            # a year: a tick on the 1st of a month, the year on the first label and at January
            assert all(t.day == 1 and t.hour == 0 for t in times)
            assert set(t["t"] for t in ticks) <= set(month_starts(start_ms, end_ms))
            assert labels[0].endswith(" 2025") and "2026" in labels, labels
            assert next(t for t in ticks if t["label"] == "2026")["major"] is True
            assert (await page.get_attribute("#heatmap", "data-columns")) == "365"


def preset_window(close: int, duration: int, seconds: int) -> tuple[int, int]:
    """Independently: a preset ends at the last whole column at or before the newest bar."""
    step = seconds * 1000
    end = close - close % step
    return end - duration, end


async def api_accepts(server: LiveServer, start: int, end: int, interval: str) -> bool:
    variables = {
        "start": datetime.fromtimestamp(start / 1000, UTC).isoformat(),
        "end": datetime.fromtimestamp(end / 1000, UTC).isoformat(),
        "interval": interval,
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post(
            "/graphql", json={"query": HEATMAP_COLUMNS, "variables": variables}
        )
    body = response.json()
    if "errors" in body:
        assert body["errors"][0]["extensions"]["code"] in {"BAD_USER_INPUT", "RANGE_TOO_LARGE"}
        return False
    return True


async def test_the_menu_offers_what_the_api_accepts(
    page: Any, viewer_server: LiveServer, viewer_data: ViewerData
) -> None:
    close = await newest_close_ms(viewer_data)
    await page.goto(f"{viewer_server.url}/?range=24h{NO_OVERLAYS}")
    drawn = await wait_drawn(page)
    refused_somewhere = 0
    for name in ("24h", "7d", "30d", "1y"):
        await page.click(f"#ranges button[data-range='{name}']")
        drawn = await wait_drawn(page, drawn)
        offered = await page.eval_on_selector_all(
            "#res option", "os => os.map(o => [o.value, o.disabled, o.title])"
        )
        assert offered[0][:2] == ["auto", False]
        for value, disabled, title in offered[1:]:
            seconds = {
                "FIVE_MINUTES": 300,
                "FIFTEEN_MINUTES": 900,
                "THIRTY_MINUTES": 1800,
                "ONE_HOUR": 3600,
                "FOUR_HOURS": 14_400,
                "ONE_DAY": 86_400,
            }[value]
            start, end = preset_window(close, PRESETS_MS[name], seconds)
            accepted = await api_accepts(viewer_server, start, end, value)
            assert disabled == (not accepted), (name, value, title)
            if disabled:
                refused_somewhere += 1
                assert title and "_" not in title, title  # says why, in words
    assert refused_somewhere >= 8  # 7 d at 5 min, 30 d below 1 h, a year below 1 d …
    # 7 d at 5 min is refused (2016 columns): asked for by address, the page says why in words
    # and shows what it can
    await page.goto(f"{viewer_server.url}/?range=7d&res=FIVE_MINUTES{NO_OVERLAYS}")
    await wait_drawn(page)
    message = page.locator("#message")
    assert await message.get_attribute("data-kind") == "info"
    notice = await message.text_content() or ""
    assert notice.startswith("5 min columns are not available for this range:"), notice
    assert "2016 columns" in notice and "FIVE_MINUTES" not in notice
    assert await page.input_value("#res") == "auto"
    assert "res=" not in page.url


async def test_api_refusals_read_as_words(page: Any, viewer_server: LiveServer) -> None:
    await page.goto(f"{viewer_server.url}/?range=24h{NO_OVERLAYS}")
    await wait_drawn(page)
    # the API's own message naming an interval, as the page shows it
    shown = await page.evaluate(
        """async () => (await import('/viewer/limits.js')).readable(
          'snapshots are kept from 2026-06-15; use interval ONE_HOUR or longer')"""
    )
    assert shown == "snapshots are kept from 2026-06-15; use interval 1 h or longer"
    # a refusal the page cannot foresee (the price range is known only to the API): its message
    await page.goto(
        f"{viewer_server.url}/?range=30d&res=ONE_HOUR&pmin=1&pmax=2000000&bucket=50{NO_OVERLAYS}"
    )
    message = page.locator("#message")
    await message.wait_for(state="visible")
    text_shown = await message.text_content() or ""
    assert await message.get_attribute("data-kind") == "error"
    assert "cells" in text_shown and "RANGE_TOO_LARGE" not in text_shown, text_shown


async def strip_colours(page: Any) -> tuple[int, int]:
    """Pixels in the long and short colours inside the strip under the heatmap."""
    box = await page.get_attribute("#heatmap", "data-strip")
    if not box:
        return 0, 0
    x0, y0, w, h = (round(float(v)) for v in box.split(","))
    rgb = (await canvas_rgb(page))[y0 : y0 + h, x0 : x0 + w]
    longs = int((np.abs(rgb - LONG_RGB).sum(axis=2) == 0).sum())
    shorts = int((np.abs(rgb - SHORT_RGB).sum(axis=2) == 0).sum())
    return longs, shorts


async def expected_realized_bars(viewer_data: ViewerData, start: int, end: int) -> int:
    """Hours of [start, end) with realized liquidations of the multi-venue total (SQL)."""
    async with viewer_data.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT DISTINCT date_trunc('hour', ts) FROM realized_liquidations "
                "WHERE base = 'BTC' AND exchange = '*' AND ts >= :a AND ts < :b "
                "AND long_usd + short_usd > 0"
            ),
            {
                "a": datetime.fromtimestamp(start / 1000, UTC),
                "b": datetime.fromtimestamp(end / 1000, UTC),
            },
        )
        return len(list(rows))


async def expected_swept_columns(viewer_data: ViewerData, start: int, end: int) -> int:
    sid = await viewer_data.series_id("all")
    async with viewer_data.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT date_trunc('hour', ts) FROM swept_levels WHERE series_id = :s "
                "AND ts >= :a AND ts < :b GROUP BY 1 HAVING sum(long_usd + short_usd) > 0"
            ),
            {
                "s": sid,
                "a": datetime.fromtimestamp(start / 1000, UTC),
                "b": datetime.fromtimestamp(end / 1000, UTC),
            },
        )
        return len(list(rows))


async def overlays_drawn(page: Any, canvas: str = "#heatmap") -> dict[str, int]:
    return dict(json.loads(await page.get_attribute(canvas, "data-overlays") or "{}"))


async def test_each_overlay_toggles_and_draws(
    page: Any, viewer_server: LiveServer, viewer_data: ViewerData
) -> None:
    url = f"{viewer_server.url}/?range=30d&overlays=realized,swept,clusters,maxpain"
    await page.goto(url)
    await wait_drawn(page)
    await page.wait_for_function(
        "['realized','swept','clusters','maxpain'].every(id => id in "
        "JSON.parse(document.querySelector('#heatmap').dataset.overlays || '{}'))"
    )
    states = await page.eval_on_selector_all(
        "#overlay-list label", "ls => ls.map(l => l.dataset.state)"
    )
    assert states == ["drawn"] * 4 + [None]  # the real-positions layer: off, never asked for
    start = datetime.fromisoformat(await page.get_attribute("#heatmap", "data-start"))
    end = datetime.fromisoformat(await page.get_attribute("#heatmap", "data-end"))
    a, b = round(start.timestamp() * 1000), round(end.timestamp() * 1000)
    drawn = await overlays_drawn(page)
    # one bar per hour column that CoinGlass's multi-venue total covers (from 2026-05-23)
    assert drawn["realized"] == await expected_realized_bars(viewer_data, a, b) > 100
    assert drawn["swept"] == await expected_swept_columns(viewer_data, a, b) > 100
    assert drawn["clusters"] == 5 and drawn["maxpain"] == 2
    assert await overlays_drawn(page, "#map") == {"clusters": 5, "maxpain": 2}
    longs, shorts = await strip_colours(page)
    assert longs > 50 and shorts > 50  # realized bars, filled in the sides' colours

    async def toggle(overlay: str) -> None:
        await page.click(f"#overlay-{overlay}")
        await page.wait_for_function(
            "([id, on]) => (id in JSON.parse(document.querySelector('#heatmap').dataset.overlays"
            " || '{}')) === on",
            arg=[overlay, await page.is_checked(f"#overlay-{overlay}")],
        )

    for overlay in ("realized", "swept", "clusters", "maxpain"):
        await toggle(overlay)  # off
        assert overlay not in await overlays_drawn(page)
        assert overlay not in (await page.get_attribute("#heatmap", "data-overlays") or "")
        assert "overlays=" in page.url and overlay not in page.url.split("overlays=")[1]
    assert await page.get_attribute("#heatmap", "data-strip") == ""  # no strip left
    assert await strip_colours(page) == (0, 0)
    assert await overlays_drawn(page, "#map") == {}
    for overlay in ("realized", "clusters"):
        await toggle(overlay)  # on again: fetched and drawn
    drawn = await overlays_drawn(page)
    assert set(drawn) == {"realized", "clusters"} and drawn["realized"] > 100
    assert (await strip_colours(page))[0] > 50


async def test_map_totals_describe_the_map_not_the_view(
    page: Any, viewer_server: LiveServer, viewer_data: ViewerData
) -> None:
    close = await newest_close_ms(viewer_data)
    bar = datetime.fromtimestamp((close - 300_000) / 1000, UTC)
    (snap,) = await viewer_data.snapshots("all", "5m", bar, bar + timedelta(minutes=5))
    whole_long = float(np.asarray(snap.long_usd, np.float32).astype(np.float64).sum())
    lows = snap.bucket_origin + np.arange(len(snap.long_usd)) * snap.bucket_size
    lo, hi = round(snap.price * 0.98), round(snap.price * 1.02)
    seen = []
    for window in ("", f"&pmin={lo}&pmax={hi}"):
        await page.goto(f"{viewer_server.url}/?range=24h{NO_OVERLAYS}{window}")
        await wait_drawn(page)
        await page.wait_for_function(f"document.querySelector('#map-at').dataset.atMs == {close}")
        info = page.locator("#mapinfo")
        seen.append(
            (
                float(await info.get_attribute("data-whole-long") or "nan"),
                float(await info.get_attribute("data-view-long") or "nan"),
                await page.text_content("#map-long"),
            )
        )
    (whole_a, _, shown_a), (whole_b, view_b, shown_b) = seen
    # the whole map: the sum of the stored vector, whatever the chart's price range
    assert whole_a == whole_b and shown_a == shown_b
    assert abs(whole_a - whole_long) <= 1e-6 * whole_long
    # in view: only the buckets inside the window, and labelled so
    inside = (lows >= np.floor(lo / 50) * 50) & (lows < np.ceil(hi / 50) * 50)
    expected_view = float(np.asarray(snap.long_usd, np.float32)[inside].astype(np.float64).sum())
    assert abs(view_b - expected_view) <= 1e-6 * whole_long and view_b < 0.9 * whole_a
    assert await page.text_content("#mapinfo dt.view") == "in view"


async def test_price_axis_opens_near_price_and_zooms_out_to_the_full_map(
    page: Any, viewer_server: LiveServer, viewer_data: ViewerData
) -> None:
    """The page opens on the traded range ± 10 % (issue #15: the viewer may open near price)
    and the "Price axis" control zooms out to the maps' whole span, the rows the API gives
    without withinPct; both read back through the API with the same window."""
    await page.goto(f"{viewer_server.url}/?range=24h{NO_OVERLAYS}")
    await wait_drawn(page)
    assert await page.input_value("#axis") == "near"
    canvas = page.locator("#heatmap")
    start = await canvas.get_attribute("data-start")
    end = await canvas.get_attribute("data-end")
    query = """query ($start: DateTime!, $end: DateTime!, $within: Float) {
      heatmap(symbol: "BTC/USDT:USDT", start: $start, end: $end, withinPct: $within) {
        priceMin rows priceStep } }"""
    shapes = {}
    async with httpx.AsyncClient(base_url=viewer_server.url) as http:
        for name, within in (("near", 10.0), ("full", None)):
            body = {"query": query, "variables": {"start": start, "end": end, "within": within}}
            shapes[name] = (await http.post("/graphql", json=body)).json()["data"]["heatmap"]
    near_rows = int(await canvas.get_attribute("data-rows") or 0)
    assert near_rows == shapes["near"]["rows"]
    await page.select_option("#axis", "full")
    await page.wait_for_function(
        f"document.querySelector('#heatmap').dataset.rows == '{shapes['full']['rows']}'"
    )
    assert "axis=full" in page.url
    full = shapes["full"]
    assert full["rows"] > 2 * near_rows  # model v2 maps reach ±30 %, the near view ±10 %
    assert full["priceMin"] < shapes["near"]["priceMin"]
    await wait_drawn(page)
    assert await canvas.get_attribute("data-rows") == str(full["rows"])


async def test_phone_width_and_keyboard(
    browser: Any, viewer_server: LiveServer, viewer_data: ViewerData
) -> None:
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    try:
        page = await context.new_page()
        await page.goto(f"{viewer_server.url}/?range=1y")
        await wait_drawn(page)
        # nothing wider than the screen, the heatmap drawn across it with a readable axis
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        width = await canvas_width(page)
        assert 300 <= width <= 390
        ticks = await ticks_drawn(page)
        assert len(ticks) >= 2 and ticks[0]["left"] >= 0 and ticks[-1]["right"] <= width
        assert any("2025" in t["label"] for t in ticks) and "2026" in [t["label"] for t in ticks]
        plot = [float(v) for v in (await page.get_attribute("#heatmap", "data-plot")).split(",")]
        assert plot[2] > 200 and plot[3] > 200  # a usable plot, not a sliver
        # every control can be reached with Tab and has a name a screen reader reads
        controls = await page.eval_on_selector_all(
            "header select, header input, header button, #overlay-list input, #within",
            """els => els.filter(e => e.offsetParent !== null).map(e => ({
                id: e.id || e.value || e.textContent,
                name: e.getAttribute('aria-label') || (e.labels && e.labels[0]
                    && e.labels[0].textContent.trim()) || e.textContent.trim(),
                right: e.getBoundingClientRect().right}))""",
        )
        assert len(controls) >= 20
        assert all(c["name"] for c in controls), controls
        assert all(c["right"] <= 390 for c in controls), controls
        reached = set()
        for _ in range(80):
            await page.keyboard.press("Tab")
            reached.add(
                await page.evaluate(
                    "(e => e.id || e.value || e.textContent)(document.activeElement)"
                )
            )
        assert {c["id"] for c in controls} <= reached, {c["id"] for c in controls} - reached
        # and a control works from the keyboard: focus the 24h preset, press Enter
        await page.focus("#ranges button[data-range='24h']")
        before = await page.evaluate("document.body.dataset.drawn")
        await page.keyboard.press("Enter")
        await wait_drawn(page, before)
        assert "range=24h" in page.url
    finally:
        await context.close()


async def test_1280_by_720_shows_chart_and_controls_without_scrolling(
    browser: Any, viewer_server: LiveServer
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = await context.new_page()
        await page.goto(f"{viewer_server.url}/?range=30d")
        await wait_drawn(page)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 1280
        box = await page.evaluate(
            "(r => [r.top, r.bottom, r.right])(document.querySelector('#heatmap')"
            ".getBoundingClientRect())"
        )
        assert box[1] <= 720 and box[2] <= 1280  # the whole heatmap with its axis is in view
        ticks = await ticks_drawn(page)
        assert all(a["right"] < b["left"] for a, b in itertools.pairwise(ticks))
    finally:
        await context.close()


FIRST_PAINT_BUDGET_MS = 500  # issue #19: a cold 24 h view on screen within half a second
BUSY_GUARD_MS = 2000  # what is still checked while other work loads the machine


def machine_load_per_core() -> float:
    return os.getloadavg()[0] / (os.cpu_count() or 1)


def heatmap_counts(app: Any) -> tuple[float, float]:
    """(heatmap requests answered, of which from the response cache) by the app so far."""
    registry = app.state.graphql.metrics.registry
    requests = registry.get_sample_value(
        "liqmap_graphql_requests_total", {"operation": "heatmap", "outcome": "ok"}
    )
    hits = registry.get_sample_value(
        "liqmap_graphql_response_cache_hits_total", {"operation": "heatmap"}
    )
    return requests or 0.0, hits or 0.0


GRAPHQL_ENTRIES = """() => performance.getEntriesByType('resource')
  .filter((e) => new URL(e.name).pathname === '/graphql')
  .map((e) => ({
    heatmap: new URL(e.name).searchParams.get('query')?.includes('query Heatmap') ?? false,
    initiator: e.initiatorType, start: e.startTime, end: e.responseEnd,
  }))"""


async def test_the_pages_first_heatmap_is_preloaded(browser: Any, viewer_data: ViewerData) -> None:
    """The page names its first heatmap as a GET address it preloads (api/viewer/first_view.py
    derives the variables first.js would send): the browser requests it while it reads the
    page's head, first.js's fetch of the same address is answered from that request, and the
    server computes that heatmap once. An address whose first heatmap the server does not
    derive (a fixed resolution) is loaded as before: one POST from the page."""
    app = build_app(viewer_data.engine, viewer_data.url)
    try:
        async with LiveServer(app) as server:
            for address, preloaded in (
                ("/?range=7d&axis=full", True),
                ("/?symbol=BTC/USDT:USDT&exchanges=binanceusdm", True),
                ("/?range=7d&res=ONE_HOUR", False),
            ):
                app.state.graphql.responses.clear()
                app.state.graphql.columns.clear()
                before = heatmap_counts(app)
                context = await browser.new_context(viewport={"width": 1600, "height": 1000})
                try:
                    page = await context.new_page()
                    await page.goto(server.url + address)
                    await wait_drawn(page)
                    entries = await page.evaluate(GRAPHQL_ENTRIES)
                finally:
                    await context.close()
                # the preload is the page's first GraphQL request, and the only one of the
                # heatmap; without it the page asks by POST (no query in the address)
                assert entries[0]["heatmap"] is preloaded, (address, entries)
                assert entries[0]["initiator"] == ("link" if preloaded else "fetch"), entries
                assert sum(e["heatmap"] for e in entries) == (1 if preloaded else 0), entries
                requests, hits = (a - b for a, b in zip(heatmap_counts(app), before, strict=True))
                assert (requests, hits) == (1.0, 0.0), address  # computed once, never twice
    finally:
        await app.state.hub.close()


async def test_first_paint_of_a_cold_24h_view(
    browser: Any, viewer_data: ViewerData, capsys: Any
) -> None:
    """From navigation start to the heatmap on screen, for a view nobody has asked for: each
    time in a new browser context (nothing cached in the browser) against a running server whose
    response and column caches are emptied first (the heatmap is read from PostgreSQL and
    computed). The first load right after the server started (its pool, schema and code paths
    all cold) is measured and reported apart: the budget is for a running service. The 0.5 s
    budget is checked when the machine is quiet (1-minute load below 1 per core, as
    docs/performance.md asks of every figure); on a busy shared machine only a guard is, and
    the test says so."""
    runs = []
    load_before = machine_load_per_core()
    app = build_app(viewer_data.engine, viewer_data.url)
    try:
        async with LiveServer(app) as server:
            for _ in range(4):
                app.state.graphql.responses.clear()
                app.state.graphql.columns.clear()
                counted = heatmap_counts(app)
                context = await browser.new_context(
                    viewport={"width": 1600, "height": 1000}, device_scale_factor=1
                )
                try:
                    page = await context.new_page()
                    await page.goto(f"{server.url}/")
                    await page.wait_for_function(
                        "performance.getEntriesByName('liqmap:first-paint').length > 0",
                        timeout=15_000,
                    )
                    total = await page.evaluate(
                        "performance.getEntriesByName('liqmap:first-paint')[0].duration"
                    )
                    entries = await page.evaluate(GRAPHQL_ENTRIES)
                    assert await page.get_attribute("#heatmap", "data-columns") == "288"
                    # the limits and the newest map came in the page, which names the heatmap
                    # for the browser to preload: it is the page's first GraphQL request, and
                    # the only one of the heatmap (first.js's fetch is answered from it)
                    assert entries[0]["heatmap"] and entries[0]["initiator"] == "link", entries
                    assert sum(e["heatmap"] for e in entries) == 1, entries
                    requests, hits = heatmap_counts(app)
                    assert (requests - counted[0], hits - counted[1]) == (1.0, 0.0), entries
                    runs.append(
                        {"total": total, "sent": entries[0]["start"], "answered": entries[0]["end"]}
                    )
                finally:
                    await context.close()
    finally:
        await app.state.hub.close()
    started, cold = runs[0], runs[1:]
    load = max(load_before, machine_load_per_core())
    total = statistics.median(r["total"] for r in cold)
    quiet = load < 1
    each = ", ".join(f"{r['total']:.0f}" for r in cold)
    sent = statistics.median(r["sent"] for r in cold)
    answered = statistics.median(r["answered"] for r in cold)
    verdict = "checked against 0.5 s" if quiet else "busy machine, 0.5 s not checked"
    with capsys.disabled():
        print(
            f"\nfirst paint of a cold 24 h view: median {total:.0f} ms ({each} ms; heatmap "
            f"preloaded at {sent:.0f} ms, answered at {answered:.0f} ms; just after "
            f"the server started {started['total']:.0f} ms); load {load:.2f} per core: "
            f"{verdict}"
        )
    assert started["total"] <= BUSY_GUARD_MS, started
    assert total <= BUSY_GUARD_MS, runs
    if quiet:
        assert total <= FIRST_PAINT_BUDGET_MS, runs


KNOWN_RGB = (0xFA, 0xCC, 0x15)


def expected_known_bins(line: dict[str, Any], map_price: float, low: float, high: float) -> int:
    """From the recorded file itself: the BTC bins with USD (long or short) whose price range,
    moved to the map's price (each bin keeps its distance from the file's currentPrice), meets
    [low, high]. The file's bins are 50 over currentPrice ± 30 %, price = the bin's centre."""
    btc = line["data"]["BTC"]
    price = float(btc["currentPrice"])
    width = price * 0.6 / 50
    centres = {
        float(level["price"])
        for key in ("longLiquidations", "shortLiquidations")
        for level in btc[key]
        if float(level["value"]) > 0
    }
    anchor = map_price / price
    return sum(
        1 for c in centres if (c + width / 2) * anchor > low and (c - width / 2) * anchor < high
    )


async def test_real_positions_overlay_draws_the_recorded_levels(
    page: Any, viewer_server: LiveServer, viewer_data: ViewerData, shared_data: Any
) -> None:
    """#18: the known levels (Hyperliquid's recorded top traders, January) on the model map of
    June: the newest reading before the map, each bin at its distance from that reading's
    price, outlined in its own colour on the map panel, with who and when in the note."""
    from tests.api.pipeline import read_known_levels

    await page.goto(f"{viewer_server.url}/?range=24h&overlays=known")
    await wait_drawn(page)
    await page.wait_for_function(
        "'known' in JSON.parse(document.querySelector('#map').dataset.overlays || '{}')"
    )
    drawn = await overlays_drawn(page, "#map")
    assert set(drawn) == {"known"}
    assert "known" not in await overlays_drawn(page)  # the map panel's layer only
    low = float(await page.get_attribute("#heatmap", "data-price-min") or "nan")
    high = float(await page.get_attribute("#heatmap", "data-price-max") or "nan")
    at_ms = int(await page.get_attribute("#map-at", "data-at-ms") or "0")
    query = """query ($at: DateTime) { liquidationLevels(symbol: "BTC/USDT:USDT", at: $at)
      { price } }"""
    async with httpx.AsyncClient(base_url=viewer_server.url) as client:
        at = datetime.fromtimestamp(at_ms / 1000, UTC).isoformat()
        body = (
            await client.post("/graphql", json={"query": query, "variables": {"at": at}})
        ).json()
    map_price = body["data"]["liquidationLevels"]["price"]
    newest = read_known_levels(shared_data)[-1]  # all 34 readings are older than June's maps
    assert drawn["known"] == expected_known_bins(newest, map_price, low, high) > 0
    note = await page.text_content('#overlay-list label[data-overlay="known"]') or ""
    assert "hyperliquid" in note and newest["lastUpdated"][:10] in note
    assert "drawn at their distance from its price" in note and "not the market" in note
    rgb = await canvas_rgb(page, "#map")
    assert int((np.abs(rgb - KNOWN_RGB).sum(axis=2) <= 30).sum()) > 20  # outlines on screen
    await page.click("#overlay-known")  # off
    await page.wait_for_function(
        "!('known' in JSON.parse(document.querySelector('#map').dataset.overlays || '{}'))"
    )
    rgb = await canvas_rgb(page, "#map")
    assert int((np.abs(rgb - KNOWN_RGB).sum(axis=2) <= 30).sum()) == 0
