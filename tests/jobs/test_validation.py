"""Batch validation rejects every malformed row kind with a reason naming the row."""

from __future__ import annotations

import math

import pytest

from jobs.validation import (
    BatchRejected,
    timeframe_ms,
    validate_candles,
    validate_funding,
    validate_open_interest,
)
from models.records import CandleRow, FundingRateRow, OpenInterestRow

STEP = 300_000
NOW = 1_780_000_000_000 - 1_780_000_000_000 % STEP


def candle(ts: int, o: float = 100, h: float = 110, lo: float = 90, c: float = 105) -> CandleRow:
    return CandleRow(ts, o, h, lo, c, 1.0, 0.5)


def test_timeframes() -> None:
    assert timeframe_ms("1m") == 60_000
    assert timeframe_ms("5m") == STEP
    assert timeframe_ms("1h") == 3_600_000
    assert timeframe_ms("1d") == 86_400_000
    with pytest.raises(ValueError, match="unknown timeframe"):
        timeframe_ms("5x")


def test_good_candles_pass() -> None:
    validate_candles([candle(NOW - 2 * STEP), candle(NOW - STEP)], STEP, NOW)


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([candle(NOW - STEP, o=math.nan)], "open = nan"),
        ([candle(NOW - STEP, lo=-1)], "low = -1"),
        ([candle(NOW - STEP, c=0)], "close = 0"),
        ([candle(NOW - STEP, h=80, lo=90, o=85, c=85)], "high 80 < low 90"),
        ([candle(NOW - STEP + 1)], "off the 300s period grid"),
        ([candle(NOW + STEP)], "in the future"),
        ([candle(NOW - STEP), candle(NOW - STEP)], "does not increase"),
        ([candle(NOW - STEP, o=200)], "outside"),
    ],
)
def test_bad_candles_rejected(rows: list[CandleRow], reason: str) -> None:
    with pytest.raises(BatchRejected, match=reason):
        validate_candles(rows, STEP, NOW)


def test_open_interest_rules() -> None:
    validate_open_interest([OpenInterestRow(NOW - STEP, 10.0, None)], STEP, NOW)
    with pytest.raises(BatchRejected, match="open_interest = -1"):
        validate_open_interest([OpenInterestRow(NOW - STEP, -1.0, 5.0)], STEP, NOW)
    with pytest.raises(BatchRejected, match="no open interest value"):
        validate_open_interest([OpenInterestRow(NOW - STEP, None, None)], STEP, NOW)
    with pytest.raises(BatchRejected, match="open_interest_usd = inf"):
        validate_open_interest([OpenInterestRow(NOW - STEP, 1.0, math.inf)], STEP, NOW)


def test_funding_rules() -> None:
    validate_funding([FundingRateRow(NOW - 5, -0.0001), FundingRateRow(NOW - 1, 0.0003)], NOW)
    with pytest.raises(BatchRejected, match="funding_rate = nan"):
        validate_funding([FundingRateRow(NOW - 5, math.nan)], NOW)
    with pytest.raises(BatchRejected, match="in the future"):
        validate_funding([FundingRateRow(NOW + 1, 0.0)], NOW)
