"""`liqmap render` over what the real jobs stored: image size, the brightest band (or the
longest bar) at the largest stored bucket, and every cell in the colour the shared scale gives
the USD stored there, found with plain SQL."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from api.viewer.colormap import colour_index, legend_ticks, scale
from api.viewer.shared import style
from cli.main import main
from cli.render import cell_values
from tests.viewer.conftest import SYMBOL, ViewerData, cell_pixels, colour_indices, grid_matrix

# matplotlib's inferno rounded to bytes: the table the PNG must paint with (independently of
# viewer.json, which tests/viewer/test_shared.py holds to the same)
LUT = np.round(colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).astype(int)
BUCKET = 50.0
ROWS = 200


def lut_index(rgb: np.ndarray) -> np.ndarray:
    """Index of every pixel's colour in the colour map, -1 where it is not one of them."""
    table = np.full(1 << 24, -1, np.int16)
    table[LUT[:, 0] << 16 | LUT[:, 1] << 8 | LUT[:, 2]] = np.arange(256)
    return table[rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]]


def plot_geometry(path: Path) -> tuple[tuple[float, ...], tuple[float, float], tuple[float, float]]:
    info = Image.open(path).text
    box = tuple(float(v) for v in info["liqmap:plot"].split(","))
    p0, p1 = (float(v) for v in info["liqmap:price"].split(","))
    x0, x1 = (float(v) for v in info["liqmap:x"].split(","))
    return box, (p0, p1), (x0, x1)


async def cli(*args: str, url: str) -> int:
    """The real command line, in a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(main, [args[0], "--database-url", url, *args[1:]])


async def window(viewer_data: ViewerData) -> tuple[datetime, datetime]:
    """The 24 h before the held-back hour (unaffected by the live-update test)."""
    end = datetime.fromtimestamp(viewer_data.cut_ms / 1000, UTC)
    return end - timedelta(hours=24), end


async def render(
    viewer_data: ViewerData, start: datetime, end: datetime, out: Path, *options: str
) -> int:
    """`liqmap render` of the tests' symbol over [start, end] with these options, into out."""
    return await cli(
        "render",
        "--symbol",
        SYMBOL,
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        *options,
        "-o",
        str(out),
        url=viewer_data.url,
    )


