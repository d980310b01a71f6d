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
    major: bool  # starts a larger unit than the step's: a day, a month or a year


def _tick_times(start: float, end: float, unit: str, every: int, unit_s: int) -> list[float]:
    """Instants of one step's ticks in [start, end], at round UTC dates and times."""
    if unit in ("minute", "hour"):
        step = every * unit_s
        first = math.ceil(start / step) * step
        return [float(t) for t in range(int(first), int(end) + 1, step)] if first <= end else []
    out: list[float] = []
    if unit == "day":
        day = math.floor(start / DAY_S) * DAY_S
        while day <= end:
            dom = datetime.fromtimestamp(day, UTC).day
            if day >= start and (dom - 1) % every == 0 and (every == 1 or dom <= 29 - every):
                out.append(float(day))
            day += DAY_S
        return out
    opening = datetime.fromtimestamp(start, UTC)
    year, month = opening.year, opening.month if unit == "month" else 1
    while True:
        t = datetime(year, month, 1, tzinfo=UTC).timestamp()
        if t > end:
            return out
        keep = (month - 1) % every == 0 if unit == "month" else year % every == 0
        if t >= start and keep:
            out.append(t)
        if unit == "month":
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        else:
            year += 1


def _label(t: float, unit: str) -> tuple[str, bool, bool]:
    """(label, major, is a date) of a tick."""
    when = datetime.fromtimestamp(t, UTC)
    midnight = when.hour == 0 and when.minute == 0
    new_year = midnight and when.month == 1 and when.day == 1
    date = f"{MONTHS[when.month - 1]} {when.day}"
    if unit in ("minute", "hour"):
        if new_year:
            return str(when.year), True, False
        return (date, True, True) if midnight else (f"{when:%H}:{when:%M}", False, False)
    if unit == "day":
        return (str(when.year), True, False) if new_year else (date, when.day == 1, True)
    if unit == "month":
        if when.month == 1:
            return str(when.year), True, False
        return MONTHS[when.month - 1], False, True
    return str(when.year), True, False


def time_ticks(
    start: float, end: float, width_px: float, room_left: float = 0.0, room_right: float = 0.0
) -> list[TimeTick]:
    """The time axis of [start, end] (epoch seconds) over ``width_px``: the rule of viewer.json
    (as format.js ``timeTicks``). ``room_left``/``room_right``: pixels free beside the plot."""
    rule = style()["time_ticks"]
    span = end - start
    if not span > 0 or not width_px > 0:
        return []
    unit_s = rule["unit_s"]
    unit, every = next(
        ((u, n) for u, n in rule["steps"] if n * unit_s[u] / span * width_px >= rule["min_px"]),
        rule["steps"][-1],
    )

    def x(t: float) -> float:
        return (t - start) / span * width_px

    def fits(t: float, label: str) -> bool:
        half = len(label) * rule["char_px"] / 2
        return x(t) - half >= -room_left and x(t) + half <= width_px + room_right

    ticks = [
        (t, *_label(t, unit))
        for t in _tick_times(start, end, unit, every, unit_s[unit])
        if fits(t, _label(t, unit)[0])
    ]
    if datetime.fromtimestamp(start, UTC).year != datetime.fromtimestamp(end, UTC).year:
        # the range spans two years: the first date label also says which year it is in (a
        # date whose longer label would not fit is left out, so no month is left ambiguous)
        while ticks and ticks[0][3]:
            t, label, major, _ = ticks[0]
            dated = f"{label} {datetime.fromtimestamp(t, UTC).year}"
            if fits(t, dated):
                ticks[0] = (t, dated, major, True)
                break
            ticks.pop(0)
    out: list[TimeTick] = []
    right = -math.inf
    for t, label, major, _ in ticks:  # labels never overlap, whatever their lengths
        half = len(label) * rule["char_px"] / 2
        if x(t) - half >= right + rule["gap_px"]:
            out.append(TimeTick(t, label, major))
            right = x(t) + half
    return out
