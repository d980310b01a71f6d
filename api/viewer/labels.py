"""How the pictures label USD, ages and time axes: the rules of ``static/viewer.json``.

The page's ``static/format.js`` reads the same rules; tests/viewer checks both print the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from api.viewer.shared import style

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAY_S = 86_400


def _fixed(value: float, digits: int) -> str:
    """``value.toFixed(digits)`` of JavaScript: the exact binary value, ties away from zero."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def usd(value: float) -> str:
    """$1.23B / $456.7M / $12.3K / $512 / -$5"""
    v = abs(value)
    unit = next(u for u in style()["usd"]["units"] if v >= u["at_least"])
    sign = "-" if value < 0 else ""
    return f"{sign}${_fixed(v / unit['divisor'], unit['digits'])}{unit['suffix']}"


def age(seconds: float) -> str:
    """ "45 s", "3 min", "5 h", "162 d" (as format.js ``age``)."""
    if seconds < 90:
        return f"{_fixed(max(0.0, seconds), 0)} s"
    if seconds < 5400:
        return f"{_fixed(seconds / 60, 0)} min"
    if seconds < 2 * DAY_S:
        return f"{_fixed(seconds / 3600, 0)} h"
    return f"{_fixed(seconds / DAY_S, 0)} d"


@dataclass(frozen=True, slots=True)
class TimeTick:
    t: float  # epoch seconds
    label: str
    major: bool  # at 00:00 UTC


def time_ticks(start: float, end: float, width_px: float) -> list[TimeTick]:
    """Ticks at round UTC steps at least ``min_px`` apart; the date at midnight, else HH:MM."""
    rule = style()["time_ticks"]
    span = end - start

    def spacing(step: float) -> float:
        return step / span * width_px if span > 0 else math.inf

    step = next((s for s in rule["steps_s"] if spacing(s) >= rule["min_px"]), rule["fallback_s"])
    ticks = []
    t = math.ceil(start / step) * step
    while t <= end:
        when = datetime.fromtimestamp(t, UTC)
        midnight = when.hour == 0 and when.minute == 0
        label = (
            f"{MONTHS[when.month - 1]} {when.day}"
            if midnight or step >= DAY_S
            else f"{when:%H}:{when:%M}"
        )
        ticks.append(TimeTick(float(t), label, midnight))
        t += step
    return ticks
