"""Request limits, read from the settings object (with defaults until the lead adds them).

Every setting is ``Settings.api_<name>``; see :data:`DEFAULTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

DEFAULTS: dict[str, Any] = {
    "max_query_depth": 10,
    "max_query_tokens": 2_000,
    "max_aliases": 15,
    "max_matrix_cells": 2_000_000,  # per matrix (rows × columns), each side
    "max_heatmap_columns": 2_000,
    "max_span_days": 400.0,  # any time range
    "max_levels": 5_000,  # price buckets in one liquidation map
    "max_page_size": 100,  # snapshots per connection page
    "max_series_points": 20_000,  # rows of one candles/OI/funding/realized/swept series
    "anonymous_rate_limit_per_minute": 0,  # 0 = unlimited (requests without a key)
    "key_cache_seconds": 10.0,  # how long a looked-up API key is trusted before re-reading it
    "gzip_level": 1,  # fast compression: responses are large but the hop is short
    "cache_entries": 256,  # responses kept in memory
    "column_cache_entries": 20_000,  # decoded snapshot vectors (a few KB each)
    "response_cache_seconds": 5.0,  # how long an identical query may be answered from memory
    "default_price_margin_pct": 10.0,  # heatmap price axis: traded range ± this, if not given
}


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """The API's limits and tunables."""

    max_query_depth: int
    max_query_tokens: int
    max_aliases: int
    max_matrix_cells: int
    max_heatmap_columns: int
    max_span_days: float
    max_levels: int
    max_page_size: int
    max_series_points: int
    anonymous_rate_limit_per_minute: int
    key_cache_seconds: float
    gzip_level: int
    cache_entries: int
    column_cache_entries: int
    response_cache_seconds: float
    default_price_margin_pct: float

    @classmethod
    def from_settings(cls, settings: object) -> ApiLimits:
        values = {
            f.name: type(DEFAULTS[f.name])(getattr(settings, f"api_{f.name}", DEFAULTS[f.name]))
            for f in fields(cls)
        }
        return cls(**values)
