"""`liqmap render`: the viewer's pictures as PNG files, drawn with matplotlib (Agg).

The data comes through the public GraphQL schema, executed in process (:mod:`api.viewer.local`),
with the documents the web page sends; colours, scales and overlays follow the page: the
"inferno" colour map (the page ships the same 256-entry table), a square-root scale by default,
candles, the current price line, and for ``--kind map`` the bars per price level with the
cumulative long/short curves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from api.viewer.local import LocalApi

KINDS = ("heatmap", "map")
SIDES = ("both", "long", "short")
SCALES = ("sqrt", "linear", "log")
INTERVALS = {
    "auto": None,
    "5m": "FIVE_MINUTES",
    "15m": "FIFTEEN_MINUTES",
    "30m": "THIRTY_MINUTES",
    "1h": "ONE_HOUR",
    "4h": "FOUR_HOURS",
    "1d": "ONE_DAY",
}

BACKGROUND = "#070b14"
PANEL = "#0d1320"
TEXT = "#e5e7eb"
MUTED = "#9aa4b2"
PRICE_LINE = "#38bdf8"
CANDLE_UP = "#f1f5f9"
CANDLE_DOWN = "#8b98ab"
LONG_COLOR = "#2dd4bf"
SHORT_COLOR = "#f472b6"
LONG_CUM = "#99f6e4"
SHORT_CUM = "#fbcfe8"

HEATMAP_QUERY = """
query Heatmap($symbol: String!, $exchanges: [String!], $start: DateTime!, $end: DateTime,
    $interval: Interval, $priceMin: Float, $priceMax: Float, $bucketSize: Float) {
  heatmap(symbol: $symbol, exchanges: $exchanges, start: $start, end: $end, interval: $interval,
          priceMin: $priceMin, priceMax: $priceMax, bucketSize: $bucketSize,
          encoding: FLOAT32_BASE64) {
    symbol exchanges start end stepSeconds columns resolution priceMin priceStep rows maxUsd
    filledColumns long short
    candles { ts open high low close }
    model { version }
    coverage { exchanges lastBar staleness missingDatasets }
  }
}"""

DETAILS_QUERY = """
query Details($symbol: String!, $exchanges: [String!], $at: DateTime, $priceMin: Float,
    $priceMax: Float, $bucketSize: Float, $within: Float!) {
  liquidationLevels(symbol: $symbol, exchanges: $exchanges, at: $at, priceMin: $priceMin,
                    priceMax: $priceMax, bucketSize: $bucketSize) {
    symbol exchanges at price bucketSize priceMin priceMax totalLongUsd totalShortUsd
    levels { price priceHigh longUsd shortUsd cumulativeLongUsd cumulativeShortUsd }
    model { version }
    coverage { lastBar staleness }
  }
  longShortSplit(symbol: $symbol, exchanges: $exchanges, at: $at, withinPct: $within) {
    withinPct longUsd shortUsd ratio
  }
}"""


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
    side: str = "both"
    scale: str = "sqrt"
    price_min: float | None = None
    price_max: float | None = None
    bucket_size: float | None = None
    within_pct: float = 5.0
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


def _age(seconds: float) -> str:
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def freshness(coverage: dict[str, Any]) -> str:
    last = coverage.get("lastBar")
    if not last:
        return "no data materialized yet"
    when = datetime.fromisoformat(last)
    staleness = coverage.get("staleness")
    old = f" ({_age(float(staleness))} old)" if staleness is not None else ""
    return f"data through {iso(when)}{old}"


def scope_text(requested: tuple[str, ...], covered: list[str]) -> str:
    names = " + ".join(covered) if covered else "no exchanges"
    return names if requested else f"all exchanges ({names})"


def _usd(value: float) -> str:
    v = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if v >= limit:
            return f"${value / limit:.{2 if suffix == 'B' else 1}f}{suffix}"
    return f"${value:.0f}"


TIME_STEPS = (300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)


def time_ticks(t0: float, t1: float, count: int = 8) -> tuple[list[float], list[str]]:
    """Ticks at round UTC steps (as the page draws them); dates at midnight, else HH:MM."""
    step = next((s for s in TIME_STEPS if (t1 - t0) / s <= count), 1_209_600)
    ticks = [float(t) for t in range(math.ceil(t0 / step) * step, int(t1) + 1, step)]
    labels = []
    for t in ticks:
        when = datetime.fromtimestamp(t, UTC)
        midnight = when.hour == 0 and when.minute == 0
        labels.append(when.strftime("%b %d") if midnight or step >= 86400 else f"{when:%H:%M}")
    return ticks, labels


def decode(matrix: str, rows: int, columns: int) -> np.ndarray:
    import base64

    values = np.frombuffer(base64.b64decode(matrix), dtype="<f4")
    return values.reshape(rows, columns).astype(np.float64)


def scale_functions(
    scale: str, vmax: float
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """value → 0–1 position on the colour bar and back, as on the page (colormap.js SCALES)."""
    top = vmax if vmax > 0 else 1.0
    if scale == "linear":
        return (lambda v: np.asarray(v, float) / top), (lambda t: np.asarray(t, float) * top)
    if scale == "log":

        def forward(v: np.ndarray) -> np.ndarray:
            x = np.asarray(v, float) / top
            with np.errstate(divide="ignore"):
                return np.where(x > 0, np.maximum(0.0, 1 + np.log10(np.maximum(x, 1e-300)) / 3), 0)

        return forward, (lambda t: np.where(np.asarray(t) > 0, top * 10 ** (3 * (t - 1)), 0.0))
    return (lambda v: np.sqrt(np.asarray(v, float) / top)), (
        lambda t: np.asarray(t, float) ** 2 * top
    )


async def fetch_heatmap(api: LocalApi, req: RenderRequest) -> dict[str, Any]:
    data = await api.query(
        HEATMAP_QUERY,
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
        DETAILS_QUERY,
        symbol=req.symbol,
        exchanges=list(req.exchanges) or None,
        at=req.end.isoformat() if req.end else None,
        priceMin=req.price_min,
        priceMax=req.price_max,
        bucketSize=req.bucket_size,
        within=req.within_pct,
    )
    if data["liquidationLevels"] is None:
        when = f" at or before {iso(req.end)}" if req.end else ""
        raise RenderError(f"no liquidation map of {req.symbol} is materialized{when}")
    at = datetime.fromisoformat(data["liquidationLevels"]["at"])
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
        spine.set_color("#1f2937")


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
    }
    fig.savefig(path, format="png", facecolor=BACKGROUND, metadata=metadata)
    return RenderResult(path, req.width, req.height, kind, box, *prices, *xs, title)


def _axes_px(fig: Any, ax: Any, height: int) -> tuple[float, float, float, float]:
    box = ax.get_window_extent(renderer=fig.canvas.get_renderer())
    return (float(box.x0), float(height - box.y1), float(box.x1), float(height - box.y0))


def draw_heatmap(heatmap: dict[str, Any], req: RenderRequest, path: Path) -> RenderResult:
    from matplotlib import colormaps
    from matplotlib.colors import FuncNorm
    from matplotlib.ticker import FuncFormatter

    rows, columns = int(heatmap["rows"]), int(heatmap["columns"])
    long_m = decode(heatmap["long"], rows, columns)
    short_m = decode(heatmap["short"], rows, columns)
    values = {"long": long_m, "short": short_m}.get(req.side, long_m + short_m)
    vmax = float(values.max(initial=0.0))
    forward, inverse = scale_functions(req.scale, vmax)
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
    cmap = colormaps["inferno"]
    norm = FuncNorm((forward, inverse), vmin=0.0, vmax=vmax if vmax > 0 else 1.0)
    image = ax.imshow(
        values,
        origin="lower",
        extent=(t0, t1, p0, p1),
        aspect="auto",
        cmap=cmap,
        norm=norm,
        interpolation="nearest",
        resample=False,
    )
    for candle in heatmap["candles"]:
        ts = datetime.fromisoformat(candle["ts"]).timestamp()
        o, h, lo, c = (float(candle[k]) for k in ("open", "high", "low", "close"))
        colour = CANDLE_UP if c >= o else CANDLE_DOWN
        centre = ts + step / 2
        ax.vlines(centre, lo, h, colors=colour, linewidth=0.8)
        ax.bar(
            centre,
            max(abs(c - o), (p1 - p0) / 2000),
            width=step * 0.62,
            bottom=min(o, c),
            color=colour if c < o else "none",
            edgecolor=colour,
            linewidth=0.8,
        )
    last = next((c for c in reversed(heatmap["candles"]) if c), None)
    if last is not None and p0 < float(last["close"]) < p1:
        price = float(last["close"])
        ax.axhline(price, color=PRICE_LINE, linestyle=(0, (5, 4)), linewidth=1)
        ax.annotate(
            f"{price:,.1f}",
            xy=(1, price),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            ha="left",
            fontsize=9,
            color="#04121c",
            bbox={"boxstyle": "square,pad=0.25", "fc": PRICE_LINE, "ec": PRICE_LINE},
        )
    ax.set_xlim(t0, t1)
    ax.set_ylim(p0, p1)
    ax.yaxis.tick_right()
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ticks, labels = time_ticks(t0, t1)
    ax.set_xticks(ticks, labels=labels)
    colorbar = fig.colorbar(image, cax=cax, orientation="horizontal")
    ticks = [float(inverse(np.asarray(t))) for t in (0, 0.25, 0.5, 0.75, 1.0)]
    colorbar.set_ticks(ticks, labels=[_usd(t) for t in ticks])
    colorbar.ax.tick_params(colors=MUTED, labelsize=8)
    side_text = {"both": "long + short", "long": "longs", "short": "shorts"}[req.side]
    fig.text(
        left + 0.31,
        38 / req.height,
        f"USD at risk per cell ({side_text}, {req.scale} scale)",
        color=MUTED,
        fontsize=9,
        va="center",
    )
    return _save(fig, ax, req, path, "heatmap", title, (p0, p1), (t0, t1))


def draw_map(data: dict[str, Any], req: RenderRequest, path: Path) -> RenderResult:
    from matplotlib.ticker import FuncFormatter

    m = data["liquidationLevels"]
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
        f"range {range_text} · {size:g} USD levels · longs {_usd(m['totalLongUsd'])}, shorts "
        f"{_usd(m['totalShortUsd'])}",
        f"{freshness(m['coverage'])} · model {m['model']['version']}",
    ]
    total = split["longUsd"] + split["shortUsd"] if split else 0.0
    if split and total > 0:
        share = 100 * split["longUsd"] / total
        ratio = f" · L/S {split['ratio']:.2f}" if split["ratio"] is not None else ""
        lines.append(
            f"long/short split within ±{split['withinPct']:g} % of price: longs "
            f"{_usd(split['longUsd'])} ({share:.0f} %) · shorts {_usd(split['shortUsd'])} "
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
            linewidth=0,
            label="short levels",
        )
    ax.set_xlim(0, (top or 1.0) / 0.92)
    ax.set_ylim(p0, p1)
    ax.axhline(price, color=PRICE_LINE, linestyle=(0, (5, 4)), linewidth=1)
    ax.annotate(
        f"{price:,.1f}",
        xy=(1, price),
        xycoords=("axes fraction", "data"),
        xytext=(4, 0),
        textcoords="offset points",
        va="center",
        ha="left",
        fontsize=9,
        color="#04121c",
        bbox={"boxstyle": "square,pad=0.25", "fc": PRICE_LINE, "ec": PRICE_LINE},
    )
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _usd(v)))
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
    cum.set_xlim(0, (peak or 1.0) / 0.98)
    cum.tick_params(colors=MUTED, labelsize=9)
    cum.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _usd(v)))
    cum.set_xlabel("cumulative USD from the price", color=MUTED, fontsize=9)
    for spine in cum.spines.values():
        spine.set_color("#1f2937")
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
    legend.get_frame().set_edgecolor("#1f2937")
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
