"""`liqmap render`: the viewer's pictures as PNG files, drawn with matplotlib (Agg).

The data comes through the public GraphQL schema, executed in process (:mod:`api.viewer.local`),
with the documents the web page sends, and the picture is drawn with what the page draws with:
colours, colour map, scales, legend and axis rules all come from the files the page is served
(api/viewer/static/viewer.json and graphql/, read through :mod:`api.viewer.shared`). For
``--kind map``: the bars per price level with the cumulative long/short curves. Overlays
(``--overlays``, the page's by default) are asked for with the page's documents and drawn as the
page draws them: realized and swept liquidations in a strip under the heatmap, the largest
clusters and max pain at the map's time.
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

from api.viewer import overlays
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
from api.viewer.local import ApiError, LocalApi
from api.viewer.shared import colour, document, style

KINDS = ("heatmap", "map")
SIDES = tuple(style()["sides"])
SCALES = scale_names()
INTERVALS: dict[str, str | None] = {
    "auto": None,
    **{i["cli"]: i["id"] for i in style()["intervals"]},
}
DEFAULTS: dict[str, Any] = style()["defaults"]
# leverage bands by their label (1-10 … 101+) → the API's LeverageBand ids, lowest first
LEVERAGE: dict[str, str] = {b["cli"]: b["id"] for b in style()["leverage_bands"]}

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
KNOWN_COLOR = colour("known")
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
    overlays: tuple[str, ...] = overlays.defaults()
    leverage: tuple[str, ...] = ()  # LeverageBand ids to draw; empty: every band


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
        leverage=list(req.leverage) or None,
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
        leverage=list(req.leverage) or None,  # the API sums those bands (levels, totals…)
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


def leverage_text(req: RenderRequest) -> str:
    """`` · leverage 51-100, 101+`` when some bands are drawn, else nothing."""
    if not req.leverage:
        return ""
    labels = {v: k for k, v in LEVERAGE.items()}
    return " · leverage " + ", ".join(labels[i] for i in req.leverage)


Layers = dict[str, Any]  # overlay id → what to draw (as overlays.js prepares it)


async def fetch_overlays(
    api: LocalApi,
    req: RenderRequest,
    *,
    at: str | None,
    window: tuple[float, float, float],
    span: tuple[str, str, int] | None,
) -> tuple[Layers, dict[str, str]]:
    """The overlays asked for, with the page's documents: ``at`` the map's instant, ``window``
    its price range and bucket, ``span`` the heatmap's start, end and column seconds (None for
    a map). An overlay the API refuses is left out, with its message (as the page's note)."""
    common = {"symbol": req.symbol, "exchanges": list(req.exchanges) or None}
    layers: Layers = {}
    refused: dict[str, str] = {}
    intervals = {i["seconds"]: i["id"] for i in style()["intervals"]}
    for overlay in req.overlays:
        spec = overlays.spec(overlay)
        try:
            if spec["scope"] == "range":
                if span is None:
                    continue  # a strip under the heatmap: a map has no time axis
                start, end, step = span
                variables = {**common, "start": start, "end": end}
                if overlay == "swept":
                    variables["interval"] = intervals.get(step)
                data = await api.query(document(spec["document"]), **variables)
                layers[overlay] = (
                    overlays.realized_bars(
                        data["realizedLiquidations"],
                        aggregate=not req.exchanges,
                        step_ms=step * 1000,
                    )
                    if overlay == "realized"
                    else overlays.swept_bars(data["sweptLevels"], step_ms=step * 1000)
                )
            elif overlay == "clusters":
                low, high, size = window
                data = await api.query(
                    document(spec["document"]),
                    **common,
                    at=at,
                    priceMin=low,
                    priceMax=high,
                    bucketSize=size,
                    limit=spec["limit"],
                )
                layers[overlay] = data["liquidationMap"]
            elif overlay == "known":
                data = await api.query(
                    document(spec["document"]),
                    **common,
                    at=at,
                    knownSymbol=overlays.known_symbol(req.symbol),
                    bucketSize=None,
                )
                layers[overlay] = overlays.known_bars(data)
            else:
                data = await api.query(document(spec["document"]), **common, at=at)
                layers[overlay] = data["liquidationMap"]
        except ApiError as exc:
            refused[overlay] = str(exc)
    return {k: v for k, v in layers.items() if v is not None}, refused


def _walls(layers: Layers) -> list[dict[str, Any]]:
    clusters = layers.get("clusters")
    return list(clusters["clusters"]) if clusters else []


def _pains(layers: Layers) -> list[tuple[str, float]]:
    m = layers.get("maxpain")
    if not m:
        return []
    sides = (("LONG", m["maxPainLong"]), ("SHORT", m["maxPainShort"]))
    return [(side, float(p["price"])) for side, p in sides if p]


def _side_colour(side: str) -> str:
    return LONG_COLOR if side == "LONG" else SHORT_COLOR


def _draw_strip(sax: Any, layers: Layers, t0: float, t1: float) -> dict[str, int]:
    """Realized (filled) and swept (outlined) bars, shorts up, longs down, on one USD scale."""
    strip = [(k, layers[k]) for k in ("swept", "realized") if k in layers and layers[k].count]
    top = max((bars.max for _, bars in strip), default=0.0) or 1.0
    drawn: dict[str, int] = {}
    for overlay, bars in strip:  # swept first: the realized bars end up on top, as on the page
        shown = [b for b in bars.bars if b.t1 / 1000 > t0 and b.t0 / 1000 < t1]
        lefts = [b.t0 / 1000 for b in shown]
        widths = [(b.t1 - b.t0) / 1000 for b in shown]
        filled = overlay == "realized"
        for values, sign, fill, line in (
            ([b.short for b in shown], 1, SHORT_COLOR, SHORT_CUM),
            ([b.long for b in shown], -1, LONG_COLOR, LONG_CUM),
        ):
            sax.bar(
                lefts,
                [sign * v for v in values],
                width=widths,
                align="edge",
                color=fill if filled else "none",
                edgecolor="none" if filled else line,
                linewidth=0 if filled else 0.8,
            )
        drawn[overlay] = sum(1 for b in shown if b.long > 0 or b.short > 0)
    sax.set_ylim(-top * 1.02, top * 1.02)
    sax.axhline(0, color=LINE, linewidth=0.8)
    sax.set_yticks([-top, top], labels=[usd(top), usd(top)])
    sax.yaxis.tick_right()
    names = " · ".join(overlays.spec(k)["label"] for k in ("realized", "swept") if k in drawn)
    sax.text(
        0.005,
        0.93,
        f"{names} · shorts ↑ longs ↓",
        transform=sax.transAxes,
        color=MUTED,
        fontsize=8,
        va="top",
    )
    return drawn


def _draw_map_marks(ax: Any, layers: Layers, x: float, p0: float, p1: float) -> dict[str, int]:
    """Clusters (a bracket and its USD) and max pain (a diamond, or an arrow at the edge) at the
    map's time ``x`` on the heatmap; labels keep 14 px apart, max pain's placed first."""
    drawn: dict[str, int] = {}
    box = ax.get_window_extent()
    band = 14 / max(1.0, box.height) * (p1 - p0)  # 14 px in price
    taken: list[float] = []

    def free(y: float) -> bool:
        if any(abs(y - t) < band for t in taken):
            return False
        taken.append(y)
        return True

    def note(text: str, y: float, colour: str, dx: float) -> None:
        ax.annotate(
            text,
            xy=(x, y),
            xytext=(dx, 0),
            textcoords="offset points",
            ha="right",
            va="center",
            fontsize=8,
            color=colour,
            bbox={"boxstyle": "square,pad=0.15", "fc": BACKGROUND, "ec": "none", "alpha": 0.75},
        )

    if "maxpain" in layers:
        pains = _pains(layers)
        for side, price in pains:
            c = _side_colour(side)
            y = min(max(price, p0), p1)
            marker = "D" if p0 <= price <= p1 else ("v" if price < p0 else "^")
            ax.plot(
                [x], [y], marker=marker, color=c, markeredgecolor=PANEL, markersize=7, clip_on=False
            )
            free(y)
            note(f"max pain {price:,.0f}", y, c, -10)
        drawn["maxpain"] = len(pains)
    if "clusters" in layers:
        walls = _walls(layers)
        for wall in walls:
            c = _side_colour(wall["side"])
            low, high = max(p0, wall["priceLow"]), min(p1, wall["priceHigh"])
            ax.vlines(x, low, high, colors=c, linewidth=2.5)
            if free((low + high) / 2):
                note(usd(wall["notionalUsd"]), (low + high) / 2, c, -8)
        drawn["clusters"] = len(walls)
    return drawn


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


def draw_heatmap(
    heatmap: dict[str, Any], req: RenderRequest, path: Path, layers: Layers | None = None
) -> RenderResult:
    from matplotlib.ticker import FuncFormatter

    layers = layers or {}
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
        f"{iso(datetime.fromisoformat(heatmap['end']))}{leverage_text(req)}"
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
    stripped = any(layers[k].count for k in ("realized", "swept") if k in layers)
    strip_px = overlays.strip_height((1 - top - bottom) * req.height) if stripped else 0
    lift = (strip_px + 6) / req.height if stripped else 0.0  # the strip and its gap, as the page
    ax = fig.add_axes((left, bottom + lift, 1 - left - right, 1 - top - bottom - lift))
    axis = ax  # the axes whose x axis carries the time labels
    if stripped:
        axis = fig.add_axes((left, bottom, 1 - left - right, strip_px / req.height), sharex=ax)
        _style(axis)
        ax.tick_params(labelbottom=False)
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
    # the map beside the page's heatmap: at its end, or the newest when no end is given
    at = _at(layers, t1)
    drawn = _draw_map_marks(ax, layers, min(max(at, t0), t1), p0, p1)
    if stripped:
        drawn |= _draw_strip(axis, layers, t0, t1)
    ax.set_xlim(t0, t1)
    ax.set_ylim(p0, p1)
    ax.yaxis.tick_right()
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    # labels may reach into the margins beside the axes, as on the page
    ticks = time_ticks(t0, t1, (1 - left - right) * req.width, left * req.width, right * req.width)
    axis.set_xticks([t.t for t in ticks], labels=[t.label for t in ticks])
    for label, tick in zip(axis.get_xticklabels(), ticks, strict=True):
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
        "liqmap:overlays": json.dumps(drawn),  # marks drawn per overlay, as the page counts
    }
    return _save(fig, ax, req, path, "heatmap", title, (p0, p1), (t0, t1), extra)


