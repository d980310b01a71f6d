"""Plain-Python reference implementation of the heatmap model in ``engine.model``.

One position at a time, lists and loops, the liquidation price of every position computed on its
own with ``engine.liquidation`` at its real entry price and size, and heatmap buckets summed
directly from the open positions. It is slow on purpose: its only job is to be obviously the
model described in ``engine.model``'s docstring, so the vectorized engine can be checked
against it (tests/engine/test_model.py) and timed against it (bench/bench_engine.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.model import Bars, ModelParams
from engine.tiers import MarginTiers
from maps.grid import PriceGrid

DAY_MS = 86_400_000.0
HOUR_MS = 3_600_000.0


@dataclass
class Position:
    side: int  # +1 long, −1 short
    liquidation_price: float
    notional_at_birth: float
    log_scale_at_birth: float
    band: int = 0  # leverage band: 0 ≤ 10x, 1 ≤ 25x, 2 ≤ 50x, 3 ≤ 100x, 4 above


@dataclass
class ReferenceSnapshot:
    timestamp: int
    price: float
    bucket_origin_index: int
    long: list[float]
    short: list[float]
    long_bands: list[list[float]] = field(default_factory=list)  # [band][bucket]
    short_bands: list[list[float]] = field(default_factory=list)


def leverage_band(leverage: float) -> int:
    """The band of a leverage, written out (``maps.bands`` is the engine's)."""
    if leverage <= 10:
        return 0
    if leverage <= 25:
        return 1
    if leverage <= 50:
        return 2
    if leverage <= 100:
        return 3
    return 4


@dataclass
class ReferenceResult:
    predicted_long_usd: list[float]
    predicted_short_usd: list[float]
    snapshots: list[ReferenceSnapshot] = field(default_factory=list)
    open_positions: list[Position] = field(default_factory=list)


def _liquidation_price(
    side: int, entry: float, leverage: float, position_usd: float, tiers: MarginTiers
) -> float:
    from engine.liquidation import isolated_liquidation_price

    value = isolated_liquidation_price(side, entry, leverage, position_usd / entry, tiers)
    return float(np.asarray(value).reshape(-1)[0])


def leverage_table(params: ModelParams, tiers: MarginTiers) -> list[tuple[float, float]]:
    """(leverage, weight) of the usable levels, as ``engine.leverage_profile`` defines them."""
    n = params.leverage_levels
    levels = []
    for i in range(n):
        if n == 1:
            levels.append(params.leverage_min)
        else:
            ratio = params.leverage_max / params.leverage_min
            levels.append(params.leverage_min * ratio ** (i / (n - 1)))
    weights = [lev ** (-params.leverage_alpha) for lev in levels]
    total = sum(weights)
    far_share = params.leverage_far_share
    if params.leverage_far_min >= params.leverage_min:
        far_share = 0.0  # the power law already reaches that far: no far component
    weights = [w / total * (1.0 - far_share) for w in weights]
    total = 1.0
    if far_share > 0:
        # the far component: far_levels levels from far_min up to leverage_min, equal weights
        k = params.leverage_far_levels
        step = (params.leverage_min / params.leverage_far_min) ** (1.0 / k)
        far = [params.leverage_far_min * step**i for i in range(k)]
        levels = far + levels
        weights = [far_share / k] * k + weights
    usable = []
    for lev, w in zip(levels, weights, strict=True):
        long_lp = _liquidation_price(1, 1.0, lev, params.position_usd, tiers)
        short_lp = _liquidation_price(-1, 1.0, lev, params.position_usd, tiers)
        if math.isfinite(long_lp) and math.isfinite(short_lp) and 0 < long_lp < 1 < short_lp:
            usable.append((lev, w / total))
    kept = sum(w for _, w in usable)
    return [(lev, w / kept) for lev, w in usable]


def reference_span(params: ModelParams, tiers: MarginTiers) -> tuple[float, float]:
    """(below, above) as ``ModelParams.span`` defines it, level by level: walk the levels from
    the nearest liquidation outward until ``span_mass`` of the weight is passed."""
    levels = leverage_table(params, tiers)
    out = []
    for side in (1, -1):
        dist = sorted(
            (abs(_liquidation_price(side, 1.0, lev, params.position_usd, tiers) - 1.0), w)
            for lev, w in levels
        )
        total = sum(w for _, w in dist)
        acc, reach = 0.0, dist[-1][0]
        for d, w in dist:
            acc += w
            if acc >= params.span_mass * total * (1 - 1e-12):
                reach = d
                break
        out.append(max(params.span_min_fraction, reach / (1.0 - params.span_room)))
    return min(out[0], 0.95), out[1]


def _long_share(params: ModelParams, bars: Bars, u: int) -> float:
    if params.side_split == "even" or params.side_skew == 0.0:
        return 0.5
    if params.side_split == "candle":
        diff = float(bars.close[u]) - float(bars.open[u])
        signal = 1.0 if diff > 0 else (-1.0 if diff < 0 else 0.0)
    else:
        if bars.volume is None or bars.taker_buy_volume is None:
            signal = 0.0
        else:
            vol = float(bars.volume[u])
            signal = 2.0 * float(bars.taker_buy_volume[u]) / vol - 1.0 if vol > 0 else 0.0
            signal = min(1.0, max(-1.0, signal)) if math.isfinite(signal) else 0.0
    return min(1.0, max(0.0, 0.5 + 0.5 * params.side_skew * signal))


def _entries(params: ModelParams, bars: Bars, u: int) -> list[float]:
    high, low, close = float(bars.high[u]), float(bars.low[u]), float(bars.close[u])
    if params.entry_price == "close":
        return [close]
    if params.entry_price == "typical":
        return [(high + low + close) / 3.0]
    if params.entry_price == "vwap":
        volume = None if bars.volume is None else float(bars.volume[u])
        value = None if bars.quote_volume is None else float(bars.quote_volume[u])
        if volume is None or value is None or not volume > 0 or not math.isfinite(value / volume):
            return [(high + low + close) / 3.0]
        return [min(high, max(low, value / volume))]
    m = params.entry_points
    return [low + (high - low) * ((j + 0.5) / m) for j in range(m)]


def simulate_reference(
    bars: Bars,
    params: ModelParams,
    grid: PriceGrid,
    tiers: MarginTiers,
    snapshot_every: list[bool] | None = None,
) -> ReferenceResult:
    levels = leverage_table(params, tiers)
    below, above = reference_span(params, tiers)
    log_prune = math.log(params.prune_fraction)
    positions: list[Position] = []
    result = ReferenceResult([], [])
    log_scale = 0.0
    prev_close = prev_oi = 0.0
    prev_ts = 0
    for u in range(len(bars)):
        ts = int(bars.timestamp[u])
        high, low, close = float(bars.high[u]), float(bars.low[u]), float(bars.close[u])
        oi = float(bars.open_interest_usd[u]) / close  # contracts
        # 1. consumption by the bar's range (extended to the previous close)
        liquidated_long = liquidated_short = 0.0
        if u > 0:
            low_reach, high_reach = min(low, prev_close), max(high, prev_close)
            survivors = []
            for p in positions:
                hit = (
                    low_reach <= p.liquidation_price
                    if p.side == 1
                    else high_reach >= p.liquidation_price
                )
                if hit:
                    amount = p.notional_at_birth * math.exp(log_scale - p.log_scale_at_birth)
                    if p.side == 1:
                        liquidated_long += amount
                    else:
                        liquidated_short += amount
                else:
                    survivors.append(p)
            positions = survivors
        result.predicted_long_usd.append(liquidated_long)
        result.predicted_short_usd.append(liquidated_short)
        # 2. closes, turnover and decay scale every open position alike
        if u == 0:
            opened = params.seed_fraction * oi
        else:
            delta = oi - prev_oi
            elapsed = float(ts - prev_ts)
            closed = min(1.0, max(0.0, -delta / prev_oi)) if prev_oi > 0 else 0.0
            churn_log = -params.turnover_per_day * elapsed / DAY_MS
            churn = -math.expm1(churn_log)
            step = math.log1p(-min(closed, 1.0 - 1e-12)) + churn_log
            if params.half_life_hours > 0:
                step -= math.log(2.0) * elapsed / (params.half_life_hours * HOUR_MS)
            log_scale += step
            opened = max(delta, 0.0) + churn * prev_oi
        positions = [p for p in positions if not log_scale < p.log_scale_at_birth + log_prune]
        # 3. opens: a long and a short per contract, over entry points and leverage levels
        if opened > 0:
            share = _long_share(params, bars, u)
            entries = _entries(params, bars, u)
            for side, side_share in ((1, 2.0 * share), (-1, 2.0 * (1.0 - share))):
                for entry in entries:
                    for leverage, weight in levels:
                        notional = opened / len(entries) * entry * side_share * weight
                        if notional <= 0:
                            continue
                        lp = _liquidation_price(side, entry, leverage, params.position_usd, tiers)
                        band = leverage_band(leverage)
                        positions.append(Position(side, lp, notional, log_scale, band))
        if snapshot_every is not None and snapshot_every[u]:
            size, origin = grid.bucket_size, grid.origin
            lo = math.floor((close * (1.0 - below) - origin) / size)
            hi = math.floor((close * (1.0 + above) - origin) / size) + 1
            long_levels = [0.0] * (hi - lo)
            short_levels = [0.0] * (hi - lo)
            long_bands = [[0.0] * (hi - lo) for _ in range(5)]
            short_bands = [[0.0] * (hi - lo) for _ in range(5)]
            for p in positions:
                k = math.floor((p.liquidation_price - grid.origin) / grid.bucket_size)
                if lo <= k < hi:
                    amount = p.notional_at_birth * math.exp(log_scale - p.log_scale_at_birth)
                    (long_levels if p.side == 1 else short_levels)[k - lo] += amount
                    (long_bands if p.side == 1 else short_bands)[p.band][k - lo] += amount
            result.snapshots.append(
                ReferenceSnapshot(ts, close, lo, long_levels, short_levels, long_bands, short_bands)
            )
        prev_close, prev_oi, prev_ts = close, oi, ts
    result.open_positions = positions
    return result