async def test_heatmap_png_is_brightest_at_the_largest_stored_bucket(
    viewer_data: ViewerData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start, end = await window(viewer_data)
    rows = await viewer_data.snapshots("all", "5m", start, end)
    assert len(rows) == 288
    first = min(round(r.bucket_origin / r.bucket_size) for r in rows)
    last = max(round(r.bucket_origin / r.bucket_size) + len(r.long_usd) for r in rows)
    long_m, short_m = grid_matrix(rows, first, last - first)
    both = long_m + short_m
    row, column = np.unravel_index(both.argmax(), both.shape)

    out = tmp_path / "heatmap.png"
    code = await render(
        viewer_data,
        start,
        end,
        out,
        "--resolution",
        "5m",
        "--price-min",
        str(first * 50.0),
        "--price-max",
        str(last * 50.0),
    )
    assert code == 0
    # the total covers the venues with maps: Binance (Bybit has no open interest)
    assert "all exchanges (binanceusdm)" in capsys.readouterr().out
    image = Image.open(out)
    assert image.size == (1600, 900)
    assert image.text["Title"].startswith(f"{SYMBOL} · all exchanges")

    (left, top, right, bottom), (p0, p1), (t0, t1) = plot_geometry(out)
    assert (p0, p1) == (first * 50.0, last * 50.0)
    assert (t0, t1) == (start.timestamp(), end.timestamp())
    y_lo, y_hi, x_lo, x_hi = int(top) + 1, int(bottom) - 1, int(left) + 1, int(right) - 1
    rgb = np.asarray(image.convert("RGB")).astype(int)[y_lo:y_hi, x_lo:x_hi]
    index = lut_index(rgb)
    assert (index >= 0).mean() > 0.9  # the panel is the colour map, but for candles and lines
    heat = index == index.max()
    assert index.max() >= 254
    ys, xs = np.nonzero(heat)
    # pixel centre → cell (row 0 at the bottom of the axes)
    up = 1 - (ys + y_lo + 0.5 - top) / (bottom - top)
    across = (xs + x_lo + 0.5 - left) / (right - left)
    cell_rows = np.clip((up * both.shape[0]).astype(int), 0, both.shape[0] - 1)
    cell_cols = np.clip((across * both.shape[1]).astype(int), 0, both.shape[1] - 1)
    values = both[cell_rows, cell_cols]
    # every brightest pixel lies on a cell within 1 % of the largest, and the largest is lit
    assert (values >= 0.99 * both.max()).mean() > 0.98
    assert ((np.abs(cell_rows - row) <= 1) & (np.abs(cell_cols - column) <= 1)).any()


async def test_map_png_has_its_longest_bar_at_the_largest_bucket(
    viewer_data: ViewerData, tmp_path: Path
) -> None:
    start, end = await window(viewer_data)
    bar = end - timedelta(minutes=5)
    (snap,) = await viewer_data.snapshots("all", "5m", bar, end)
    long_usd = np.asarray(snap.long_usd, float)
    short_usd = np.asarray(snap.short_usd, float)
    larger = np.maximum(long_usd, short_usd)
    biggest = int(larger.argmax())
    # far from the price a v2 map stores graded buckets, read back as a run of equal grid
    # buckets: every bucket of the largest run is "the largest bucket"
    run = np.flatnonzero(larger >= larger[biggest] * (1 - 1e-12))
    assert np.all(np.diff(run) == 1)  # one run
    biggest_price = snap.bucket_origin + run[0] * snap.bucket_size
    last_price = snap.bucket_origin + run[-1] * snap.bucket_size

    out = tmp_path / "map.png"
    code = await render(
        viewer_data,
        start,
        end,
        out,
        "--kind",
        "map",
        "--overlays",
        "none",  # the bars alone: max pain's line is drawn in a side's colour across the panel
        "--width",
        "1200",
        "--height",
        "1000",
    )
    assert code == 0
    image = Image.open(out)
    assert image.size == (1200, 1000)
    assert "liquidation map at " + bar.strftime("%Y-%m-%d") in image.text["Title"]
    (left, top, right, bottom), (p0, p1), (_, usd_max) = plot_geometry(out)
    assert p0 == snap.bucket_origin and p1 == snap.bucket_origin + len(long_usd) * snap.bucket_size
    rgb = np.asarray(image.convert("RGB")).astype(int)[int(top) : int(bottom), int(left) :]
    # the long and short colours at the bars' alpha over the panel, as the page draws them
    alpha, panel = style()["map"]["bar_alpha"], _rgb(style()["colours"]["panel"])
    bar_colours = np.array(
        [alpha * _rgb(style()["colours"][side]) + (1 - alpha) * panel for side in ("long", "short")]
    )
    is_bar = (np.abs(rgb[:, :, None, :] - bar_colours[None, None]).sum(axis=3) < 30).any(axis=2)
    reach = np.where(is_bar.any(axis=1), is_bar.shape[1] - np.argmax(is_bar[:, ::-1], axis=1), 0)
    y = int(np.argmax(reach))
    price = p1 - (y + 0.5) / (bottom - top) * (p1 - p0)
    assert biggest_price - snap.bucket_size <= price <= last_price + 2 * snap.bucket_size
    # and the bar is as long as the bucket's USD on the axis
    usd = reach[y] / (right - left) * usd_max
    assert usd == pytest.approx(max(long_usd[biggest], short_usd[biggest]), rel=0.01)


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[k : k + 2], 16) for k in (1, 3, 5)], float)


def png_box(path: Path) -> tuple[float, float, float, float]:
    """The data panel of a rendered PNG as x0, y0, width, height (pixels, top = 0)."""
    (left, top, right, bottom), _, _ = plot_geometry(path)
    return left, top, right - left, bottom - top


async def stored_cells(
    viewer_data: ViewerData, start: datetime, end: datetime
) -> tuple[float, np.ndarray, np.ndarray]:
    """ROWS rows of BUCKET USD around the window's last price; the stored long and short USD
    per cell (float32, as the API sends them), read with plain SQL."""
    rows = await viewer_data.snapshots("all", "5m", start, end)
    assert len(rows) == 288
    low = math.floor((rows[-1].price - ROWS * BUCKET / 2) / BUCKET) * BUCKET
    long_m, short_m = grid_matrix(rows, round(low / BUCKET), ROWS)
    return low, long_m.astype(np.float32), short_m.astype(np.float32)


