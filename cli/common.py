"""What every command shares: the one-line user error, settings from flags, the database check,
and reading an instant from the command line."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: `liqmap backtest` needs no database or settings
    from liqmap.database import DatabaseTarget
    from liqmap.settings import Settings

EXIT_USAGE = 2


class UserError(Exception):
    """An error the user fixes (bad flag, bad file, bad setting): printed as one line, exit 2."""


def settings_from_args(args: argparse.Namespace, **extra: object) -> Settings:
    """The settings object, with the flags that override it, and logging configured by it."""
    from liqmap.logs import configure_logging
    from liqmap.settings import load_settings

    overrides: dict[str, object] = dict(extra)
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    if getattr(args, "replay", None):
        overrides["replay_dir"] = Path(args.replay).resolve()
    if getattr(args, "replay_window", None):
        overrides["replay_window"] = args.replay_window
    try:
        settings = load_settings(**overrides)
    except Exception as exc:  # pydantic ValidationError: name the setting
        raise UserError(f"invalid settings: {exc}") from None
    # the settings decide the log format (LIQMAP_LOG_JSON); --log-level wins over LIQMAP_LOG_LEVEL
    configure_logging(getattr(args, "log_level", None) or settings.log_level, settings.log_json)
    return settings


REPLAY_WINDOW_HELP = (
    "replay: the recorded period the clock runs in (default binance-btc-2026-05: Binance BTC "
    "with open interest and maps; venues-2026-01: Bybit/OKX BTC, Binance ETH, Hyperliquid "
    "known levels, no open interest)"
)


def add_replay_arguments(parser: argparse.ArgumentParser, help_: str | None = None) -> None:
    """``--replay DIR`` and ``--replay-window NAME``."""
    parser.add_argument(
        "--replay", metavar="DIR", help=help_ or "answer exchange requests from recordings"
    )
    parser.add_argument("--replay-window", metavar="NAME", help=REPLAY_WINDOW_HELP)


def database_for(settings: Settings, *, require_schema: bool = False) -> DatabaseTarget:
    """The database to use, reachable; with ``require_schema`` also migrated to head."""
    import asyncio

    from liqmap.database import check_connection, resolve_database

    target = resolve_database(settings)
    asyncio.run(check_connection(target.url))
    if require_schema:
        from liqmap import migrations

        current, head = migrations.current_revision(target.url), migrations.head_revision()
        if current != head:
            raise UserError(
                f"the database is at schema revision {current or 'base (empty)'}, not {head}: "
                "run `liqmap db upgrade` first (or `liqmap up`, which migrates)"
            )
    return target


def parse_instant(text: str) -> datetime:
    """ISO-8601 (``2026-06-22``, ``2026-06-22T11:45Z``; no zone = UTC) or epoch milliseconds."""
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"cannot read time {text!r}; use ISO-8601 like 2026-06-22T11:45Z") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_epoch_ms(text: str) -> int:
    """:func:`parse_instant` as epoch milliseconds."""
    if text.isdigit():
        return int(text)
    return round(parse_instant(text).timestamp() * 1000)
