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


def _answer(size: int, *, closed: bool = True, stored_at: float | None = None) -> CachedResponse:
    extra = {} if stored_at is None else {"stored_at": stored_at}
    return CachedResponse(body=b"x" * size, headers={}, label="q", closed=closed, reads=(), **extra)


def _key(i: int, pad: int = 0) -> Any:
    key = ResponseCache.key(f"{{ q{i} {' ' * pad}}}", {"v": i}, None)
    assert key is not None
    return key


def test_the_cache_is_bounded_in_bytes_least_recently_used_first() -> None:
    cache = ResponseCache(entries=10_000, ttl=TTL, closed_ttl=CLOSED_TTL, max_bytes=1_000_000)
    hub: Any = SimpleNamespace(listening=True)
    for i in range(100):  # 100 answers of 100 kB: ten times the budget
        cache.put(_key(i), _answer(100_000))
        assert cache.size_bytes <= 1_000_000
    assert len(cache) == 9  # 9 × (100 kB + its key) fit in 1 MB, 10 do not
    assert [i for i in range(100) if _key(i) in cache] == list(range(91, 100))
    # a hit makes an answer the most recently used: the next put evicts another
    assert cache.get(_key(91), hub) is not None
    cache.put(_key(100), _answer(100_000))
    assert _key(91) in cache and _key(92) not in cache
    # an answer larger than the whole budget is not kept, and evicts nothing
    cache.put(_key(101), _answer(1_000_001))
    assert _key(101) not in cache and len(cache) == 9
    # keys count too: huge documents with tiny answers are bounded as well
    for i in range(200, 400):
        cache.put(_key(i, pad=50_000), _answer(10))
    assert cache.size_bytes <= 1_000_000 and len(cache) == 1_000_000 // (50_000 + 10 + 100)
    cache.clear()
    assert cache.size_bytes == 0 and len(cache) == 0


def test_gzip_forms_count_in_the_budget() -> None:
    cache = ResponseCache(entries=100, ttl=TTL, closed_ttl=CLOSED_TTL, max_bytes=1_000_000)
    body = random.Random(1).randbytes(300_000)  # incompressible: gzip adds to its size
    for i in range(3):
        cache.put(_key(i), CachedResponse(body=body, headers={}, label="q", closed=True, reads=()))
    assert len(cache) == 3
    zipped = cache.gzipped(_key(2), cache._items[_key(2)], 1)
    assert len(zipped) > 300_000
    assert _key(0) not in cache and len(cache) == 2  # the oldest made room
    key_bytes = len("{ q1 }") + len('{"v":1}') + len("{}") + 64  # query, variables, extensions
    assert cache.size_bytes == 2 * (300_000 + key_bytes) + len(zipped) <= 1_000_000
    assert cache.gzipped(_key(2), cache._items[_key(2)], 1) is zipped  # computed once


def test_expired_answers_are_swept_without_being_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    cache = ResponseCache(entries=1000, ttl=TTL, closed_ttl=CLOSED_TTL, max_bytes=10**8)
    for i in range(50):
        cache.put(_key(i), _answer(1000, closed=False, stored_at=clock[0]))  # TTL 5 s
    assert len(cache) == 50
    clock[0] += TTL + 1.1  # every open answer expired; none is asked for again
    cache.put(_key(999), _answer(1000, closed=True, stored_at=clock[0]))
    assert len(cache) == 1
    assert cache.size_bytes == 1000 + len("{ q999 }") + len('{"v":999}') + 2 + 64
    hub: Any = SimpleNamespace(listening=False)
    clock[0] += TTL + 1.1  # without the listener even a closed answer lives the short TTL
    assert cache.get(_key(5), hub) is None and len(cache) == 0 and cache.size_bytes == 0
