"""`liqmap render`: the viewer's pictures as PNG files, drawn with matplotlib (Agg).

The data comes through the public GraphQL schema, executed in process (:mod:`api.viewer.local`),
with the documents the web page sends, and the picture is drawn with what the page draws with:
colours, colour map, scales, legend and axis rules all come from the files the page is served
(api/viewer/static/viewer.json and graphql/, read through :mod:`api.viewer.shared`). For
``--kind map``: the bars per price level with the cumulative long/short curves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from api.viewer.colormap import (
    Scale,
    colour_index,
    legend_caption,
    legend_ticks,
    lut,
    scale,
    scale_names,
)
from api.viewer.labels import age, time_ticks, usd
from api.viewer.local import LocalApi
from api.viewer.shared import colour, document, style

KINDS = ("heatmap", "map")
SIDES = tuple(style()["sides"])
SCALES = scale_names()
INTERVALS: dict[str, str | None] = {
    "auto": None,
    **{i["cli"]: i["id"] for i in style()["intervals"]},
}
DEFAULTS: dict[str, Any] = style()["defaults"]

BACKGROUND = colour("background")
PANEL = colour("panel")
LINE = colour("line")
TEXT = colour("text")
MUTED = colour("muted")
PRICE_LINE = colour(style()["price_line"]["colour"])
PRICE_DASH = (0, tuple(style()["price_line"]["dash"]))
ON_PRICE_LINE = colour("on_accent")
CANDLE_UP = colour("candle_up")
CANDLE_DOWN = colour("candle_down")
CANDLE_BODY = float(style()["candles"]["body"])
LONG_COLOR = colour("long")
SHORT_COLOR = colour("short")
LONG_CUM = colour("long_cumulative")
SHORT_CUM = colour("short_cumulative")
BAR_ALPHA = float(style()["map"]["bar_alpha"])
BAR_REACH = float(style()["map"]["bar_reach"])
CUMULATIVE_REACH = float(style()["map"]["cumulative_reach"])


class RenderError(Exception):
    """Nothing to draw, or the API refused the request: one line for the user."""


@dataclass(frozen=True, slots=True)
class RenderRequest:
    symbol: str
    start: datetime
    end: datetime | None = None
    exchanges: tuple[str, ...] = ()
    kind: str = "heatmap"
    interval: str = "auto"
    side: str = DEFAULTS["side"]
    scale: str = DEFAULTS["scale"]
    price_min: float | None = None
    price_max: float | None = None
    bucket_size: float | None = None
    within_pct: float = float(DEFAULTS["within_pct"])
    width: int = 1600
    height: int = 900


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What was drawn: the file, its size, and where the data panel sits in the image."""

    path: Path
    width: int
    height: int
    kind: str
    axes_px: tuple[float, float, float, float]  # left, top, right, bottom (pixels, top = 0)
    price_min: float
    price_max: float
    x_min: float  # heatmap: epoch seconds at the left edge; map: USD at the left edge
    x_max: float
    title: str


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def freshness(coverage: dict[str, Any]) -> str:
    last = coverage.get("lastBar")
    if not last:
        return "no data materialized yet"
    when = datetime.fromisoformat(last)
    staleness = coverage.get("staleness")
    old = f" ({age(float(staleness))} old)" if staleness is not None else ""
    return f"data through {iso(when)}{old}"


def scope_text(requested: tuple[str, ...], covered: list[str]) -> str:
    names = " + ".join(covered) if covered else "no exchanges"
    return names if requested else f"all exchanges ({names})"


def decode(matrix: str, rows: int, columns: int) -> np.ndarray:
    """A FLOAT32_BASE64 matrix as float32, rows × columns (row 0 = the lowest price)."""
    import base64

    values = np.frombuffer(base64.b64decode(matrix), dtype="<f4")
    return values.reshape(rows, columns).astype(np.float32)


def cell_values(long_m: np.ndarray, short_m: np.ndarray, side: str) -> np.ndarray:
    """The USD a cell shows for a side; long + short summed in float32, as the page sums them."""
    return {"long": long_m, "short": short_m}.get(side, long_m + short_m)


