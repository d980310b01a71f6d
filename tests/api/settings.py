"""Settings for API tests: the real Settings class, with two exchanges tracked."""

from __future__ import annotations

from typing import Any

from liqmap.settings import Settings


def api_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "exchanges": ["binanceusdm", "bybit"],
        "symbols": {"binanceusdm": ["BTC/USDT:USDT"], "bybit": ["BTC/USDT:USDT"]},
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]
