"""When each cohort dies, and the liquidations the deaths predict.

A cohort dies at the first later bar whose range reaches its liquidation price (found for all
cohorts at once by binary lifting over a sparse table of running lows/highs: no per-position
Python loop) or when closes and decay prune it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.leverage_profile import LeverageProfile
from engine.model.arrays import FloatArray
from engine.model.cohorts import Cohorts
from engine.model.drivers import BarDrivers
from engine.model.params import ModelParams


def _sparse_table(values: FloatArray, levels: int) -> list[FloatArray]:
    """table[k][i] = min(values[i : i + 2**k]) with +inf beyond the end."""
    n = len(values)
    size = n + (1 << levels)
    base = np.full(size, np.inf)
    base[:n] = values
    table = [base]
    for k in range(1, levels):
        prev = table[-1]
        half = 1 << (k - 1)
        cur = prev.copy()
        np.minimum(prev[:-half], prev[half:], out=cur[:-half])
        table.append(cur)
    return table


def first_reach(
    reach: FloatArray, threshold: FloatArray, start: npt.NDArray[np.int64], chunk: int = 1 << 20
) -> npt.NDArray[np.int64]:
    """First index ``u ≥ start`` with ``reach[u] ≤ threshold`` (``len(reach)`` if none).

    Binary lifting over a sparse table of running minima, all queries at once.
    """
    n = len(reach)
    out = np.full(len(threshold), n, dtype=np.int64)
    if n == 0 or len(threshold) == 0:
        return out
    levels = max(1, int(n).bit_length())
    table = _sparse_table(reach, levels)
    return _lift(table, levels, threshold, start, n, chunk)


def _lift(
    table: list[FloatArray],
    levels: int,
    threshold: FloatArray,
    start: npt.NDArray[np.int64],
    n: int,
    chunk: int = 1 << 20,
) -> npt.NDArray[np.int64]:
    out = np.empty(len(threshold), dtype=np.int64)
    for a in range(0, len(threshold), chunk):
        x = threshold[a : a + chunk]
        pos = start[a : a + chunk].astype(np.int64, copy=True)
        above = np.empty(len(x), dtype=bool)
        for k in range(levels - 1, -1, -1):
            np.greater(table[k][pos], x, out=above)
            pos += above.astype(np.int64) << k
        out[a : a + chunk] = pos
    return out


def _first_below(log_scale: FloatArray, limit: FloatArray) -> npt.NDArray[np.int64]:
    """First index with ``log_scale < limit`` (``log_scale`` is non-increasing)."""
    return np.searchsorted(-log_scale, -limit, side="right").astype(np.int64)


@dataclass(frozen=True)
class Fates:
    hit: npt.NDArray[np.int64]  # bar where the range reaches the LP (n = not within this run)
    pruned: npt.NDArray[np.int64]  # bar after whose closes/decay the cohort is dropped

    @property
    def death(self) -> npt.NDArray[np.int64]:
        return np.minimum(self.hit, self.pruned)


def cohort_fates(cohorts: Cohorts, drivers: BarDrivers, params: ModelParams) -> Fates:
    n = len(drivers.log_scale)
    # longs are reached when low ≤ LP; shorts when −high ≤ −LP: one table of running minima of
    # both (lows, then negated highs) so all cohorts are searched in one pass without masks
    levels = max(1, int(n).bit_length())
    width = n + (1 << levels)
    lows = _sparse_table(drivers.low_reach, levels)
    highs = _sparse_table(-drivers.high_reach, levels)
    table = [np.concatenate([lo, hi]) for lo, hi in zip(lows, highs, strict=True)]
    is_short = cohorts.side < 0
    offset = is_short.astype(np.int64) * width
    start = cohorts.birth + 1 + offset
    threshold = cohorts.liquidation_price * cohorts.side
    hit = _lift(table, levels, threshold, start, n) - offset
    np.minimum(hit, n, out=hit)
    log_prune = math.log(params.prune_fraction)
    # cohorts born in the same bar share log_scale_at_birth: search once per bar
    pruned_by_bar = _first_below(drivers.log_scale, drivers.log_scale + log_prune)
    n_state = int(np.searchsorted(cohorts.birth, 0))
    pruned = np.empty(len(hit), dtype=np.int64)
    pruned[:n_state] = _first_below(
        drivers.log_scale, cohorts.log_scale_at_birth[:n_state] + log_prune
    )
    pruned[n_state:] = pruned_by_bar[cohorts.birth[n_state:]]
    np.minimum(pruned, n, out=pruned)
    return Fates(hit=hit, pruned=pruned)


def predicted_liquidations(
    cohorts: Cohorts, fates: Fates, drivers: BarDrivers
) -> tuple[FloatArray, FloatArray]:
    n = len(drivers.log_scale)
    liquidated = np.flatnonzero((fates.hit < n) & (fates.hit <= fates.pruned))
    idx = fates.hit[liquidated]
    amount = cohorts.notional_at_birth[liquidated] * np.exp(
        drivers.log_scale_before[idx] - cohorts.log_scale_at_birth[liquidated]
    )
    longs = cohorts.side[liquidated] == 1
    long_usd = np.bincount(idx[longs], weights=amount[longs], minlength=n)
    short_usd = np.bincount(idx[~longs], weights=amount[~longs], minlength=n)
    return long_usd.astype(np.float64), short_usd.astype(np.float64)


def _range_min(
    table: list[FloatArray], start: npt.NDArray[np.int64], stop: npt.NDArray[np.int64]
) -> FloatArray:
    """``min(values[start:stop])`` per query (``+inf`` where empty) from a sparse table."""
    length = stop - start
    out = np.full(len(start), np.inf)
    ok = np.flatnonzero(length > 0)
    if len(ok) == 0:
        return out
    k = np.zeros(len(ok), dtype=np.int64)
    # floor(log2(length)) without float rounding: count the powers of two ≤ length
    ln = length[ok]
    for level in range(1, len(table)):
        k += ln >= (1 << level)
    s = start[ok]
    e = stop[ok] - (np.int64(1) << k)
    flat = np.stack(table)  # (levels, size)
    out[ok] = np.minimum(flat[k, s], flat[k, e])
    return out


def predict_only(
    drivers: BarDrivers, profile: LeverageProfile, params: ModelParams
) -> tuple[FloatArray, FloatArray]:
    """Per-bar predicted liquidations from a fresh state, without materializing every cohort.

    The same numbers as ``predicted_liquidations(new_cohorts(...), cohort_fates(...))`` (the
    same float operations in the same order, so bit for bit), found faster: all cohorts of a bar
    share their birth and prune bars, so one range-minimum per bar and side tells which of its
    levels are reached at all before the bar's cohorts are pruned; only those are searched for
    the bar that reaches them, over a window of the longest lifetime instead of the whole run.
    Used by backtests and calibration (``simulate(..., keep_state=False)``).
    """
    n = len(drivers.log_scale)
    long_usd = np.zeros(n)
    short_usd = np.zeros(n)
    opening = np.flatnonzero(drivers.opened_contracts > 0)
    if len(opening) == 0 or n < 2:
        return long_usd, short_usd
    m = drivers.entry.shape[1]
    log_prune = math.log(params.prune_fraction)
    pruned = _first_below(drivers.log_scale, drivers.log_scale[opening] + log_prune)
    start = opening + 1
    stop = np.minimum(pruned + 1, n)  # reachable bars: birth+1 .. pruned (inclusive), < n
    life = int((stop - start).max(initial=0))
    if life <= 0:
        return long_usd, short_usd
    levels = max(1, life.bit_length())
    share = drivers.long_share[opening]
    side_share = np.stack([2.0 * share, 2.0 * (1.0 - share)], axis=1)  # (nb, 2)
    entry = drivers.entry[opening]  # (nb, m)
    per_entry = drivers.opened_contracts[opening, None] * (1.0 / m) * entry  # (nb, m)
    born_scale = drivers.log_scale[opening]
    for s, (ratio, reach, out) in enumerate(
        (
            (profile.long_ratio, drivers.low_reach, long_usd),
            (profile.short_ratio, -drivers.high_reach, short_usd),
        )
    ):
        table = _sparse_table(reach, levels)
        sign = 1.0 if s == 0 else -1.0
        # threshold per (bar, entry point, level): sign·LP, reached when reach ≤ threshold
        lp = entry[:, :, None] * (sign * ratio)[None, None, :]  # sign·(entry·ratio), exact
        lowest = _range_min(table, start, stop)
        hits = np.flatnonzero((lowest[:, None, None] <= lp).reshape(-1))
        if len(hits) == 0:
            continue
        per_bar = m * len(ratio)
        bar_of = hits // per_bar
        rest = hits - bar_of * per_bar
        point, level = rest // len(ratio), rest % len(ratio)
        hit = _lift(table, levels, lp.reshape(-1)[hits], start[bar_of], n)
        notional = (per_entry[bar_of, point] * side_share[bar_of, s]) * profile.weight[level]
        amount = notional * np.exp(drivers.log_scale_before[hit] - born_scale[bar_of])
        out += np.bincount(hit, weights=amount, minlength=n)
    return long_usd, short_usd