async def fetch_heatmap(api: LocalApi, req: RenderRequest) -> dict[str, Any]:
    data = await api.query(
        document("heatmap"),
        symbol=req.symbol,
        exchanges=list(req.exchanges) or None,
        start=req.start.isoformat(),
        end=req.end.isoformat() if req.end else None,
        interval=INTERVALS[req.interval],
        priceMin=req.price_min,
        priceMax=req.price_max,
        bucketSize=req.bucket_size,
    )
    heatmap: dict[str, Any] = data["heatmap"]
    if heatmap["filledColumns"] == 0:
        newest = heatmap["coverage"]["lastBar"]
        hint = (
            f"; the newest materialized bar is {iso(datetime.fromisoformat(newest))}"
            if newest
            else ""
        )
        raise RenderError(
            f"no liquidation data for {req.symbol} between "
            f"{iso(datetime.fromisoformat(heatmap['start']))} and "
            f"{iso(datetime.fromisoformat(heatmap['end']))}{hint}"
        )
    return heatmap


async def fetch_map(api: LocalApi, req: RenderRequest) -> dict[str, Any]:
    data = await api.query(
        document("details"),
        symbol=req.symbol,
        exchanges=list(req.exchanges) or None,
        at=req.end.isoformat() if req.end else None,
        priceMin=req.price_min,
        priceMax=req.price_max,
        bucketSize=req.bucket_size,
        within=req.within_pct,
    )
    if data["liquidationMap"] is None:
        when = f" at or before {iso(req.end)}" if req.end else ""
        raise RenderError(f"no liquidation map of {req.symbol} is materialized{when}")
    at = datetime.fromisoformat(data["liquidationMap"]["at"])
    if req.end is not None and at < req.start:
        raise RenderError(
            f"no liquidation map of {req.symbol} between {iso(req.start)} and {iso(req.end)}; "
            f"the newest before is at {iso(at)}"
        )
    return data


def _figure(req: RenderRequest) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg: no display needed
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(req.width / dpi, req.height / dpi), dpi=dpi, facecolor=BACKGROUND)
    FigureCanvasAgg(fig)
    return fig, dpi


def _style(ax: Any) -> None:
    ax.set_facecolor(PANEL)
    ax.tick_params(colors=MUTED, labelsize=9)
    for spine in ax.spines.values():
        spine.set_color(LINE)


def _header(fig: Any, req: RenderRequest, title: str, lines: list[str]) -> float:
    """Title and info lines at fixed pixel offsets from the top; returns the pixels used."""
    big = 13 if req.width >= 1200 else 11
    small = 10 if req.width >= 1200 else 8.5
    left = 60 / req.width
    y = 22.0
    fig.text(left, 1 - y / req.height, title, color=TEXT, fontsize=big, weight="bold", va="center")
    for line in lines:
        y += 20 if req.width >= 1200 else 17
        fig.text(left, 1 - y / req.height, line, color=MUTED, fontsize=small, va="center")
    return y + 14


def _save(
    fig: Any,
    ax: Any,
    req: RenderRequest,
    path: Path,
    kind: str,
    title: str,
    prices: tuple[float, float],
    xs: tuple[float, float],
    extra: dict[str, str] | None = None,
) -> RenderResult:
    """Write the PNG; its text chunks say where the data panel is, for machine readers."""
    box = _axes_px(fig, ax, req.height)
    metadata = {
        "Title": title,
        "Software": "liqmap render",
        "liqmap:kind": kind,
        "liqmap:plot": ",".join(f"{v:.2f}" for v in box),  # left, top, right, bottom (pixels)
        "liqmap:price": f"{prices[0]!r},{prices[1]!r}",  # bottom and top edge (USD)
        "liqmap:x": f"{xs[0]!r},{xs[1]!r}",  # left and right edge (epoch s, or USD for a map)
        **(extra or {}),
    }
    fig.savefig(path, format="png", facecolor=BACKGROUND, metadata=metadata)
    return RenderResult(path, req.width, req.height, kind, box, *prices, *xs, title)


