"""Batch validation: a page of exchange data is accepted whole or rejected whole, with a reason.

Rejection never writes anything; the job run records the reason and the watermark stays put.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from liqmap.timeframes import timeframe_ms
from models.records import CandleRow, FundingRateRow, OpenInterestRow

__all__ = [
    "BatchRejected",
    "timeframe_ms",  # re-exported: callers validating a page also size its period grid
    "validate_candles",
    "validate_funding",
    "validate_open_interest",
]


class BatchRejected(ValueError):
    """The batch breaks an invariant; ``str(exc)`` names the row and the rule."""


def _bad_number(value: float | None, *, allow_zero: bool = False) -> bool:
    if value is None or not math.isfinite(value):
        return True
    return value < 0 or (value == 0 and not allow_zero)


def _check_time(i: int, ts: int, step_ms: int | None, now_ms: int, previous: int | None) -> None:
    if step_ms and ts % step_ms:
        raise BatchRejected(f"row {i}: timestamp {ts} is off the {step_ms // 1000}s period grid")
    if ts > now_ms:
        raise BatchRejected(f"row {i}: timestamp {ts} is in the future (now {now_ms})")
    if previous is not None and ts <= previous:
        raise BatchRejected(f"row {i}: timestamp {ts} does not increase (previous {previous})")


def validate_candles(rows: Sequence[CandleRow], step_ms: int, now_ms: int) -> None:
    previous: int | None = None
    for i, r in enumerate(rows):
        _check_time(i, r.timestamp, step_ms, now_ms, previous)
        previous = r.timestamp
        for name in ("open", "high", "low", "close"):
            if _bad_number(getattr(r, name)):
                raise BatchRejected(f"row {i} ({r.timestamp}): {name} = {getattr(r, name)!r}")
        if r.high < r.low:
            raise BatchRejected(f"row {i} ({r.timestamp}): high {r.high} < low {r.low}")
        if not (r.low <= r.open <= r.high and r.low <= r.close <= r.high):
            raise BatchRejected(f"row {i} ({r.timestamp}): open/close outside [low, high]")
        for name in ("volume", "taker_buy_volume"):
            value = getattr(r, name)
            if value is not None and _bad_number(value, allow_zero=True):
                raise BatchRejected(f"row {i} ({r.timestamp}): {name} = {value!r}")


def validate_open_interest(rows: Sequence[OpenInterestRow], step_ms: int, now_ms: int) -> None:
    previous: int | None = None
    for i, r in enumerate(rows):
        _check_time(i, r.timestamp, step_ms, now_ms, previous)
        previous = r.timestamp
        if r.open_interest is None and r.open_interest_usd is None:
            raise BatchRejected(f"row {i} ({r.timestamp}): no open interest value")
        for name in ("open_interest", "open_interest_usd"):
            value = getattr(r, name)
            if value is not None and _bad_number(value, allow_zero=True):
                raise BatchRejected(f"row {i} ({r.timestamp}): {name} = {value!r}")


def validate_funding(rows: Sequence[FundingRateRow], now_ms: int) -> None:
    previous: int | None = None
    for i, r in enumerate(rows):
        _check_time(i, r.timestamp, None, now_ms, previous)
        previous = r.timestamp
        if r.funding_rate is None or not math.isfinite(r.funding_rate) or abs(r.funding_rate) > 1:
            raise BatchRejected(f"row {i} ({r.timestamp}): funding_rate = {r.funding_rate!r}")
