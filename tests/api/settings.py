"""Settings for API tests: the real Settings class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liqmap.settings import Settings


def api_settings(**overrides: Any) -> Settings:
    """The API's settings (two exchanges tracked, as in the tests' data)."""
    base: dict[str, Any] = {
        "exchanges": ["binanceusdm", "bybit"],
        "symbols": {"binanceusdm": ["BTC/USDT:USDT"], "bybit": ["BTC/USDT:USDT"]},
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


def jobs_settings(shared_data: Path, **overrides: Any) -> Settings:
    """The jobs' settings in replay mode over the shared data (exchanges/symbols explicit)."""
    return api_settings(replay_dir=shared_data, **overrides)
