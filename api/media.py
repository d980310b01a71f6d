"""Which media type a GraphQL-over-HTTP answer is sent as, chosen from the request's ``Accept``.

The GraphQL over HTTP specification defines ``application/graphql-response+json``: a client that
asks for it gets HTTP 4xx for a request that never executed (a document that does not parse or
validate, variables that do not coerce), and the body then has no ``data`` entry. Clients that
ask for ``application/json`` (or ``*/*``, or send no ``Accept``) keep the legacy behaviour: HTTP
200 with ``errors`` and ``"data": null``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


def _ranges(accept: str) -> Iterable[tuple[str, float]]:
    """(media range, quality) of each entry of an ``Accept`` header, lower-cased."""
    for entry in accept.split(","):
        kind, _, params = entry.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if kind.strip():
            yield kind.strip().lower(), quality


def response_media_type(accept: str | None) -> str:
    """``application/graphql-response+json`` when the client names it with at least the quality
    it gives ``application/json`` (an exact name, not ``*/*``); ``application/json`` otherwise."""
    if not accept:
        return JSON
    best: dict[str, float] = {}
    for kind, quality in _ranges(accept):
        best[kind] = max(best.get(kind, 0.0), quality)
    wanted = best.get(GRAPHQL_RESPONSE_JSON, 0.0)
    if wanted > 0 and wanted >= best.get(JSON, 0.0):
        return GRAPHQL_RESPONSE_JSON
    return JSON


def is_request_error(body: Mapping[str, Any]) -> bool:
    """Whether a GraphQL answer reports a request that did not execute: errors, no data, and no
    error with a field path (parse, validation and variable-coercion errors have none)."""
    errors = body.get("errors")
    if not errors or body.get("data") is not None:
        return False
    return all(isinstance(e, Mapping) and not e.get("path") for e in errors)
