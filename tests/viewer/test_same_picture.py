"""The page and `liqmap render` draw from one source: in the real browser (headless chromium),
what the page's modules loaded is what the Python side reads, and for the same view the page's
canvas and the PNG paint every heatmap cell in the same colour, the one the shared scale gives
the USD stored there (read back with plain SQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
from PIL import Image

from api.viewer.colormap import colour_index, legend_caption, legend_ticks, lut, scale
from api.viewer.labels import age, time_ticks, usd
from api.viewer.shared import documents, style
from cli.render import cell_values
from tests.api.conftest import LiveServer
from tests.viewer.conftest import SYMBOL, ViewerData, cell_pixels, colour_indices, graphql_body
from tests.viewer.test_browser import canvas_rgb, plot_box, wait_drawn
from tests.viewer.test_render import (
    BUCKET,
    ROWS,
    png_box,
    render,
    render_window,
    stored_cells,
    window,
)

# values where rounding and unit boundaries are easy to get wrong
USD_VALUES = [0, 0.5, 1.5, 2.5, 999.4, 999.5, 1000, 1250, 1350, 99_950, 999_950, 1_250_000]
USD_VALUES += [-5, -1250, 2.25e6, 9.995e8, 1e9, 1.005e9, 123_456_789_012.0]


async def test_page_modules_load_what_render_reads(page: Any, viewer_server: LiveServer) -> None:
    sent: list[str] = []

    def record(request: Any) -> None:
        if (body := graphql_body(request)) is not None:
            sent.append(body["query"])

    page.on("request", record)
    await page.goto(f"{viewer_server.url}/")
    await wait_drawn(page)
    rng = np.random.default_rng(7)
    points = [0, 1e-12, 1e-3, 0.01, 0.25, 0.5, 1]
    x = np.concatenate([points, rng.random(2000), rng.random(500) ** 6])
    t = np.linspace(0, 1, 101)
    hours = (1, 12, 24, 72, 720, 2160, 8760, 9288)  # up to 387 days
    spans = [(1_782_000_000, 3600 * h, width) for h in hours for width in (274, 1450)]
    spans += [(1_798_700_000, 86_400, 1000), (1_580_000_000, 2300 * 86_400, 800)]  # new year
    # the same modules the page runs (a dynamic import returns the loaded module instance)
    loaded = await page.evaluate(
        """async ({x, t, usdValues, ages, spans, maxima}) => {
          const shared = await import("/viewer/shared.js");
          const colormap = await import("/viewer/colormap.js");
          const format = await import("/viewer/format.js");
          const scales = {};
          for (const [name, s] of Object.entries(colormap.SCALES)) {
            const inv = 1 / 1000;
            scales[name] = {
              forward: x.map(s.forward),
              inverse: t.map(s.inverse),
              index: x.map((v) => colormap.colourIndex(v * 1000, inv, s.forward)),
              legend: maxima.map((m) => colormap.legendTicks(m, name).map((k) => [k.t, k.label])),
            };
          }
          const root = getComputedStyle(document.documentElement);
          return {
            style: shared.STYLE,
            documents: shared.DOCUMENTS,
            lut: colormap.LUT,
            scales,
            captions: ["both", "long", "short"].map((side) => colormap.legendCaption(side, "log")),
            usd: usdValues.map(format.usd),
            ages: ages.map(format.age),
            ticks: spans.map(([start, span, w]) =>
              format.timeTicks(start * 1000, (start + span) * 1000, w, 28, 74).map(
                (k) => [k.t / 1000, k.label, k.major])),
            css: Object.fromEntries(
              Object.keys(shared.STYLE.colours).map((k) => [
                k, root.getPropertyValue(`--${k.replaceAll("_", "-")}`).trim()])),
          };
        }""",
        {
            "x": x.tolist(),
            "t": t.tolist(),
            "usdValues": USD_VALUES,
            "ages": [0, 45, 89.5, 90, 5399, 7200, 3 * 86400],
            "spans": spans,
            "maxima": [0, 1234.5, 4e6, 2e9],
        },
    )
    assert loaded["style"] == style()
    assert loaded["documents"] == documents()
    np.testing.assert_array_equal(np.array(loaded["lut"]), lut())
    # the colours the page's CSS uses are viewer.json's
    assert loaded["css"] == style()["colours"]
    for name, got in loaded["scales"].items():
        python = scale(name)
        # to the last bit or two: V8's Math.log10 and libm's log10 may differ by an ulp
        np.testing.assert_allclose(got["forward"], python.forward(x), rtol=5e-15, atol=0)
        np.testing.assert_allclose(got["inverse"], python.inverse(t), rtol=5e-15, atol=0)
        np.testing.assert_array_equal(got["index"], colour_index(x * 1000, python, 1000.0))
        assert got["legend"] == [
            [list(tick) for tick in legend_ticks(m, python)] for m in (0, 1234.5, 4e6, 2e9)
        ]
    sides = ("both", "long", "short")
    assert loaded["captions"] == [legend_caption(side, scale("log")) for side in sides]
    assert loaded["usd"] == [usd(v) for v in USD_VALUES]
    assert loaded["ages"] == [age(s) for s in (0, 45, 89.5, 90, 5399, 7200, 3 * 86400)]
    assert loaded["ticks"] == [
        [[k.t, k.label, k.major] for k in time_ticks(start, start + span, w, 28, 74)]
        for start, span, w in spans
    ]
    # and every document the page sent is one of the shared files, byte for byte
    shared = {text: name for name, text in documents().items()}
    assert all(text in shared for text in sent)
    # (limits and latest come answered in the page: test_assets.py checks that those are
    # /graphql's answers to the shared documents)
    assert {shared[text] for text in sent} >= {"catalogue", "heatmap", "details"}


@pytest.mark.parametrize(("scale_name", "side"), [("log", "both"), ("sqrt", "short")])
async def test_page_and_png_paint_every_cell_alike(
    page: Any,
    viewer_server: LiveServer,
    viewer_data: ViewerData,
    tmp_path: Path,
    scale_name: str,
    side: str,
) -> None:
    start, end = await window(viewer_data)
    low, long_m, short_m = await stored_cells(viewer_data, start, end)
    values = cell_values(long_m, short_m, side)
    expected = colour_index(values, scale(scale_name)).astype(int)

    view = {
        "symbol": SYMBOL,
        "range": "custom",
        "start": round(start.timestamp() * 1000),
        "end": round(end.timestamp() * 1000),
        "res": "FIVE_MINUTES",
        "pmin": f"{low:g}",
        "pmax": f"{low + ROWS * BUCKET:g}",
        "scale": scale_name,
        "side": side,
    }
    await page.goto(f"{viewer_server.url}/?{urlencode(view)}")
    await wait_drawn(page)
    assert await page.get_attribute("#heatmap", "data-rows") == str(ROWS)
    assert await page.get_attribute("#heatmap", "data-columns") == "288"
    canvas = await canvas_rgb(page)
    on_page = colour_indices(cell_pixels(canvas, await plot_box(page), ROWS, 288), lut())

    out = tmp_path / "heatmap.png"
    await render_window(viewer_data, out, low, scale_name, side)
    image = Image.open(out)
    rgb = np.asarray(image.convert("RGB"))
    in_png = colour_indices(cell_pixels(rgb, png_box(out), ROWS, 288), lut())

    both_seen = (on_page >= 0) & (in_png >= 0)  # neither under a candle or the price line
    assert both_seen.mean() > 0.85
    same = (on_page == in_png)[both_seen].mean()
    assert same > 0.999, same
    for painted in (on_page, in_png):
        seen = painted >= 0
        assert (painted == expected)[seen].mean() > 0.999
    # one legend: the same top value, ticks and labels, and the caption of the shared template
    legend_max = float(await page.get_attribute("#legend", "data-max"))
    assert legend_max == float(image.text["liqmap:max"]) == float(values.max())
    page_ticks = json.loads(await page.get_attribute("#legend", "data-ticks"))
    assert [[k["t"], k["label"]] for k in page_ticks] == json.loads(image.text["liqmap:legend"])
    assert await page.text_content("#legend-label") == legend_caption(side, scale(scale_name))


async def test_realized_bars_are_chosen_alike(page: Any, viewer_server: LiveServer) -> None:
    """The page's overlays.js and api/viewer/overlays.py pick the same source per bar, the same
    bar length and the same columns, on rows made to hit every rule."""
    from api.viewer.overlays import realized_bars

    def row(ts: str, tf: str, source: str, exchange: str, lo: float, sh: float) -> dict[str, Any]:
        return {
            "start": ts,
            "timeframe": tf,
            "source": source,
            "exchange": exchange,
            "longUsd": lo,
            "shortUsd": sh,
            "lowerBound": False,
        }

    rows = [
        row("2026-06-01T00:00:00+00:00", "30m", "coinglass", "*", 5e6, 1e6),
        row("2026-06-01T00:30:00+00:00", "30m", "coinglass", "*", 2e6, 3e6),
        row("2026-06-01T00:30:00+00:00", "30m", "aardvark", "*", 9e6, 9e6),  # first by name
        row("2026-06-01T01:00:00+00:00", "30m", "coinglass", "*", 0.0, 4e6),
        row("2026-06-01T00:00:00+00:00", "5m", "binance-forceorder", "binanceusdm", 1e5, 0.0),
        row("2026-06-01T00:05:00+00:00", "5m", "binance-forceorder", "binanceusdm", 2e5, 1e4),
        row("2026-06-01T00:05:00+00:00", "5m", "bybit-stream", "bybit", 3e5, 2e4),
        row("2026-06-01T00:10:00+00:00", "5m", "bybit-stream", "bybit", 0.0, 5e4),
        row("2026-06-01T02:00:00+00:00", "1h", "other", "bybit", 7e5, 7e5),
    ]
    await page.goto(f"{viewer_server.url}/?range=24h&overlays=")
    await wait_drawn(page)
    cases = [(True, 300_000), (True, 3_600_000), (False, 300_000), (False, 900_000)]
    from_page = await page.evaluate(
        """async ({rows, cases}) => {
          const o = await import('/viewer/overlays.js');
          return cases.map(([aggregate, stepMs]) => {
            const r = o.realizedBars(rows, {aggregate, stepMs});
            return {bars: r.bars.map(b => [b.t0, b.t1, b.long, b.short]), max: r.max,
                    sources: r.sources, timeframe: r.timeframe ?? null};
          });
        }""",
        {"rows": rows, "cases": cases},
    )
    for (aggregate, step), got in zip(cases, from_page, strict=True):
        mine = realized_bars(rows, aggregate=aggregate, step_ms=step)
        assert got == {
            "bars": [[b.t0, b.t1, b.long, b.short] for b in mine.bars],
            "max": mine.max,
            "sources": mine.sources,
            "timeframe": mine.timeframe,
        }, (aggregate, step)
    # by hand: the cross-exchange view reads the multi-venue total, aardvark's bar at 00:30
    total = realized_bars(rows, aggregate=True, step_ms=3_600_000)
    assert [(b.long, b.short) for b in total.bars] == [(5e6 + 9e6, 1e6 + 9e6), (0.0, 4e6)]
    # per exchange: the 5-minute bars (most rows), summed over exchanges per 15-minute column
    venues = realized_bars(rows, aggregate=False, step_ms=900_000)
    assert venues.timeframe == "5m"
    assert [(b.long, b.short) for b in venues.bars] == [(1e5 + 2e5 + 3e5, 1e4 + 2e4 + 5e4)]


async def test_page_and_png_draw_the_same_overlays(
    page: Any, viewer_server: LiveServer, viewer_data: ViewerData, tmp_path: Path
) -> None:
    end = datetime.fromtimestamp(viewer_data.cut_ms / 1000, UTC)
    start = end - timedelta(days=30)
    every = "realized,swept,clusters,maxpain"
    view = {
        "symbol": SYMBOL,
        "range": "custom",
        "start": round(start.timestamp() * 1000),
        "end": round(end.timestamp() * 1000),
        "res": "ONE_HOUR",
        "overlays": every,
    }
    await page.goto(f"{viewer_server.url}/?{urlencode(view)}")
    await wait_drawn(page)
    await page.wait_for_function(
        "Object.keys(JSON.parse(document.querySelector('#heatmap').dataset.overlays || '{}'))"
        ".length === 4"
    )
    on_page = json.loads(await page.get_attribute("#heatmap", "data-overlays"))
    out = tmp_path / "overlays.png"
    code = await render(viewer_data, start, end, out, "--resolution", "1h", "--overlays", every)
    assert code == 0
    in_png = json.loads(Image.open(out).text["liqmap:overlays"])
    assert in_png == on_page and on_page["realized"] > 100 and on_page["clusters"] == 5
