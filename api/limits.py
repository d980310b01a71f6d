"""Request limits and tunables of the API, read from the settings object.

Every field is ``Settings.api_<name>`` (environment ``LIQMAP_API_<NAME>``); the defaults and
their meaning live there, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from liqmap.settings import Settings


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
    failed_auth_per_minute: int
    key_cache_seconds: float
    gzip_level: int
    cache_entries: int
    cache_bytes: int
    column_cache_entries: int
    response_cache_seconds: float
    max_body_bytes: int
    ws_init_timeout_seconds: float
    max_subscriptions_per_connection: int
    request_body_timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiLimits:
        return cls(**{f.name: getattr(settings, f"api_{f.name}") for f in fields(cls)})

    @classmethod
    def defaults(cls) -> ApiLimits:
        """The limits with every setting at its default (no environment read)."""
        defaults = Settings.model_fields
        return cls(**{f.name: defaults[f"api_{f.name}"].default for f in fields(cls)})
