"""Per-bar drivers, vectorized over bars: what each bar does to the book.

The range it trades through (extended to the previous close, so a gap counts as traded), the
closes and decay that act on every position alike (one global log-scale ``L``), and the
contracts it opens, at which entry prices and with which long/short split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.model.arrays import FloatArray
from engine.model.bars import Bars
from engine.model.params import ModelParams
from engine.model.state import EngineState

LN2 = math.log(2.0)
HOUR_MS = 3_600_000.0
DAY_MS = 86_400_000.0


@dataclass(frozen=True)
class BarDrivers:
    """What each bar does to the book, derived from the bars and the previous bar."""

    low_reach: FloatArray  # lowest price traded since the previous close
    high_reach: FloatArray
    log_step: FloatArray  # log of the factor closes and decay apply to every position
    log_scale: FloatArray  # L after each bar
    log_scale_before: FloatArray  # L before each bar (after the previous one)
    opened_contracts: FloatArray  # contracts opened, each as a long and a short
    long_share: FloatArray
    entry: FloatArray  # (n, entry_points)
    oi_contracts: FloatArray


def entry_prices(bars: Bars, params: ModelParams) -> FloatArray:
    if params.entry_price == "close":
        return bars.close[:, None].copy()
    if params.entry_price == "typical":
        return ((bars.high + bars.low + bars.close) / 3.0)[:, None]
    if params.entry_price == "vwap":
        return bar_vwap(bars)[:, None]
    m = params.entry_points
    frac = (np.arange(m, dtype=np.float64) + 0.5) / m
    return bars.low[:, None] + (bars.high - bars.low)[:, None] * frac[None, :]


def bar_vwap(bars: Bars) -> FloatArray:
    """Each bar's volume-weighted price, ``quote_volume / volume``, kept inside [low, high].

    Bars without a usable volume (no data, zero volume) fall back to the typical price.
    """
    typical = (bars.high + bars.low + bars.close) / 3.0
    if bars.volume is None or bars.quote_volume is None:
        return typical
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = bars.quote_volume / bars.volume
    usable = np.isfinite(vwap) & (bars.volume > 0)
    return np.where(usable, np.clip(vwap, bars.low, bars.high), typical)


def long_shares(bars: Bars, params: ModelParams) -> FloatArray:
    n = len(bars)
    if params.side_split == "even" or params.side_skew == 0.0:
        return np.full(n, 0.5)
    if params.side_split == "candle":
        signal = np.sign(bars.close - bars.open)
    else:
        if bars.volume is None or bars.taker_buy_volume is None:
            signal = np.zeros(n)
        else:
            vol = bars.volume
            with np.errstate(divide="ignore", invalid="ignore"):
                signal = 2.0 * bars.taker_buy_volume / vol - 1.0
            # no (or missing) volume: no information about the side
            signal = np.where((vol > 0) & np.isfinite(signal), np.clip(signal, -1.0, 1.0), 0.0)
    return np.clip(0.5 + 0.5 * params.side_skew * signal, 0.0, 1.0)


def bar_drivers(bars: Bars, params: ModelParams, state: EngineState) -> BarDrivers:
    n = len(bars)
    fresh = state.last_timestamp < 0
    oi_contracts = bars.open_interest_usd / bars.close
    prev_close = np.empty(n)
    prev_oi = np.empty(n)
    prev_ts = np.empty(n, dtype=np.int64)
    prev_close[1:] = bars.close[:-1]
    prev_oi[1:] = oi_contracts[:-1]
    prev_ts[1:] = bars.timestamp[:-1]
    if fresh:
        prev_close[0], prev_oi[0], prev_ts[0] = bars.close[0], oi_contracts[0], bars.timestamp[0]
    else:
        if bars.timestamp[0] <= state.last_timestamp:
            raise ValueError(
                f"bar {int(bars.timestamp[0])} is not after the state's last bar "
                f"{state.last_timestamp}"
            )
        prev_close[0], prev_oi[0], prev_ts[0] = (
            state.last_close,
            state.last_oi_contracts,
            state.last_timestamp,
        )
    low_reach = np.minimum(bars.low, prev_close)
    high_reach = np.maximum(bars.high, prev_close)
    delta = oi_contracts - prev_oi
    elapsed = (bars.timestamp - prev_ts).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = np.where(prev_oi > 0, np.clip(-delta / prev_oi, 0.0, 1.0), 0.0)
    # turnover: positions closed and reopened at the same rate, invisible in net open interest;
    # it keeps a fresh layer of levels near the price that small moves can reach
    # (a Poisson rate: over ``dt`` the fraction 1 − exp(−rate·dt) is closed and reopened, so a
    # long gap turns the book over almost completely instead of more than once)
    churn_log = -params.turnover_per_day * elapsed / DAY_MS
    churn = -np.expm1(churn_log)
    # a full close would be log(0); keep a sliver so the arithmetic stays finite
    log_step = np.log1p(-np.minimum(closed, 1.0 - 1e-12)) + churn_log
    if params.half_life_hours > 0:
        log_step = log_step - LN2 * elapsed / (params.half_life_hours * HOUR_MS)
    opened_contracts = np.maximum(delta, 0.0) + churn * prev_oi
    if fresh:
        log_step[0] = 0.0
        opened_contracts[0] = params.seed_fraction * oi_contracts[0]
    log_scale = np.cumsum(np.concatenate(([state.log_scale], log_step)))
    entry = entry_prices(bars, params)
    return BarDrivers(
        low_reach=low_reach,
        high_reach=high_reach,
        log_step=log_step,
        log_scale=log_scale[1:],
        log_scale_before=log_scale[:-1],
        opened_contracts=opened_contracts,
        long_share=long_shares(bars, params),
        entry=entry,
        oi_contracts=oi_contracts,
    )