async def render_window(
    viewer_data: ViewerData, out: Path, low: float, scale_name: str, side: str
) -> None:
    start, end = await window(viewer_data)
    code = await render(
        viewer_data,
        start,
        end,
        out,
        "--resolution",
        "5m",
        "--price-min",
        f"{low:g}",
        "--price-max",
        f"{low + ROWS * BUCKET:g}",
        "--scale",
        scale_name,
        "--side",
        side,
    )
    assert code == 0


@pytest.mark.parametrize(("scale_name", "side"), [("log", "both"), ("linear", "short")])
async def test_heatmap_png_paints_every_cell_with_the_shared_scale(
    viewer_data: ViewerData, tmp_path: Path, scale_name: str, side: str
) -> None:
    start, end = await window(viewer_data)
    low, long_m, short_m = await stored_cells(viewer_data, start, end)
    values = cell_values(long_m, short_m, side)
    expected = colour_index(values, scale(scale_name)).astype(int)
    assert len(np.unique(expected)) > 50  # many colours to tell apart, not just a few

    out = tmp_path / "heatmap.png"
    await render_window(viewer_data, out, low, scale_name, side)
    image = Image.open(out)
    assert image.text["liqmap:price"] == f"{low!r},{low + ROWS * BUCKET!r}"
    rgb = np.asarray(image.convert("RGB"))
    painted = colour_indices(cell_pixels(rgb, png_box(out), ROWS, 288), LUT)
    seen = painted >= 0  # not under a candle or the price line
    assert seen.mean() > 0.9
    agree = (painted == expected)[seen].mean()
    assert agree > 0.999, agree
    # the colour bar is labelled with the shared legend for the largest cell
    assert float(image.text["liqmap:max"]) == float(values.max())
    assert json.loads(image.text["liqmap:legend"]) == [
        list(tick) for tick in legend_ticks(float(values.max()), scale(scale_name))
    ]