def _axes_px(fig: Any, ax: Any, height: int) -> tuple[float, float, float, float]:
    box = ax.get_window_extent(renderer=fig.canvas.get_renderer())
    return (float(box.x0), float(height - box.y1), float(box.x1), float(height - box.y0))


def draw_heatmap(heatmap: dict[str, Any], req: RenderRequest, path: Path) -> RenderResult:
    from matplotlib.ticker import FuncFormatter

    rows, columns = int(heatmap["rows"]), int(heatmap["columns"])
    long_m = decode(heatmap["long"], rows, columns)
    short_m = decode(heatmap["short"], rows, columns)
    values = cell_values(long_m, short_m, req.side)
    vmax = float(values.max(initial=0.0))
    colour_scale = scale(req.scale)
    # the cells' colours exactly as the page paints them: the same index into the same table
    pixels = lut()[colour_index(values, colour_scale, vmax)]
    t0 = datetime.fromisoformat(heatmap["start"]).timestamp()
    t1 = datetime.fromisoformat(heatmap["end"]).timestamp()
    p0 = float(heatmap["priceMin"])
    p1 = p0 + rows * float(heatmap["priceStep"])
    step = float(heatmap["stepSeconds"])

    title = (
        f"{heatmap['symbol']} · {scope_text(req.exchanges, heatmap['exchanges'])} · "
        f"{iso(datetime.fromisoformat(heatmap['start']))} → "
        f"{iso(datetime.fromisoformat(heatmap['end']))}"
    )
    lines = [
        f"liquidation heatmap · {step / 60:g} min columns × {heatmap['priceStep']:g} USD rows · "
        f"{freshness(heatmap['coverage'])}",
        f"model {heatmap['model']['version']}",
    ]
    fig, _ = _figure(req)
    top = _header(fig, req, title, lines) / req.height
    left, right = 60 / req.width, 90 / req.width
    bottom = 90 / req.height
    ax = fig.add_axes((left, bottom, 1 - left - right, 1 - top - bottom))
    cax = fig.add_axes((left, 32 / req.height, 0.3, 12 / req.height))
    _style(ax)
    ax.imshow(
        pixels,
        origin="lower",
        extent=(t0, t1, p0, p1),
        aspect="auto",
        interpolation="nearest",
        resample=False,
    )
    for candle in heatmap["candles"]:
        ts = datetime.fromisoformat(candle["start"]).timestamp()
        o, h, lo, c = (float(candle[k]) for k in ("open", "high", "low", "close"))
        colour = CANDLE_UP if c >= o else CANDLE_DOWN
        centre = ts + step / 2
        ax.vlines(centre, lo, h, colors=colour, linewidth=0.8)
        ax.bar(
            centre,
            max(abs(c - o), (p1 - p0) / 2000),
            width=step * CANDLE_BODY,
            bottom=min(o, c),
            color=colour if c < o else "none",
            edgecolor=colour,
            linewidth=0.8,
        )
    last = next((c for c in reversed(heatmap["candles"]) if c), None)
    if last is not None and p0 < float(last["close"]) < p1:
        price = float(last["close"])
        ax.axhline(price, color=PRICE_LINE, linestyle=PRICE_DASH, linewidth=1)
        ax.annotate(
            f"{price:,.1f}",
            xy=(1, price),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            ha="left",
            fontsize=9,
            color=ON_PRICE_LINE,
            bbox={"boxstyle": "square,pad=0.25", "fc": PRICE_LINE, "ec": PRICE_LINE},
        )
    ax.set_xlim(t0, t1)
    ax.set_ylim(p0, p1)
    ax.yaxis.tick_right()
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ticks = time_ticks(t0, t1, (1 - left - right) * req.width)
    ax.set_xticks([t.t for t in ticks], labels=[t.label for t in ticks])
    for label, tick in zip(ax.get_xticklabels(), ticks, strict=True):
        if tick.major:
            label.set_fontweight("bold")
    legend = _colour_bar(cax, vmax, colour_scale)
    fig.text(
        left + 0.31,
        38 / req.height,
        legend_caption(req.side, colour_scale),
        color=MUTED,
        fontsize=9,
        va="center",
    )
    extra = {
        "liqmap:scale": req.scale,
        "liqmap:max": repr(vmax),  # the USD at the top of the colour bar
        "liqmap:legend": json.dumps(legend),  # [position on the bar, label] per tick
    }
    return _save(fig, ax, req, path, "heatmap", title, (p0, p1), (t0, t1), extra)


