"""Refuse request bodies over a size limit before anything parses them (HTTP 413, JSON body).

A GraphQL request is a document of at most ``max_query_tokens`` tokens plus a few variables, so
any body larger than ``api_max_body_bytes`` is refused: by its ``Content-Length`` at once, and
for chunked uploads as soon as the bytes received pass the limit (the body is then buffered,
which the GraphQL view does anyway, and handed on whole).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import QUERY_TOO_COMPLEX, error_body


class BodySizeLimit:
    def __init__(
        self, app: ASGIApp, max_bytes: int, on_reject: Callable[[], object] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject  # called with no argument on each refusal (metrics)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.on_reject is not None:
            self.on_reject()
        message = f"request body over the limit of {self.max_bytes} bytes"
        response = JSONResponse(
            error_body(QUERY_TOO_COMPLEX, message), status_code=413, headers={"Connection": "close"}
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server enforces Content-Length
            return
        if scope.get("method") in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        # no Content-Length (chunked): read up to the limit, then replay what was read
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