async def test_render_refuses_bad_input_with_one_line_and_no_file(
    viewer_data: ViewerData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start, end = await window(viewer_data)
    cases = [
        (("--symbol", "DOGE/USDT:USDT", "--start", start.isoformat()), "unknown symbol"),
        (
            ("--symbol", SYMBOL, "--start", end.isoformat(), "--end", start.isoformat()),
            "--end must be after --start",
        ),
        (
            ("--symbol", SYMBOL, "--start", "2020-01-01", "--end", "2020-01-02"),
            "no liquidation data",
        ),
    ]
    for args, expected in cases:
        out = tmp_path / "x.png"
        assert await cli("render", *args, "-o", str(out), url=viewer_data.url) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("liqmap: error: ") and expected in err and "\n" not in err, err
        assert list(tmp_path.iterdir()) == []
    assert (
        await cli(
            "render",
            "--symbol",
            SYMBOL,
            "--start",
            start.isoformat(),
            "-o",
            str(tmp_path / "missing" / "x.png"),
            url=viewer_data.url,
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


async def test_map_png_marks_the_walls_and_max_pain_the_api_reports(
    viewer_data: ViewerData, viewer_app: Any, tmp_path: Path
) -> None:
    """--kind map with the overlays: as many walls and max pain marks as the API reports for
    that map, and an unknown overlay name is one line, exit 2, no file."""
    start, end = await window(viewer_data)
    out = tmp_path / "map.png"
    overlays = ("--overlays", "clusters,maxpain")
    code = await render(viewer_data, start, end, out, "--kind", "map", *overlays)
    assert code == 0
    drawn = json.loads(Image.open(out).text["liqmap:overlays"])
    query = """query ($at: DateTime) { liquidationLevels(symbol: "BTC/USDT:USDT", at: $at) {
      clusters(limit: 5) { side } maxPainLong { price } maxPainShort { price } } }"""
    transport = httpx.ASGITransport(app=viewer_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://viewer.test") as client:
        payload = {"query": query, "variables": {"at": end.isoformat()}}
        body = (await client.post("/graphql", json=payload)).json()
    m = body["data"]["liquidationLevels"]
    pains = [p for p in (m["maxPainLong"], m["maxPainShort"]) if p]
    assert drawn == {"clusters": len(m["clusters"]), "maxpain": len(pains)}
    assert drawn["clusters"] == 5 and drawn["maxpain"] == 2
    bad = tmp_path / "bad.png"
    assert await render(viewer_data, start, end, bad, "--overlays", "walls") == 2
    assert not bad.exists()


async def test_map_png_outlines_the_real_positions_as_the_page_does(
    viewer_data: ViewerData, viewer_app: Any, tmp_path: Path, shared_data: Path
) -> None:
    """--overlays known on a map: the recorded Hyperliquid bins the map's price range meets,
    counted from the file itself (tests/viewer/test_views.py's expected_known_bins)."""
    from tests.api.pipeline import read_known_levels
    from tests.viewer.test_views import expected_known_bins

    start, end = await window(viewer_data)
    out = tmp_path / "known.png"
    code = await render(viewer_data, start, end, out, "--kind", "map", "--overlays", "known")
    assert code == 0
    drawn = json.loads(Image.open(out).text["liqmap:overlays"])
    query = """query ($at: DateTime) { liquidationLevels(symbol: "BTC/USDT:USDT", at: $at) {
      price priceMin priceMax } }"""
    transport = httpx.ASGITransport(app=viewer_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://viewer.test") as client:
        payload = {"query": query, "variables": {"at": end.isoformat()}}
        m = (await client.post("/graphql", json=payload)).json()["data"]["liquidationLevels"]
    newest = read_known_levels(shared_data)[-1]
    expected = expected_known_bins(newest, m["price"], m["priceMin"], m["priceMax"])
    assert drawn == {"known": expected} and expected > 0
    rgb = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert int((np.abs(rgb - (0xFA, 0xCC, 0x15)).sum(axis=2) <= 30).sum()) > 20


async def test_heatmap_png_of_the_high_leverage_bands_paints_their_stored_usd(
    viewer_data: ViewerData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start, end = await window(viewer_data)
    whole_low, whole_long, whole_short = await stored_cells(viewer_data, start, end)
    rows = await viewer_data.band_snapshots("all", "5m", start, end, [3, 4])
    long_m, short_m = grid_matrix(rows, round(whole_low / BUCKET), ROWS)
    values = cell_values(long_m.astype(np.float32), short_m.astype(np.float32), "both")
    expected = colour_index(values, scale("sqrt")).astype(int)
    out = tmp_path / "high.png"
    code = await render(
        viewer_data,
        start,
        end,
        out,
        "--resolution",
        "5m",
        "--price-min",
        f"{whole_low:g}",
        "--price-max",
        f"{whole_low + ROWS * BUCKET:g}",
        "--scale",
        "sqrt",
        "--leverage",
        "51-100,101+",
    )
    assert code == 0
    image = Image.open(out)
    assert image.text["Title"].endswith("· leverage 51-100, 101+")
    painted = colour_indices(
        cell_pixels(np.asarray(image.convert("RGB")), png_box(out), ROWS, 288), LUT
    )
    seen = painted >= 0
    assert seen.mean() > 0.9
    assert (painted == expected)[seen].mean() > 0.99
    # the scale tops at the bands' largest cell (float32 sums of the same stored values)
    top = float(image.text["liqmap:max"])
    assert top == pytest.approx(float(values.max()), rel=1e-6)
    assert top < float((whole_long + whole_short).max())

    # the map at the window's end: its bars are the bands' levels
    out_map = tmp_path / "high-map.png"
    code = await render(
        viewer_data,
        start,
        end,
        out_map,
        "--kind",
        "map",
        "--leverage",
        "51-100,101+",
    )
    assert code == 0
    assert Image.open(out_map).text["Title"].endswith("· leverage 51-100, 101+")
    capsys.readouterr()
    bad = await cli(
        "render",
        "--symbol",
        SYMBOL,
        "--start",
        start.isoformat(),
        "--leverage",
        "5x",
        "-o",
        str(tmp_path / "bad.png"),
        url=viewer_data.url,
    )
    assert bad == 2 and "unknown leverage band '5x'" in capsys.readouterr().err
    assert not (tmp_path / "bad.png").exists()
