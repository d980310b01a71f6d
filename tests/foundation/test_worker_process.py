"""``liqmap up``'s worker process reads the replay clock of ``liqmap up`` itself.

A replay clock started earlier (``LIQMAP_REPLAY_START``) runs from its process's start unless
``LIQMAP_REPLAY_EPOCH`` pins it. The worker runs in a child process that is restarted after every
database outage: each would start the clock over at ``replay_start`` (and ingest nothing new
until it caught up again) unless the child gets ``liqmap up``'s start as its epoch.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psutil
import pytest

from cli.runner import worker_child_settings
from jobs.replay import ReplayClock
from liqmap.settings import Settings

pytestmark = pytest.mark.unit


def test_the_child_clock_runs_from_the_parent_start() -> None:
    start = datetime(2026, 6, 21, tzinfo=UTC)
    settings = Settings(_env_file=None, replay_start=start, replay_speed=60.0)  # type: ignore[call-arg]
    child = worker_child_settings(settings)
    started = psutil.Process().create_time()  # this process plays liqmap up
    assert child.replay_epoch is not None
    assert abs(child.replay_epoch.timestamp() - started) < 0.01
    # a child started an hour later reads what the parent's clock reads, not replay_start
    begin, speed, epoch = child.replay_clock()
    assert (begin, speed) == (round(start.timestamp() * 1000), 60.0)
    clock = ReplayClock.starting(
        end=begin + 10 * 86_400_000, start=begin, speed=speed, epoch_ms=epoch
    )
    assert clock.epoch_ms == round(started * 1000)


def test_settings_without_a_running_clock_or_with_an_epoch_are_kept() -> None:
    frozen = Settings(_env_file=None)  # type: ignore[call-arg]
    assert worker_child_settings(frozen) is frozen
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    pinned = Settings(
        _env_file=None,  # type: ignore[call-arg]
        replay_start=datetime(2026, 6, 21, tzinfo=UTC),
        replay_epoch=epoch,
    )
    assert worker_child_settings(pinned).replay_epoch == epoch
