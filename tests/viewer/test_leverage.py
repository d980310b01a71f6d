"""The leverage-band control in a real browser: reached and toggled with the keyboard, it
redraws the heatmap with the chosen bands' stored USD and the map panel with their levels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from tests.api.conftest import LiveServer
from tests.viewer.conftest import ViewerData, grid_matrix
from tests.viewer.test_browser import (
    BUCKET,
    ROWS,
    _gql_requests,
    _heatmaps,
    _query_of,
    canvas_rgb,
    classify_cells,
    latest,
    plot_box,
    price_window,
    wait_drawn,
)

HIGH = ["FROM_50X_TO_100X", "ABOVE_100X"]


async def test_the_leverage_control_draws_only_the_chosen_bands(
    page: Any, viewer_server: LiveServer, viewer_data: ViewerData
) -> None:
    _, price = await latest(viewer_data)
    low, high = price_window(price)
    sent = _gql_requests(page)
    await page.goto(f"{viewer_server.url}/?range=12h&res=FIVE_MINUTES&pmin={low:g}&pmax={high:g}")
    drawn = await wait_drawn(page)
    start = datetime.fromisoformat(await page.get_attribute("#heatmap", "data-start"))
    end = datetime.fromisoformat(await page.get_attribute("#heatmap", "data-end"))
    whole_max = float(await page.get_attribute("#legend", "data-max"))
    whole_map_long = float(await page.get_attribute("#map", "data-long-usd"))
    assert _heatmaps(sent)[-1].get("leverage") is None  # every band: no filter sent

    # a labelled group of five checkboxes, all checked; reached and toggled with the keyboard
    group = page.get_by_role("group", name="leverage bands")
    boxes = group.get_by_role("checkbox")
    assert await boxes.count() == 5
    assert all([await boxes.nth(i).is_checked() for i in range(5)])
    await page.get_by_role("checkbox", name="≤ 10x").focus()
    for name in ("≤ 10x", "10–25x", "25–50x"):
        focused = await page.evaluate("document.activeElement.parentElement.textContent")
        assert focused == name
        await page.keyboard.press("Space")  # uncheck: the view reloads
        drawn = await wait_drawn(page, drawn)
        await page.keyboard.press("Tab")  # on to the next band
    assert _query_of(page.url)["leverage"] == [",".join(HIGH)]
    assert _heatmaps(sent)[-1]["leverage"] == HIGH

    # the drawn heatmap is the high bands' stored USD: painted where they hold USD, and the
    # colour scale tops at their largest cell (long + short, as float32 the page sums)
    rows = await viewer_data.band_snapshots("all", "5m", start, end, [3, 4])
    assert len(rows) == 144
    long_m, short_m = grid_matrix(rows, round(low / BUCKET), ROWS)
    stored = (long_m + short_m) > 0
    painted = classify_cells(await canvas_rgb(page), await plot_box(page), ROWS, 144)
    seen = painted >= 0
    assert seen.mean() > 0.95
    agree = (painted == stored.astype(int))[seen].mean()
    assert agree > 0.995, agree
    band_max = float((long_m.astype(np.float32) + short_m.astype(np.float32)).max())
    legend_max = float(await page.get_attribute("#legend", "data-max"))
    assert legend_max == np.float32(band_max) or abs(legend_max / band_max - 1) < 1e-6
    assert 0 < legend_max < whole_max
    # far from the price the high bands hold nothing: fewer rows painted than the whole map
    assert stored.any(axis=1).sum() < ROWS

    # the map panel shows the same bands: its bars' long USD is their sum at the map's time
    await page.wait_for_function(
        "(w) => Number(document.querySelector('#map').dataset.longUsd) < w",
        arg=whole_map_long,
        timeout=15_000,
    )
    map_long = float(await page.get_attribute("#map", "data-long-usd"))
    last_long, _ = grid_matrix(rows[-1:], round(low / BUCKET), ROWS)
    assert abs(map_long / float(last_long.sum()) - 1) < 1e-6
    # the API made that map of the two bands, and its whole-map totals and max pain too
    details = [s for s in sent if "query Details" in s["query"]]
    assert details[-1]["variables"]["leverage"] == HIGH

    # checking the bands again is the whole map: no filter, the first picture's scale
    for name in ("≤ 10x", "10–25x", "25–50x"):
        await page.get_by_role("checkbox", name=name).press("Space")
        drawn = await wait_drawn(page, drawn)
    assert "leverage" not in _query_of(page.url)
    assert _heatmaps(sent)[-1].get("leverage") is None
    assert float(await page.get_attribute("#legend", "data-max")) == whole_max
