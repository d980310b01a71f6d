"""A heatmap's layout and matrices: time columns × price rows of long and short USD.

Column ``j`` holds the map at the close of its interval; row ``i`` is output bucket
``first_row + i``. Stored vectors are placed at the grid's own step, summed over exchanges, and
merged ``factor`` rows at a time into the requested bucket size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from maps import grid
from maps.errors import TooManyCells, TooManyColumns

HOUR_S = 3600

# (column, grid index of element 0, long USD, short USD) of one stored snapshot
Placement = tuple[int, int, np.ndarray, np.ndarray]


@dataclass(frozen=True, slots=True)
class RowWindow:
    """Rows ``[first, first + count)`` in buckets of the requested size."""

    first: int
    count: int


def finest_step(
    span_s: float, max_columns: int, base_s: int, steps_s: Sequence[int], sub_hour_stored: bool
) -> int | None:
    """The finest column width of ``steps_s`` that covers ``span_s`` in at most
    ``max_columns`` columns: at least the base bar, and whole hours unless base-resolution
    snapshots are stored for the range (``sub_hour_stored``). None when none fits."""
    for step in sorted(steps_s):
        if step < base_s:
            continue
        if step % HOUR_S and not sub_hour_stored:
            continue  # sub-hour columns need base-resolution snapshots, kept for recent days only
        if math.ceil(span_s / step) <= max_columns:
            return step
    return None


def check_columns(columns: int, max_columns: int) -> None:
    if columns > max_columns:
        raise TooManyColumns(
            f"{columns} columns exceed the maximum of {max_columns}; use a longer interval or a "
            "shorter range",
            max_columns,
        )


@dataclass(frozen=True, slots=True)
class StoredRange:
    """What a heatmap's stored maps cover: the traded range (lowest and highest price) and the
    maps' full span (lowest and highest price any stored bucket reaches). None: nothing stored."""

    price_low: float | None = None
    price_high: float | None = None
    map_low: float | None = None
    map_high: float | None = None


def price_rows(
    price_min: float | None,
    price_max: float | None,
    stored: StoredRange,
    within_pct: float | None,
    bucket_size: float,
) -> RowWindow:
    """The rows of ``[price_min, price_max]``. An omitted bound is the maps' full span (every
    stored level), or with ``within_pct`` the traded range widened by that many percent. No
    rows when neither gives a non-empty range."""
    low, high = price_min, price_max
    if within_pct is None:
        default_low, default_high = stored.map_low, stored.map_high
    elif stored.price_low is not None and stored.price_high is not None:
        default_low = stored.price_low * (1 - within_pct / 100)
        default_high = stored.price_high * (1 + within_pct / 100)
    else:
        default_low = default_high = None
    if (low is None or high is None) and default_low is not None and default_high is not None:
        low = default_low if low is None else low
        high = default_high if high is None else high
    if low is None or high is None or high <= low:
        low, high = 0.0, 0.0
    first = math.floor(low / bucket_size + 1e-9)
    end = max(math.ceil(high / bucket_size - 1e-9), first)
    return RowWindow(first, end - first)


def check_cells(rows: int, columns: int, max_cells: int) -> None:
    if rows * columns > max_cells:
        raise TooManyCells(
            f"{rows} rows × {columns} columns = {rows * columns} cells exceed the maximum of "
            f"{max_cells}; narrow the price range, coarsen bucketSize or the interval, or "
            "shorten the range",
            max_cells,
        )


def matrices(
    rows: RowWindow, columns: int, factor: int, series: Sequence[Sequence[Placement]]
) -> tuple[np.ndarray, np.ndarray]:
    """The long and short ``rows.count × columns`` float32 matrices: each series' stored
    vectors summed over series and merged ``factor`` grid rows into one row of the requested
    bucket size.

    Memory is ``rows.count × columns`` (the size the limits check) whatever ``factor`` is:
    with a merge, each stored value is added into its output row directly; the matrix at the
    grid step (``factor`` times as many rows) is never built."""
    if factor == 1:
        long_m = np.zeros((rows.count, columns), np.float32)
        short_m = np.zeros((rows.count, columns), np.float32)
        for placements in series:
            long_m += grid.place_columns(
                rows.count, columns, rows.first, [(j, first, lo) for j, first, lo, _ in placements]
            )
            short_m += grid.place_columns(
                rows.count, columns, rows.first, [(j, first, sh) for j, first, _, sh in placements]
            )
        return long_m, short_m
    grid_first, grid_end = rows.first * factor, (rows.first + rows.count) * factor
    long_m64 = np.zeros((rows.count, columns), np.float64)
    short_m64 = np.zeros((rows.count, columns), np.float64)
    for placements in series:
        for column, first, long_usd, short_usd in placements:
            lo, hi = max(first, grid_first), min(first + long_usd.size, grid_end)
            if hi <= lo:
                continue
            merged = np.arange(lo, hi, dtype=np.int64) // factor - rows.first
            cut = slice(lo - first, hi - first)
            long_m64[:, column] += np.bincount(merged, weights=long_usd[cut], minlength=rows.count)
            short_m64[:, column] += np.bincount(
                merged, weights=short_usd[cut], minlength=rows.count
            )
    return long_m64.astype(np.float32), short_m64.astype(np.float32)


def peak(long_usd: np.ndarray, short_usd: np.ndarray) -> float:
    """The largest value in either matrix (0 when both are empty)."""
    return float(max(long_usd.max(initial=0.0), short_usd.max(initial=0.0)))
