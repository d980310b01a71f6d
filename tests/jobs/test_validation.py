"""Batch validation rejects every malformed row kind with a reason naming the row."""

from __future__ import annotations

import math

import pytest

from jobs.validation import (
    BatchRejected,
    validate_candles,
    validate_funding,
    validate_open_interest,
)
from liqmap.timeframes import timeframe_ms, timeframe_name
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
    assert timeframe_ms("1w") == 7 * 86_400_000
    for bad in ("5x", "0m", "m", "", "-5m", "1.5h", "5M"):
        with pytest.raises(ValueError, match="unknown timeframe"):
            timeframe_ms(bad)


@pytest.mark.parametrize("name", ["1m", "5m", "15m", "90m", "1h", "4h", "1d", "3d", "1w"])
def test_timeframe_names_round_trip(name: str) -> None:
    assert timeframe_name(timeframe_ms(name)) == name


def test_timeframe_name_uses_the_largest_unit() -> None:
    assert timeframe_name(30 * 60_000) == "30m"
    assert timeframe_name(120 * 60_000) == "2h"
    assert timeframe_name(24 * 3_600_000) == "1d"
    assert timeframe_name(14 * 86_400_000) == "2w"
    with pytest.raises(ValueError, match="whole number of minutes"):
        timeframe_name(90_000)


def test_one_timeframe_implementation() -> None:
    """The jobs, the adapters and storage all use liqmap.timeframes (no private copies)."""
    import jobs.exchanges
    import jobs.validation

    assert jobs.validation.timeframe_ms is timeframe_ms
    assert jobs.exchanges.timeframe_ms is timeframe_ms


def test_candles_on_every_boundary_pass_and_one_step_past_it_fail() -> None:
    """Each rule's edge is accepted (a flat bar, zero volume, open at the low and close at the
    high, a bar stamped now) and the smallest step past it is refused: the rules are exactly
    these, not stricter and not looser."""
    flat = CandleRow(NOW - 2 * STEP, 100, 100, 100, 100, 0.0, 0.0)
    edges = [candle(NOW - 3 * STEP), flat, candle(NOW - STEP, o=90, c=110), candle(NOW)]
    validate_candles(edges, STEP, NOW)  # raises BatchRejected on any refusal
    past = {
        "high 99.99 < low 100": CandleRow(NOW - 2 * STEP, 100, 99.99, 100, 100, 0.0, 0.0),
        "outside": CandleRow(NOW - 2 * STEP, 100, 100, 100, 100.01, 0.0, 0.0),
        "volume = -1": CandleRow(NOW - 2 * STEP, 100, 100, 100, 100, -1.0, 0.0),
        "open = 0": CandleRow(NOW - 2 * STEP, 0, 0, 0, 0, 0.0, 0.0),
    }
    for reason, row in past.items():
        with pytest.raises(BatchRejected, match=reason):
            validate_candles([edges[0], row, edges[2], edges[3]], STEP, NOW)
    with pytest.raises(BatchRejected, match="in the future"):
        validate_candles(edges, STEP, NOW - STEP)  # the last bar one period ahead of the clock


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
