"""The overlays of ``static/viewer.json`` in Python, for `liqmap render`: which exist, what each
asks the API, and the realized bars as the page's ``static/overlays.js`` makes them (the same
source per bar, the same columns), so that a PNG draws what the page draws."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.viewer.shared import style

UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


def ids() -> tuple[str, ...]:
    return tuple(o["id"] for o in style()["overlays"]["list"])


def defaults() -> tuple[str, ...]:
    return tuple(o["id"] for o in style()["overlays"]["list"] if o["default"])


def spec(overlay: str) -> dict[str, Any]:
    found: dict[str, Any] = next(o for o in style()["overlays"]["list"] if o["id"] == overlay)
    return found


def timeframe_ms(text: str | None) -> int | None:
    """``"30m"`` → 1 800 000; None for what is not a bar length (as overlays.js)."""
    match = re.fullmatch(r"(\d+)([mhd])", text or "")
    return int(match[1]) * UNIT_MS[match[2]] if match else None


@dataclass(frozen=True, slots=True)
class Bar:
    t0: int  # epoch ms
    t1: int
    long: float
    short: float


@dataclass(frozen=True, slots=True)
class Bars:
    bars: list[Bar]
    max: float
    sources: list[str]
    timeframe: str | None

    @property
    def count(self) -> int:
        """Bars with something to draw (what the page counts as drawn)."""
        return sum(1 for b in self.bars if b.long > 0 or b.short > 0)


def _ms(ts: str) -> int:
    return round(datetime.fromisoformat(ts).timestamp() * 1000)


def realized_bars(rows: Sequence[dict[str, Any]], *, aggregate: bool, step_ms: int) -> Bars:
    """``realizedLiquidations`` rows → bars per column of max(column, bar) width: the
    multi-venue total (``*``) for the cross-exchange view where a source has one, else the sum
    over exchanges; the first source by name per exchange and bar; the bar length most rows
    have (the shorter on a tie)."""
    if aggregate and any(r["exchange"] == "*" for r in rows):
        chosen = [r for r in rows if r["exchange"] == "*"]
    else:
        chosen = [r for r in rows if r["exchange"] != "*"]
    counts = Counter(r["timeframe"] for r in chosen)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], timeframe_ms(kv[0]) or math.inf))
    timeframe = ranked[0][0] if ranked else None
    bar_ms = timeframe_ms(timeframe)
    if not bar_ms:
        return Bars([], 0.0, [], None)
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for r in chosen:
        if r["timeframe"] != timeframe:
            continue
        key = (r["exchange"], r["start"])
        if key not in first or r["source"] < first[key]["source"]:
            first[key] = r
    width = max(step_ms, bar_ms)
    sums: dict[int, list[float]] = {}
    sources = set()
    for r in first.values():
        t0 = _ms(r["start"]) // width * width
        acc = sums.setdefault(t0, [0.0, 0.0])
        acc[0] += r["longUsd"]
        acc[1] += r["shortUsd"]
        sources.add(f"{r['source']}/{r['exchange']}")
    bars = [Bar(t0, t0 + width, lo, sh) for t0, (lo, sh) in sorted(sums.items())]
    peak = max((max(b.long, b.short) for b in bars), default=0.0)
    return Bars(bars, peak, sorted(sources), timeframe)


def swept_bars(rows: Sequence[dict[str, Any]], *, step_ms: int) -> Bars:
    """``sweptLevels`` rows (one per column) → bars of the model's swept notional."""
    bars = [
        Bar(
            _ms(r["start"]),
            _ms(r["start"]) + step_ms,
            r["predictedLongUsd"],
            r["predictedShortUsd"],
        )
        for r in rows
    ]
    peak = max((max(b.long, b.short) for b in bars), default=0.0)
    return Bars(bars, peak, [], None)


def strip_height(plot_height_px: float) -> int:
    """The strip's height under a plot of this height (viewer.json, as overlays.js)."""
    rule = style()["overlays"]["strip"]
    return round(max(rule["min_px"], min(rule["max_px"], plot_height_px * rule["fraction"])))


@dataclass(frozen=True, slots=True)
class KnownBar:
    lo: float  # price edges on the model map's axis
    hi: float
    long: float
    short: float


@dataclass(frozen=True, slots=True)
class KnownBars:
    bars: list[KnownBar]
    max: float
    known: dict[str, Any] | None
    anchor: float  # map price / the venue's price at the reading

    def in_view(self, low: float, high: float) -> list[KnownBar]:
        return [b for b in self.bars if b.hi > low and b.lo < high]


def known_bars(data: dict[str, Any]) -> KnownBars:
    """``knownLevels`` with its comparison → bars on the model map's price axis, as
    overlays.js's ``knownBars``: each bucket keeps its distance from the venue's own price at the
    reading (placed at price × map price / known price), so a reading of another time (another
    recorded window in a replay) compares in shape; at the map's instant the factor is ~1."""
    known = data.get("knownLevels")
    comparison = data.get("knownLevelsComparison") or {}
    map_price = (comparison.get("model") or {}).get("price")
    if not known:
        return KnownBars([], 0.0, None, 1.0)
    anchor = map_price / known["price"] if map_price and known["price"] else 1.0
    bars = [
        KnownBar(lv["price"] * anchor, lv["priceHigh"] * anchor, lv["longUsd"], lv["shortUsd"])
        for lv in known["levels"]
        if lv["longUsd"] > 0 or lv["shortUsd"] > 0
    ]
    peak = max((max(b.long, b.short) for b in bars), default=0.0)
    return KnownBars(bars, peak, known, anchor)


def known_symbol(symbol: str) -> str:
    """The venue's market beside a model symbol: ``BTC/USDT:USDT`` → ``BTC/USDC:USDC``."""
    return f"{(symbol or 'BTC').split('/')[0]}/USDC:USDC"
