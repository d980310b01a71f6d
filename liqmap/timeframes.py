"""Bar lengths ("5m", "1h", "1d"): the one parser and the one formatter the project uses.

Settings validate with them, adapters size their request windows with them, storage names the
bars of derived series with them. The notation is ccxt's: an integer and a unit, ``m`` minutes,
``h`` hours, ``d`` days, ``w`` weeks.
"""

from __future__ import annotations

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
UNITS_MS = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": WEEK_MS}

# Bars the model can run on. Candles and open interest share one base bar, and open-interest
# history is served at these periods only (Binance 5m…1d; Bybit 5m, 15m, 30m, 1h, 4h, 1d; OKX 5m,
# 1h, 1d: each adapter lists its own): no venue serves 1-minute open interest.
BASE_TIMEFRAMES = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds in one bar: ``"5m"`` → 300000."""
    count, unit = timeframe[:-1], timeframe[-1:]
    if unit not in UNITS_MS or not count.isdigit() or int(count) <= 0:
        raise ValueError(f"unknown timeframe {timeframe!r}; use e.g. 1m, 5m, 1h, 1d")
    return int(count) * UNITS_MS[unit]


def timeframe_name(ms: int) -> str:
    """The name of a bar ``ms`` long, in the largest unit that divides it: 300000 → ``"5m"``."""
    if ms <= 0 or ms % MINUTE_MS:
        raise ValueError(f"a bar of {ms} ms is not a whole number of minutes")
    for unit in ("w", "d", "h", "m"):
        if ms % UNITS_MS[unit] == 0:
            return f"{ms // UNITS_MS[unit]}{unit}"
    raise AssertionError("unreachable: every whole number of minutes has a name")


def check_base_timeframe(timeframe: str) -> str:
    """``timeframe`` if the model can run on it, else ValueError saying why and what is valid."""
    timeframe_ms(timeframe)
    if timeframe not in BASE_TIMEFRAMES:
        raise ValueError(
            f"timeframe {timeframe!r} cannot be the base bar: candles and open interest share it, "
            "and open-interest history is served at these periods only (none finer than 5m); "
            f"valid: {', '.join(BASE_TIMEFRAMES)}"
        )
    return timeframe
