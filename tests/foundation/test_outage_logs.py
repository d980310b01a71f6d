"""During a database outage each component's report is one log line, not a traceback.

procrastinate's worker logs its listener's loss with the exception's traceback (it ran to ~100
lines per outage in ``liqmap up``'s log). The exceptions here are real: psycopg failing to reach
a loopback port nobody listens on, wrapped by procrastinate exactly as its connector does.
"""

from __future__ import annotations

import io
import logging

import psycopg
import pytest
from procrastinate.exceptions import ConnectorException

from liqmap.logs import OneLineConnectionErrors, configure_logging
from tests.reliability.harness import free_port

pytestmark = pytest.mark.unit


def logged(exc: BaseException, message: str, *args: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(OneLineConnectionErrors())
    logger = logging.getLogger("test.outage")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error(message, *args, exc_info=exc)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def connector_error() -> ConnectorException:
    try:
        try:
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/x", connect_timeout=3)
        except psycopg.Error as exc:
            raise ConnectorException from exc
    except ConnectorException as wrapped:
        return wrapped
    raise AssertionError("connected to a port nobody listens on")


def test_a_lost_connection_is_one_line_with_its_root_cause() -> None:
    exc = connector_error()
    text = logged(exc, "Side task %s failed with exception: %s, stopping worker", "listener", exc)
    assert text.count("\n") == 1, text
    assert text.startswith("ERROR Side task listener failed with exception: Database error. ,")
    assert "[OperationalError: connection failed:" in text and "Connection refused" in text
    assert "Traceback" not in text


def test_other_errors_keep_their_traceback() -> None:
    try:
        raise ValueError("a bug")
    except ValueError as exc:
        text = logged(exc, "job failed")
    assert "Traceback (most recent call last)" in text and "ValueError: a bug" in text


def test_every_process_installs_the_filter() -> None:
    configure_logging("INFO")
    (handler,) = logging.getLogger().handlers
    assert any(isinstance(f, OneLineConnectionErrors) for f in handler.filters)
