"""Settings with the API's own fields declared, as liqmap.settings will declare them."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.limits import DEFAULTS
from liqmap.settings import Settings


class ApiTestSettings(Settings):
    api_max_query_depth: int = Field(default=DEFAULTS["max_query_depth"])
    api_max_query_tokens: int = Field(default=DEFAULTS["max_query_tokens"])
    api_max_aliases: int = Field(default=DEFAULTS["max_aliases"])
    api_max_matrix_cells: int = Field(default=DEFAULTS["max_matrix_cells"])
    api_max_heatmap_columns: int = Field(default=DEFAULTS["max_heatmap_columns"])
    api_max_span_days: float = Field(default=DEFAULTS["max_span_days"])
    api_max_levels: int = Field(default=DEFAULTS["max_levels"])
    api_max_page_size: int = Field(default=DEFAULTS["max_page_size"])
    api_max_series_points: int = Field(default=DEFAULTS["max_series_points"])
    api_anonymous_rate_limit_per_minute: int = Field(
        default=DEFAULTS["anonymous_rate_limit_per_minute"]
    )
    api_key_cache_seconds: float = Field(default=DEFAULTS["key_cache_seconds"])
    api_gzip_level: int = Field(default=DEFAULTS["gzip_level"])
    api_cache_entries: int = Field(default=DEFAULTS["cache_entries"])
    api_default_price_margin_pct: float = Field(default=DEFAULTS["default_price_margin_pct"])


def api_settings(**overrides: Any) -> ApiTestSettings:
    base: dict[str, Any] = {
        "exchanges": ["binanceusdm", "bybit"],
        "symbols": {"binanceusdm": ["BTC/USDT:USDT"], "bybit": ["BTC/USDT:USDT"]},
    }
    base.update(overrides)
    return ApiTestSettings(_env_file=None, **base)  # type: ignore[call-arg]
