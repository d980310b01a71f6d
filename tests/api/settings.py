"""Settings for API tests: the real Settings class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liqmap.settings import Settings

API_EXCHANGES = ["binanceusdm", "bybit", "okx"]


def api_settings(**overrides: Any) -> Settings:
    """The API's settings: the venues and markets of the tests' data (BTC on three venues, of
    which only Binance recorded open interest; ETH on Binance, without it)."""
    base: dict[str, Any] = {
        "exchanges": list(API_EXCHANGES),
        "symbols": {
            "binanceusdm": ["BTC/USDT:USDT", "ETH/USDT:USDT"],
            "bybit": ["BTC/USDT:USDT"],
            "okx": ["BTC/USDT:USDT"],
        },
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


def jobs_settings(shared_data: Path, **overrides: Any) -> Settings:
    """The jobs' settings in replay mode over the shared data (exchanges/symbols explicit)."""
    return api_settings(replay_dir=shared_data, **overrides)
