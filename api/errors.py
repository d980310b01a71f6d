"""Errors a client can act on, each with a stable ``extensions.code``.

Resolvers raise :class:`ApiError` subclasses; :class:`ErrorCodes` (a schema extension) stamps
their code on the response and replaces anything else with a masked ``INTERNAL`` error, so no
stack trace, SQL or driver message ever reaches a client. Losing the database (refused or dropped
connections, a server shutting down or starting up) is ``SERVICE_UNAVAILABLE`` instead, answered
with HTTP 503 and ``Retry-After``: the client should retry, there is nothing to report.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.error import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult

from liqmap.database import is_connection_error
from liqmap.logs import get_logger
from maps.errors import MapRequestError, TooLarge

log = get_logger(__name__)

BAD_USER_INPUT = "BAD_USER_INPUT"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
NOT_FOUND = "NOT_FOUND"
RANGE_TOO_LARGE = "RANGE_TOO_LARGE"
UNAUTHENTICATED = "UNAUTHENTICATED"
RATE_LIMITED = "RATE_LIMITED"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
NO_LEVERAGE_BANDS = "NO_LEVERAGE_BANDS"
INTERNAL = "INTERNAL"

INTERNAL_MESSAGE = "Internal server error; the incident was logged."
UNAVAILABLE_MESSAGE = "The database is unavailable; retry shortly."
UNAVAILABLE_RETRY_AFTER_S = 2


class ApiError(Exception):
    """An error whose message is safe to show to a client."""

    code = INTERNAL

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class BadUserInput(ApiError):
    code = BAD_USER_INPUT


class NotFound(ApiError):
    code = NOT_FOUND


class RangeTooLarge(ApiError):
    code = RANGE_TOO_LARGE


class Unauthenticated(ApiError):
    code = UNAUTHENTICATED


class RateLimited(ApiError):
    code = RATE_LIMITED


class NoLeverageBands(ApiError):
    """A leverage-band filter on maps stored without bands (model v1/v2 snapshots)."""

    code = NO_LEVERAGE_BANDS


def from_domain(exc: BaseException | None) -> BaseException | None:
    """The API's error for what the maps domain refused (``BAD_USER_INPUT``, or
    ``RANGE_TOO_LARGE`` naming the limit); anything else as it is."""
    if isinstance(exc, TooLarge):
        return RangeTooLarge(str(exc), **{exc.limit: exc.maximum})
    if isinstance(exc, MapRequestError):
        return BadUserInput(str(exc))
    return exc


def not_found(kind: str, name: str, known: Iterable[str]) -> NotFound:
    """``NOT_FOUND`` naming up to three close matches among ``known`` (or listing all if few)."""
    candidates = sorted(set(known))
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    if not close:  # case-insensitive prefix matches, e.g. "btc" → "BTC/USDT:USDT"
        lowered = name.lower()
        close = [c for c in candidates if c.lower().startswith(lowered[:3])][:3]
    message = f"unknown {kind} {name!r}"
    if close:
        message += "; did you mean " + ", ".join(repr(c) for c in close) + "?"
    elif candidates and len(candidates) <= 10:
        message += "; known: " + ", ".join(candidates)
    return NotFound(message, suggestions=close)


# Messages graphql-core and Strawberry's limiter extensions use for oversized documents.
_LIMIT_MARKERS = (
    "exceeds maximum operation depth",
    "aliases found. Allowed",
    "Document contains more than",
    "Source contains more than",
)


def error_code(error: GraphQLError, *, validation: bool = False) -> str:
    """The code of ``error``; ``validation`` says it came from validating the document."""
    original = from_domain(error.original_error)
    if isinstance(original, ApiError):
        return original.code
    if original is not None and is_connection_error(original):
        return SERVICE_UNAVAILABLE
    if original is not None and _is_data_exception(original):
        return BAD_USER_INPUT
    if original is None or error.path is None:
        # syntax, validation and variable-coercion errors (no field path) are the client's to fix
        if any(marker in error.message for marker in _LIMIT_MARKERS):
            return QUERY_TOO_COMPLEX
        if isinstance(original, ValueError):
            # a scalar refused the value (a DateTime without zone, say), literal or variable:
            # the document is fine, the value is not
            return BAD_USER_INPUT
        if isinstance(error, GraphQLSyntaxError):
            return GRAPHQL_PARSE_FAILED
        if validation:
            return GRAPHQL_VALIDATION_FAILED
        return BAD_USER_INPUT  # variables that do not coerce to their declared types
    return INTERNAL


DATA_EXCEPTION_MESSAGE = (
    "a value in the request cannot be used (for example a NUL character in a string or a "
    "number out of range)"
)


def _is_data_exception(exc: BaseException) -> bool:
    """PostgreSQL's class 22 (data exception): a value the client sent that the database refuses
    (a NUL character in text, a number or date out of range …), wrapped by SQLAlchemy or not."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


def present(error: GraphQLError, *, validation: bool = False) -> GraphQLError:
    """The client-facing version of ``error``: a stable code, masked when internal."""
    code = error_code(error, validation=validation)
    original = from_domain(error.original_error)
    if code == SERVICE_UNAVAILABLE:
        # one line, no traceback: during an outage every request fails the same way
        log.warning("database unavailable", path=error.path, error=repr(original))
        return GraphQLError(
            UNAVAILABLE_MESSAGE,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": SERVICE_UNAVAILABLE},
        )
    if code == INTERNAL:
        log.error(
            "resolver failed",
            path=error.path,
            error=repr(original),
            exc_info=(type(original), original, original.__traceback__) if original else None,
        )
        return GraphQLError(
            INTERNAL_MESSAGE,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": INTERNAL},
        )
    extensions = dict(error.extensions or {})
    if isinstance(original, ApiError):
        extensions.update(original.extensions)
    extensions["code"] = code
    message = error.message
    if original is not None and not isinstance(original, ApiError) and _is_data_exception(original):
        # a database data exception: its text names SQL and driver details, never sent
        log.info("request value refused by the database", path=error.path, error=repr(original))
        message = DATA_EXCEPTION_MESSAGE
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Stamp every error with its ``extensions.code`` and mask internal ones. Errors of the
    validation step are told apart from those of parsing and of variable coercion by the step
    that reported them."""

    def __init__(self) -> None:
        self._streaming = False
        self._invalid: set[int] = set()  # ids of the errors validation reported

    def on_validate(self) -> Iterator[None]:
        yield
        self._invalid = {id(e) for e in self.execution_context.pre_execution_errors or ()}

    def _process(self, result: object) -> None:
        errors = getattr(result, "errors", None)
        if isinstance(result, ExecutionResult | GraphQLExecutionResult) and errors:
            result.errors = [present(e, validation=id(e) in self._invalid) for e in errors]

    def on_operation(self) -> Iterator[None]:
        yield
        if not self._streaming:  # subscription frames are handled one by one below
            self._process(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._streaming = True
        self._process(result)
        yield None


def error_body(code: str, message: str) -> dict[str, Any]:
    """A GraphQL-shaped body for errors answered before execution (auth, rate limits)."""
    return {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
