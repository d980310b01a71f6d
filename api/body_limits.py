"""Refuse request bodies over a size limit or slower than a deadline, before anything parses them.

A GraphQL request is a document of at most ``max_query_tokens`` tokens plus a few variables, so
any body larger than ``api_max_body_bytes`` is refused with HTTP 413: by its ``Content-Length``
at once, and for chunked uploads as soon as the bytes received pass the limit.

A body must also arrive whole within ``api_request_body_timeout_seconds`` of its request's head
(HTTP 408, ``REQUEST_TIMEOUT``): the head has its own deadline
(``api/connection_deadlines.py``), but without this a client could declare a body and send it a
byte at a time, holding its connection and request task for as long as it likes — a slow loris
past the headers. So the body is read here, under that deadline, and handed on whole (the
GraphQL view buffers it anyway).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import QUERY_TOO_COMPLEX, REQUEST_TIMEOUT, error_body
from liqmap.logs import get_logger

log = get_logger(__name__)

BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _TooLarge(Exception):
    pass


class BodyLimits:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        timeout_s: float,
        on_reject: Callable[[str], object] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.on_reject = on_reject  # called with the reason of each refusal (metrics)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
    ) -> None:
        if self.on_reject is not None:
            self.on_reject("body_too_large" if status == 413 else "body_timeout")
        response = JSONResponse(
            error_body(code, message), status_code=status, headers={"Connection": "close"}
        )
        await response(scope, receive, send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body (uvicorn marks its last part, ``Content-Length`` or chunked), or None
        when the client went away; raises ``_TooLarge``."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:  # chunked (the server enforces a declared length)
                raise _TooLarge
            chunks.append(body)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in BODYLESS_METHODS:
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        headers = dict(scope.get("headers") or ())
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send, 413, QUERY_TOO_COMPLEX, self._size_message())
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await self._read_body(receive)
        except _TooLarge:
            await self._refuse(scope, receive, send, 413, QUERY_TOO_COMPLEX, self._size_message())
            return
        except TimeoutError:
            log.info(
                "request refused: body not received in time",
                client=scope.get("client"),
                seconds=round(time.monotonic() - started, 1),
            )
            await self._refuse(
                scope,
                receive,
                send,
                408,
                REQUEST_TIMEOUT,
                f"request body not received within {self.timeout_s:g} s",
            )
            return
        if body is None:  # the client went away
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _size_message(self) -> str:
        return f"request body over the limit of {self.max_bytes} bytes"
