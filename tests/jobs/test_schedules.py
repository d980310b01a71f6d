"""Periodic schedules fire exactly every interval; intervals cron cannot space are refused."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from croniter import croniter
from pydantic import ValidationError

from jobs.app import cron_for
from liqmap.schedules import SCHEDULE_INTERVALS_S

from .conftest import make_settings


def _gaps(cron: str, start: datetime, n: int) -> set[float]:
    it = croniter(cron, start)
    ticks = [it.get_next(float) for _ in range(n)]
    return {b - a for a, b in itertools.pairwise(ticks)}


@pytest.mark.parametrize("interval", SCHEDULE_INTERVALS_S)
def test_every_valid_interval_fires_evenly_across_day_boundaries(interval: int) -> None:
    # start just before midnight so the ticks cross a minute, hour and day boundary
    start = datetime(2026, 6, 30, 23, 59, 58, tzinfo=UTC)
    ticks = max(3, min(400, 2 * 86_400 // interval))
    assert _gaps(cron_for(interval), start, ticks) == {float(interval)}


def test_the_list_is_every_divisor_of_a_minute_hour_and_day() -> None:
    def evenly_spaced(s: int) -> bool:
        if s < 60:
            return 60 % s == 0
        if s < 3600:
            return s % 60 == 0 and 3600 % s == 0
        return s % 3600 == 0 and 86_400 % s == 0

    expected = [s for s in range(1, 86_401) if evenly_spaced(s)]
    assert list(SCHEDULE_INTERVALS_S) == expected
    assert {300, 900, 3600, 86_400} <= set(expected)


@pytest.mark.parametrize("interval", [7, 45, 90, 5400, 7000, 50_400, 172_800])
def test_intervals_cron_cannot_space_evenly_are_refused(interval: int) -> None:
    with pytest.raises(ValueError, match=rf"{interval} s is not an evenly spaced schedule"):
        cron_for(interval)
    for field in ("ingest_interval_s", "materialize_interval_s", "tiers_interval_s"):
        with pytest.raises(ValidationError, match=r"valid: 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30"):
            make_settings(**{field: interval})


def test_the_old_mistakes_are_gone() -> None:
    # 90 s used to become "*/90" in the seconds field (once a minute), 5400 s hourly
    with pytest.raises(ValueError):
        cron_for(90)
    with pytest.raises(ValueError):
        cron_for(5400)
    assert cron_for(300) == "*/5 * * * *"
    assert cron_for(2) == "* * * * * */2"
    assert cron_for(7200) == "0 */2 * * *"


@pytest.mark.parametrize("timeframe", ["1m", "3m", "10m", "8h", "1w"])
def test_base_bars_no_venue_serves_open_interest_at_are_refused(timeframe: str) -> None:
    with pytest.raises(ValidationError, match=r"cannot be the base bar.*none finer than 5m"):
        make_settings(timeframe=timeframe)


def test_unparseable_timeframes_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown timeframe"):
        make_settings(timeframe="5x")
    assert make_settings(timeframe="15m").timeframe == "15m"


def test_a_stall_timeout_shorter_than_the_heartbeat_is_refused() -> None:
    with pytest.raises(ValidationError, match="worker_stalled_after_s must exceed"):
        make_settings(worker_heartbeat_s=10, worker_stalled_after_s=5)
