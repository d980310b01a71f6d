"""Settings and database URLs: every spelling users write is accepted, bad ones fail clearly."""

from __future__ import annotations

import pytest

from liqmap.database import DatabaseConfigError, normalize_url, redact, to_async_url
from liqmap.settings import Settings


@pytest.mark.parametrize(
    ("given", "plain", "asyncpg"),
    [
        (
            "postgresql://u:p@db:5432/liq",
            "postgresql://u:p@db:5432/liq",
            "postgresql+asyncpg://u:p@db:5432/liq",
        ),
        ("postgres://u@db/liq", "postgresql://u@db/liq", "postgresql+asyncpg://u@db/liq"),
        ("postgresql+asyncpg://u@db/liq", "postgresql://u@db/liq", "postgresql+asyncpg://u@db/liq"),
        (
            "postgresql://postgres:@/liqmap?host=/tmp/pg",
            "postgresql://postgres:@/liqmap?host=/tmp/pg",
            "postgresql+asyncpg://postgres:@/liqmap?host=%2Ftmp%2Fpg",
        ),
    ],
)
def test_url_spellings(given: str, plain: str, asyncpg: str) -> None:
    assert normalize_url(given) == plain
    assert to_async_url(given) == asyncpg


@pytest.mark.parametrize(
    "bad", ["mysql://u@h/db", "sqlite:///x.db", "postgresql://u@h:5432/", "nonsense"]
)
def test_bad_urls_are_refused_with_a_hint(bad: str) -> None:
    with pytest.raises(DatabaseConfigError, match=r"DATABASE_URL|database"):
        normalize_url(bad)


def test_redact_hides_password() -> None:
    assert redact("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"


def test_env_prefix_and_database_url_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIQMAP_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://a@b/c")
    monkeypatch.setenv("LIQMAP_EXCHANGES", "binanceusdm, okx")
    monkeypatch.setenv("LIQMAP_API_PORT", "9001")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_url == "postgresql://a@b/c"
    assert s.exchanges == ["binanceusdm", "okx"]
    assert s.api_port == 9001
    monkeypatch.setenv("LIQMAP_DATABASE_URL", "postgresql://x@y/z")
    assert Settings(_env_file=None).database_url == "postgresql://x@y/z"  # type: ignore[call-arg]


def test_bucket_size_configured_and_derived() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.bucket_size_for("BTC/USDT:USDT") == 50.0
    # unlisted base: 0.05 % of 0.2 = 1e-4 → rounded up to 1/2/5 × 10^k
    assert s.bucket_size_for("DOGE/USDT:USDT", reference_price=0.2) == pytest.approx(1e-4)
    assert s.bucket_size_for("SOL/USDT:USDT", reference_price=150.0) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="LIQMAP_BUCKET_SIZES"):
        s.bucket_size_for("SOL/USDT:USDT")


def test_api_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.limits import ApiLimits

    monkeypatch.setenv("LIQMAP_API_MAX_MATRIX_CELLS", "10")
    monkeypatch.setenv("LIQMAP_API_MAX_QUERY_DEPTH", "3")
    limits = ApiLimits.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    assert (limits.max_matrix_cells, limits.max_query_depth) == (10, 3)
    assert ApiLimits.defaults().max_matrix_cells == 2_000_000
    monkeypatch.setenv("LIQMAP_API_MAX_ALIASES", "0")
    with pytest.raises(ValueError, match="api_max_aliases"):
        Settings(_env_file=None)  # type: ignore[call-arg]
