"""The one settings object, read from the environment and `.env` (prefix ``LIQMAP_``).

Modules never read the environment themselves: the CLI builds a :class:`Settings` once and passes
it (or the parts it needs) down.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from liqmap.schedules import check_schedule_interval
from liqmap.timeframes import check_base_timeframe

DEFAULT_SYMBOLS: dict[str, list[str]] = {
    "binanceusdm": ["BTC/USDT:USDT", "ETH/USDT:USDT"],
    "bybit": ["BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USD:BTC"],
    "okx": ["BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USD:BTC"],
    "hyperliquid": ["BTC/USDC:USDC", "ETH/USDC:USDC"],
}

# An Origin header's value: scheme://host[:port], nothing after it.
ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:?#]+(:[0-9]{1,5})?")

# Price-bucket size (quote currency) of the fixed heatmap grid, per base asset.
DEFAULT_BUCKET_SIZES: dict[str, float] = {"BTC": 50.0, "ETH": 2.0}


def default_data_dir() -> Path:
    """Where liqmap keeps its embedded database: the user's data folder (XDG on Linux)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("liqmap", appauthor=False))


class Settings(BaseSettings):
    """Everything liqmap can be configured with. Environment: ``LIQMAP_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="LIQMAP_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
    )

    # --- storage -------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LIQMAP_DATABASE_URL", "DATABASE_URL"),
        description="PostgreSQL URL; unset means an embedded server under data_dir.",
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    db_pool_size: int = Field(default=10, ge=1)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)

    # --- what to track ---------------------------------------------------------------------
    exchanges: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_SYMBOLS))
    symbols: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_SYMBOLS))
    timeframe: str = Field(
        default="5m",
        description="Base bar for candles and open interest (5m or longer; see BASE_TIMEFRAMES).",
    )
    backfill_days: int = Field(default=30, ge=1)
    bucket_sizes: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_BUCKET_SIZES))
    default_bucket_fraction: float = Field(
        default=0.0005, gt=0, description="Bucket size as a fraction of price for unlisted bases."
    )

    # --- materialization ----------------------------------------------------------------------
    recent_days: int = Field(
        default=7, ge=1, description="Keep a snapshot at every base bar for this many days."
    )
    model: dict[str, object] = Field(
        default_factory=dict,
        description="Overrides of the engine's calibrated model parameters (JSON).",
    )

    # --- schedules (seconds; must divide a minute, an hour or a day: liqmap.schedules) -------
    ingest_interval_s: int = Field(default=300, ge=1)
    tiers_interval_s: int = Field(default=86_400, ge=1)
    materialize_interval_s: int = Field(default=300, ge=1)

    # --- known positions: real positions read from a venue (Hyperliquid) ----------------------
    known_positions_accounts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Accounts whose positions are read (comma-separated addresses; "
        "address@dex for a HIP-3 dex).",
    )
    known_positions_top: int = Field(
        default=100,
        ge=0,
        description="Also read the leaderboard's top N accounts by account value (0: none; "
        "a replay has no recorded leaderboard and reads only the listed accounts).",
    )
    known_positions_interval_s: int = Field(
        default=3_600, ge=1, description="How often a round over the accounts starts."
    )
    known_positions_spacing_ms: float = Field(
        default=250.0, ge=0, description="Pause between two account reads (rate limit)."
    )
    known_positions_liquidations: bool = Field(
        default=True,
        description="Also read each account's own liquidation fills (one more request per "
        "account and round), kept apart from the market's realized liquidations.",
    )

    # --- bookkeeping retention (an hourly job) --------------------------------------------
    history_retention_days: int = Field(
        default=30,
        ge=1,
        description="Delete finished job runs and queue jobs older than this (the latest run, "
        "success and error of each market dataset are kept).",
    )

    # --- workers: a worker that stops sending heartbeats is dead; its jobs are retried --------
    worker_heartbeat_s: float = Field(default=10.0, gt=0, description="heartbeat period")
    worker_stalled_after_s: float = Field(
        default=30.0, gt=0, description="no heartbeat for this long: the worker is dead"
    )
    worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="The CPU niceness `liqmap worker` runs at (0: as started). On a host it "
        "shares with the API, the API's answers then take the cores first; a job finishing a "
        "few ms later costs nobody anything.",
    )

    # --- retries on transient exchange errors (timeouts, rate limits, 5xx) ------------------
    retry_attempts: int = Field(default=5, ge=1)
    retry_initial_s: float = Field(default=1.0, ge=0)
    retry_max_s: float = Field(default=60.0, ge=0)

    # --- offline replay ----------------------------------------------------------------------
    replay_dir: Path | None = Field(
        default=None, description="Answer exchange requests from recordings in this folder."
    )
    replay_window: str = Field(
        default="binance-btc-2026-05",
        description="Replay: the recorded period the clock runs in (jobs.replay.windows): "
        "binance-btc-2026-05 (Binance BTC with open interest: maps) or venues-2026-01 (Bybit "
        "and OKX BTC, Binance ETH, Hyperliquid known levels; no open interest, no maps).",
    )
    replay_latency_ms: float = Field(
        default=0.0, ge=0, description="Replay: answer each request after this delay (tests)."
    )
    replay_start: datetime | None = Field(
        default=None,
        description="Replay: the clock reads this instead of the recording's end (then it "
        "runs at replay_speed), so the jobs see bars arrive one period at a time.",
    )
    replay_speed: float = Field(
        default=0.0,
        ge=0,
        description="Replay: recorded seconds per wall second from replay_epoch; 0 holds the "
        "clock at replay_start.",
    )
    replay_epoch: datetime | None = Field(
        default=None,
        description="Replay: the wall instant at which the clock reads replay_start (default: "
        "when the process started, so a worker restarted inside it continues the clock); "
        "processes given the same one share one clock.",
    )

    # --- API ---------------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    require_api_keys: bool = False
    graphiql: bool = True
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API from other sites (CORS): a "
        "comma-separated list of scheme://host[:port] exactly as browsers send them in Origin "
        "(no path, no trailing slash), e.g. https://dash.example.com,http://localhost:5173; "
        "* allows every origin; empty (the default) sends no CORS headers.",
    )

    # --- API limits and tunables (``LIQMAP_API_<NAME>``; read by api.limits.ApiLimits) ---------
    api_max_query_depth: int = Field(default=10, ge=1, description="GraphQL query depth")
    api_max_query_tokens: int = Field(default=2_000, ge=10, description="tokens per query")
    api_max_aliases: int = Field(default=15, ge=1, description="aliases per query")
    api_max_matrix_cells: int = Field(
        default=2_000_000, ge=1, description="heatmap cells per matrix (rows × columns), per side"
    )
    api_max_heatmap_columns: int = Field(default=2_000, ge=1)
    api_max_span_days: float = Field(default=400.0, gt=0, description="longest time range")
    api_max_levels: int = Field(default=5_000, ge=1, description="buckets in one liquidation map")
    api_max_page_size: int = Field(default=100, ge=1, description="snapshots per page")
    api_max_series_points: int = Field(default=20_000, ge=1, description="rows of one series")
    api_anonymous_rate_limit_per_minute: int = Field(
        default=0, ge=0, description="requests per minute without a key per client IP (0: off)"
    )
    api_failed_auth_per_minute: int = Field(
        default=30,
        ge=0,
        description="requests with a wrong or revoked key per client address and minute; "
        "beyond it RATE_LIMITED (429) without looking the key up (0: off)",
    )
    api_rate_limit_store: Literal["postgres", "memory"] = Field(
        default="postgres",
        description="where rate-limit buckets live: postgres (shared by every API process on "
        "the database, so N processes still allow the limit once) or memory (per process)",
    )
    api_trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="addresses (or networks, or *) of the reverse proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto are believed, comma-separated; empty (the "
        "default): none, the client is the connection's peer",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token /metrics requires (Authorization: Bearer <token>); unset: "
        "/metrics needs an API key when keys are required, and is open otherwise",
    )
    api_key_cache_seconds: float = Field(
        default=10.0, ge=0, description="how long a looked-up API key is trusted"
    )
    api_gzip_level: int = Field(default=1, ge=1, le=9)
    api_cache_entries: int = Field(default=256, ge=0, description="responses kept in memory")
    api_max_subscriptions_per_connection: int = Field(
        default=20,
        ge=1,
        description="subscriptions one websocket may run at once (RATE_LIMITED above)",
    )
    api_cache_bytes: int = Field(
        default=128 * 2**20,
        ge=0,
        description="bytes of responses kept in memory (bodies, their gzip forms and keys; "
        "least recently used dropped first; 0 turns the response cache off)",
    )
    api_column_cache_entries: int = Field(
        default=20_000, ge=0, description="decoded snapshot vectors kept in memory"
    )
    api_response_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long an identical open-range query is served again"
    )
    api_max_body_bytes: int = Field(
        default=131_072, ge=1024, description="largest request body (HTTP 413 above)"
    )
    api_ws_init_timeout_seconds: float = Field(
        default=10.0, gt=0, description="websocket: close when no connection_init within this"
    )
    api_request_head_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="HTTP: close a connection whose request line and headers take longer",
    )
    api_request_body_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="HTTP: refuse (408) a request whose body takes longer after its headers",
    )
    api_response_send_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="HTTP: abort a connection whose client reads nothing of its answer this long",
    )

    # --- exchange credentials (optional; only Binance tiers need them) ----------------------
    binance_api_key: str | None = None
    binance_api_secret: str | None = None

    log_level: str = "INFO"
    log_json: bool = False

    @field_validator(
        "exchanges",
        "cors_origins",
        "known_positions_accounts",
        "api_trusted_proxies",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: use scheme://host[:port] as browsers send it "
                    "(no path or trailing slash), e.g. https://dash.example.com, or *"
                )
        return value

    @field_validator("timeframe")
    @classmethod
    def _base_bar(cls, value: str) -> str:
        return check_base_timeframe(value)

    @field_validator(
        "ingest_interval_s",
        "tiers_interval_s",
        "materialize_interval_s",
        "known_positions_interval_s",
    )
    @classmethod
    def _schedulable(cls, value: int) -> int:
        return check_schedule_interval(value)

    @model_validator(mode="after")
    def _heartbeat_before_stall(self) -> Settings:
        if self.worker_stalled_after_s <= self.worker_heartbeat_s:
            raise ValueError(
                "worker_stalled_after_s must exceed worker_heartbeat_s (a live worker would "
                "look dead between two heartbeats)"
            )
        return self

    def replay_clock(self) -> tuple[int | None, float, int | None]:
        """(start ms, speed, epoch ms) of the replay clock; see ``ReplayClock.starting``."""

        def ms(at: datetime | None) -> int | None:
            if at is None:
                return None
            return round((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000)

        return ms(self.replay_start), self.replay_speed, ms(self.replay_epoch)

    def symbols_for(self, exchange: str) -> list[str]:
        return list(self.symbols.get(exchange, []))

    def bucket_size_for(self, symbol: str, reference_price: float | None = None) -> float:
        """Fixed grid step for a symbol: configured per base asset, else a fraction of price."""
        base = symbol.split("/", 1)[0]
        if base in self.bucket_sizes:
            return float(self.bucket_sizes[base])
        if reference_price is None or reference_price <= 0:
            raise ValueError(f"no bucket size configured for {base}; set LIQMAP_BUCKET_SIZES")
        # round the step to 1, 2 or 5 × 10^k so the grid reads well
        import math

        raw = reference_price * self.default_bucket_fraction
        exponent = math.floor(math.log10(raw))
        for mantissa in (1, 2, 5, 10):
            if mantissa * 10**exponent >= raw:
                return float(mantissa * 10**exponent)
        return float(10 ** (exponent + 1))  # pragma: no cover - loop always returns


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (CLI flags) on top."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**clean)  # type: ignore[arg-type]
