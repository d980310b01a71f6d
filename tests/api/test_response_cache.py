"""The response cache's lifetimes: answers stored together do not all expire together."""

from __future__ import annotations

import random
import time
from types import SimpleNamespace
from typing import Any

import pytest

from api.response_cache import LIFETIME_SPREAD, CachedResponse, ResponseCache

TTL, CLOSED_TTL = 5.0, 300.0


def _filled(count: int) -> tuple[ResponseCache, list[Any]]:
    """``count`` closed answers stored at the same instant (monotonic 1000)."""
    cache = ResponseCache(entries=count, ttl=TTL, closed_ttl=CLOSED_TTL, rng=random.Random(3))
    keys = [ResponseCache.key(f"{{ q{i} }}", None, None) for i in range(count)]
    for key in keys:
        assert key is not None
        cache.put(
            key,
            CachedResponse(
                body=b"{}", headers={}, label="q", closed=True, reads=(), stored_at=1000.0
            ),
        )
    return cache, keys


def _alive_at(
    cache: ResponseCache, keys: list[Any], age: float, monkeypatch: pytest.MonkeyPatch
) -> int:
    monkeypatch.setattr(time, "monotonic", lambda: 1000.0 + age)
    hub: Any = SimpleNamespace(listening=True)
    return sum(cache.get(key, hub) is not None for key in keys)


def test_answers_stored_together_expire_spread_over_a_quarter_of_their_lifetime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ages probed on separate caches: an expired entry is deleted when it is looked at
    younger = (1 - LIFETIME_SPREAD) * CLOSED_TTL - 1  # 224 s: every answer still served
    middle = (1 - LIFETIME_SPREAD / 2) * CLOSED_TTL  # 262.5 s: about half of them
    assert _alive_at(*_filled(200), younger, monkeypatch) == 200
    alive = _alive_at(*_filled(200), middle, monkeypatch)
    assert 60 < alive < 140  # uniform over [225, 300] s: 100 expected, σ ≈ 7
    assert _alive_at(*_filled(200), CLOSED_TTL + 0.01, monkeypatch) == 0


def test_without_the_listener_closed_answers_live_at_most_the_short_ttl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache, keys = _filled(50)
    monkeypatch.setattr(time, "monotonic", lambda: 1000.0 + TTL + 0.01)
    hub: Any = SimpleNamespace(listening=False)
    assert sum(cache.get(key, hub) is not None for key in keys) == 0