def _at(layers: Layers, fallback: float) -> float:
    """The instant of the map the overlays describe (epoch seconds)."""
    for overlay in ("maxpain", "clusters"):
        if overlay in layers:
            return datetime.fromisoformat(layers[overlay]["at"]).timestamp()
    return fallback


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


def draw_map(
    data: dict[str, Any], req: RenderRequest, path: Path, layers: Layers | None = None
) -> RenderResult:
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FuncFormatter

    layers = layers or {}
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
        f"{iso(at)}{leverage_text(req)}"
    )
    whole = data["whole"]
    # the whole map's totals, as the page's card; what the price range shows is "in view"
    totals = f"longs {usd(whole['totalLongUsd'])}, shorts {usd(whole['totalShortUsd'])} at risk"
    if (float(whole["priceMin"]), float(whole["priceMax"])) != (p0, p1):
        totals += (
            f" (in view {p0:,.0f}–{p1:,.0f}: longs {usd(m['totalLongUsd'])}, shorts "
            f"{usd(m['totalShortUsd'])})"
        )
    lines = [
        f"range {range_text} · {size:g} USD levels · {totals}",
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
    drawn: dict[str, int] = {}
    if "clusters" in layers:  # the walls outlined across the panel, as on the page
        for wall in _walls(layers):
            ax.axhspan(
                wall["priceLow"],
                wall["priceHigh"],
                fill=False,
                linestyle="--",
                edgecolor=_side_colour(wall["side"]),
                linewidth=0.8,
            )
            ax.annotate(
                f"{wall['side'].lower()} wall {usd(wall['notionalUsd'])}",
                xy=(1, (wall["priceLow"] + wall["priceHigh"]) / 2),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 0),
                textcoords="offset points",
                ha="right",
                va="center",
                fontsize=8,
                color=TEXT,
            )
        drawn["clusters"] = len(_walls(layers))
    if "maxpain" in layers:
        for side, level in _pains(layers):
            if p0 <= level <= p1:
                ax.axhline(level, color=_side_colour(side), linestyle=(0, (6, 3)), linewidth=1.2)
            ax.annotate(
                f"{'' if p0 <= level <= p1 else ('↓ ' if level < p0 else '↑ ')}max pain "
                f"{level:,.0f}",
                xy=(0, min(max(level, p0), p1)),
                xycoords=("axes fraction", "data"),
                xytext=(4, 6 if p0 <= level <= p1 else 0),
                textcoords="offset points",
                ha="left",
                va="center",
                fontsize=8,
                color=_side_colour(side),
            )
        drawn["maxpain"] = len(_pains(layers))
    if "known" in layers:  # real positions outlined on their own scale, as on the page
        known: overlays.KnownBars = layers["known"]
        shown = known.in_view(p0, p1)
        scale = (top or 1.0) / (known.max or 1.0)
        key = "real positions (own scale)"
        for bar in shown:
            for value in (bar.long, bar.short):
                if value > 0:
                    ax.add_patch(
                        Rectangle(
                            (0, max(bar.lo, p0)),
                            value * scale,
                            min(bar.hi, p1) - max(bar.lo, p0),
                            fill=False,
                            edgecolor=KNOWN_COLOR,
                            linewidth=0.8,
                            label=key,
                        )
                    )
                    key = "_nolegend_"
        if shown and known.known:
            ax.annotate(  # under the price line, as on the page
                f"real positions · {known.known['at'][:10]}",
                xy=(1, price),
                xycoords=("axes fraction", "data"),
                xytext=(-4, -12),
                textcoords="offset points",
                ha="right",
                va="center",
                fontsize=8,
                color=KNOWN_COLOR,
            )
        drawn["known"] = len(shown)
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
    extra = {"liqmap:overlays": json.dumps(drawn)}
    return _save(fig, ax, req, path, "map", title, (p0, p1), (0.0, float(ax.get_xlim()[1])), extra)