def _colour_bar(cax: Any, vmax: float, colour_scale: Scale) -> list[tuple[float, str]]:
    """The colour map left to right with the legend's USD ticks, as the page's legend."""
    cax.imshow(lut()[None, :, :], aspect="auto", extent=(0, 1, 0, 1), interpolation="nearest")
    ticks = legend_ticks(vmax, colour_scale)
    cax.set_xticks([t for t, _ in ticks], labels=[label for _, label in ticks])
    cax.set_yticks([])
    cax.tick_params(colors=MUTED, labelsize=8)
    for spine in cax.spines.values():
        spine.set_color(LINE)
    return ticks


def draw_map(data: dict[str, Any], req: RenderRequest, path: Path) -> RenderResult:
    from matplotlib.ticker import FuncFormatter

    m = data["liquidationMap"]
    split = data["longShortSplit"]
    levels = m["levels"]
    lows = np.array([lv["price"] for lv in levels], float)
    size = float(m["bucketSize"])
    long_usd = np.array([lv["longUsd"] for lv in levels], float)
    short_usd = np.array([lv["shortUsd"] for lv in levels], float)
    cum_long = np.array([lv["cumulativeLongUsd"] for lv in levels], float)
    cum_short = np.array([lv["cumulativeShortUsd"] for lv in levels], float)
    price = float(m["price"])
    p0, p1 = float(m["priceMin"]), float(m["priceMax"])

    at = datetime.fromisoformat(m["at"])
    range_text = f"{iso(req.start)} → {iso(req.end)}" if req.end else f"from {iso(req.start)}"
    title = (
        f"{m['symbol']} · {scope_text(req.exchanges, m['exchanges'])} · liquidation map at "
        f"{iso(at)}"
    )
    lines = [
        f"range {range_text} · {size:g} USD levels · longs {usd(m['totalLongUsd'])}, shorts "
        f"{usd(m['totalShortUsd'])}",
        f"{freshness(m['coverage'])} · model {m['model']['version']}",
    ]
    total = split["longUsd"] + split["shortUsd"] if split else 0.0
    if split and total > 0:
        share = 100 * split["longUsd"] / total
        ratio = f" · L/S {split['ratio']:.2f}" if split["ratio"] is not None else ""
        lines.append(
            f"long/short split within ±{split['withinPct']:g} % of price: longs "
            f"{usd(split['longUsd'])} ({share:.0f} %) · shorts {usd(split['shortUsd'])} "
            f"({100 - share:.0f} %){ratio}"
        )
    fig, _ = _figure(req)
    top = (_header(fig, req, title, lines) + 36) / req.height
    left, right = 70 / req.width, 90 / req.width
    bottom = 50 / req.height
    ax = fig.add_axes((left, bottom, 1 - left - right, 1 - top - bottom))
    _style(ax)
    show_long, show_short = req.side != "short", req.side != "long"
    top = max(
        float(long_usd.max(initial=0.0)) if show_long else 0.0,
        float(short_usd.max(initial=0.0)) if show_short else 0.0,
    )
    height = size * (0.85 if len(levels) < 300 else 1.0)
    if show_long:
        ax.barh(
            lows,
            long_usd,
            height=height,
            align="edge",
            color=LONG_COLOR,
            alpha=BAR_ALPHA,
            linewidth=0,
            label="long levels",
        )
    if show_short:
        ax.barh(
            lows,
            short_usd,
            height=height,
            align="edge",
            color=SHORT_COLOR,
            alpha=BAR_ALPHA,
            linewidth=0,
            label="short levels",
        )
    ax.set_xlim(0, (top or 1.0) / BAR_REACH)
    ax.set_ylim(p0, p1)
    ax.axhline(price, color=PRICE_LINE, linestyle=PRICE_DASH, linewidth=1)
    ax.annotate(
        f"{price:,.1f}",
        xy=(1, price),
        xycoords=("axes fraction", "data"),
        xytext=(4, 0),
        textcoords="offset points",
        va="center",
        ha="left",
        fontsize=9,
        color=ON_PRICE_LINE,
        bbox={"boxstyle": "square,pad=0.25", "fc": PRICE_LINE, "ec": PRICE_LINE},
    )
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: usd(v)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("USD liquidated in the level", color=MUTED, fontsize=9)
    cum = ax.twiny()
    centres = lows + size / 2
    below, above = lows + size <= price + size, lows >= price - size
    if show_long:
        cum.plot(
            cum_long[below],
            centres[below],
            color=LONG_CUM,
            linewidth=2,
            label="cumulative longs (price falling)",
        )
    if show_short:
        cum.plot(
            cum_short[above],
            centres[above],
            color=SHORT_CUM,
            linewidth=2,
            label="cumulative shorts (price rising)",
        )
    peak = max(float(cum_long.max(initial=0.0)), float(cum_short.max(initial=0.0)))
    cum.set_xlim(0, (peak or 1.0) / CUMULATIVE_REACH)
    cum.tick_params(colors=MUTED, labelsize=9)
    cum.xaxis.set_major_formatter(FuncFormatter(lambda v, _: usd(v)))
    cum.set_xlabel("cumulative USD from the price", color=MUTED, fontsize=9)
    for spine in cum.spines.values():
        spine.set_color(LINE)
    handles = ax.get_legend_handles_labels()[0] + cum.get_legend_handles_labels()[0]
    legend = fig.legend(
        handles=handles,
        loc="upper right",
        bbox_to_anchor=(1 - 10 / req.width, 1 - 8 / req.height),
        fontsize=8.5,
        frameon=True,
        ncols=2,
    )  # outside the axes, so no key sits on the bars
    legend.get_frame().set_facecolor(BACKGROUND)
    legend.get_frame().set_edgecolor(LINE)
    for text in legend.get_texts():
        text.set_color(TEXT)
    return _save(fig, ax, req, path, "map", title, (p0, p1), (0.0, float(ax.get_xlim()[1])))


