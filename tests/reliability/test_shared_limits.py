"""Rate limits across real ``liqmap serve`` processes on one database, over loopback.

* two API processes share each client's bucket (PostgreSQL): 60 requests alternating between
  them get exactly the limit through, where per-process buckets let twice the limit through;
* ``X-Forwarded-For`` is believed only from configured proxies: from an untrusted peer every
  forged address lands in the peer's one bucket;
* wrong keys are limited per address: beyond the failed-authentication limit the address gets
  429 without its keys being looked up, while other addresses are unaffected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import create_database, drop_database
from tests.reliability.harness import ApiProcess, liqmap_env, running

pytestmark = pytest.mark.slow

QUERY = {"query": "{ __typename }"}
LIMIT = 20


@pytest.fixture(scope="module")
def limits_url(server_url: str) -> Iterator[str]:
    from liqmap import migrations

    url = create_database(server_url, "liqmap_test_rel_limits")
    migrations.upgrade(url)
    yield url
    drop_database(server_url, url)


def _statuses(apis: list[ApiProcess], count: int, **headers: str) -> Counter[int]:
    seen: Counter[int] = Counter()
    with httpx.Client(timeout=10) as client:
        for i in range(count):
            api = apis[i % len(apis)]
            seen[client.post(f"{api.url}/graphql", json=QUERY, headers=headers).status_code] += 1
    return seen


def _clear_buckets(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM rate_limit_buckets")


@pytest.mark.parametrize(("store", "allowed"), [("postgres", LIMIT), ("memory", 2 * LIMIT)])
def test_the_limit_holds_across_processes_with_the_shared_store(
    limits_url: str, tmp_path: Path, store: str, allowed: int
) -> None:
    """60 requests in a few seconds, alternating between two processes, at a limit of 20 a
    minute (a burst of 20, then one every 3 s): the shared store lets 20 (+1 if a refill
    lands) through; per-process buckets let each process's 20 through — the hole it closes."""
    _clear_buckets(limits_url)
    env = liqmap_env(
        limits_url, api_anonymous_rate_limit_per_minute=LIMIT, api_rate_limit_store=store
    )
    apis = [ApiProcess(env, tmp_path / f"api{i}.log") for i in range(2)]
    with running(*apis):
        for api in apis:
            api.wait_ready()
        seen = _statuses(apis, 60)
    assert set(seen) == {200, 429}, seen
    assert allowed <= seen[200] <= allowed + 2, seen  # a token refills every 3 s
    assert seen[200] + seen[429] == 60


def test_forwarded_for_is_believed_only_from_configured_proxies(
    limits_url: str, tmp_path: Path
) -> None:
    _clear_buckets(limits_url)
    untrusted = ApiProcess(
        liqmap_env(limits_url, api_anonymous_rate_limit_per_minute=5), tmp_path / "plain.log"
    )
    trusted = ApiProcess(
        liqmap_env(
            limits_url, api_anonymous_rate_limit_per_minute=5, api_trusted_proxies="127.0.0.1"
        ),
        tmp_path / "proxied.log",
    )
    with running(untrusted, trusted), httpx.Client(timeout=10) as client:
        untrusted.wait_ready()
        trusted.wait_ready()

        def post(api: ApiProcess, forwarded: str) -> int:
            headers = {"X-Forwarded-For": forwarded}
            return client.post(f"{api.url}/graphql", json=QUERY, headers=headers).status_code

        # a client forging a new address per request is still one client: the peer
        forged = [post(untrusted, f"203.0.113.{i}") for i in range(10)]
        assert forged == [200] * 5 + [429] * 5, forged
        _clear_buckets(limits_url)
        # behind a configured proxy each forwarded address is a client of its own
        assert [post(trusted, f"198.51.100.{i}") for i in range(10)] == [200] * 10
        same = [post(trusted, "198.51.100.77") for _ in range(7)]
        assert same == [200] * 5 + [429] * 2, same


def test_failed_authentication_is_limited_per_address(limits_url: str, tmp_path: Path) -> None:
    import subprocess

    from tests.reliability.harness import LIQMAP

    _clear_buckets(limits_url)
    created = subprocess.run(
        [str(LIQMAP), "apikey", "create", "limits", "--rate-limit", "1000"],
        env=liqmap_env(limits_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    valid = created.stdout.split()[0]
    env = liqmap_env(
        limits_url,
        require_api_keys=True,
        api_failed_auth_per_minute=5,
        api_trusted_proxies="127.0.0.1",  # so that the test can speak from several addresses
        log_level="DEBUG",
    )
    api = ApiProcess(env, tmp_path / "auth.log")
    with running(api), httpx.Client(timeout=10) as client:
        api.wait_ready()

        def post(key: str, address: str) -> tuple[int, str | None]:
            headers = {"X-API-Key": key, "X-Forwarded-For": address}
            response = client.post(f"{api.url}/graphql", json=QUERY, headers=headers)
            if response.status_code == 200:
                return 200, None
            return response.status_code, response.json()["errors"][0]["extensions"]["code"]

        guesses = [post(f"lqm_00000000_guess{i}", "192.0.2.1") for i in range(12)]
        assert guesses[:5] == [(401, "UNAUTHENTICATED")] * 5, guesses
        assert guesses[5:] == [(429, "RATE_LIMITED")] * 7, guesses
        # the guessing address is held off whatever it sends next; other addresses are not
        assert post(valid, "192.0.2.1") == (429, "RATE_LIMITED")
        assert post(valid, "192.0.2.2") == (200, None)
        assert post("lqm_00000000_other", "192.0.2.2") == (401, "UNAUTHENTICATED")
    log = (tmp_path / "auth.log").read_text(errors="replace")
    # the seven refused guesses were never looked up: one rejection line each, as rate_limited
    assert log.count("reason=rate_limited") == 8, log[-3000:]