async def render(api: LocalApi, req: RenderRequest, path: Path) -> RenderResult:
    """Fetch through the API and draw; the file appears only once it is complete."""
    if req.kind not in KINDS:
        raise RenderError(f"unknown kind {req.kind!r}; use {' or '.join(KINDS)}")
    if req.end is not None and req.end <= req.start:
        raise RenderError("--end must be after --start")
    if not (math.isfinite(req.width) and 200 <= req.width <= 8000 and 150 <= req.height <= 8000):
        raise RenderError("--width must be 200–8000 and --height 150–8000 pixels")
    unknown = set(req.overlays) - set(overlays.ids())
    if unknown:
        raise RenderError(
            f"unknown overlay {sorted(unknown)[0]!r}; use {', '.join(overlays.ids())} (or none)"
        )
    if req.kind == "heatmap":
        heatmap = await fetch_heatmap(api, req)
        low = float(heatmap["priceMin"])
        size = float(heatmap["priceStep"])
        layers, _ = await fetch_overlays(
            api,
            req,
            at=heatmap["end"] if req.end is not None else None,
            window=(low, low + int(heatmap["rows"]) * size, size),
            span=(heatmap["start"], heatmap["end"], int(heatmap["stepSeconds"])),
        )
        return _atomic(path, lambda tmp: draw_heatmap(heatmap, req, tmp, layers))
    data = await fetch_map(api, req)
    m = data["liquidationMap"]
    layers, _ = await fetch_overlays(
        api,
        req,
        at=req.end.isoformat() if req.end else None,
        window=(float(m["priceMin"]), float(m["priceMax"]), float(m["bucketSize"])),
        span=None,
    )
    return _atomic(path, lambda tmp: draw_map(data, req, tmp, layers))


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