async def render(api: LocalApi, req: RenderRequest, path: Path) -> RenderResult:
    """Fetch through the API and draw; the file appears only once it is complete."""
    if req.kind not in KINDS:
        raise RenderError(f"unknown kind {req.kind!r}; use {' or '.join(KINDS)}")
    if req.end is not None and req.end <= req.start:
        raise RenderError("--end must be after --start")
    if not (math.isfinite(req.width) and 200 <= req.width <= 8000 and 150 <= req.height <= 8000):
        raise RenderError("--width must be 200–8000 and --height 150–8000 pixels")
    if req.kind == "heatmap":
        heatmap = await fetch_heatmap(api, req)
        return _atomic(path, lambda tmp: draw_heatmap(heatmap, req, tmp))
    data = await fetch_map(api, req)
    return _atomic(path, lambda tmp: draw_map(data, req, tmp))


def _atomic(path: Path, draw: Callable[[Path], RenderResult]) -> RenderResult:
    import matplotlib

    from cli.export import atomic_output

    # "$" in USD labels is text, not mathtext
    with matplotlib.rc_context({"text.parse_math": False}), atomic_output(path) as tmp:
        result = draw(tmp)
    return RenderResult(
        path,
        result.width,
        result.height,
        result.kind,
        result.axes_px,
        result.price_min,
        result.price_max,
        result.x_min,
        result.x_max,
        result.title,
    )
