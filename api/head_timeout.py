"""uvicorn's httptools protocol with a deadline on each request's head (slow-loris clients).

uvicorn closes a keep-alive connection that stays silent between requests
(``timeout_keep_alive``), but a connection that opens and sends nothing, or sends its request
line and headers a byte at a time, holds its socket and parser state for as long as it likes:
enough such clients exhaust file descriptors while each costs its sender almost nothing. Here
every connection must deliver a complete request head within ``head_timeout_s`` of opening, and
of the first byte of each later request; it is closed otherwise. Bodies are bounded by size and
time (``api/body_limits.py``); websockets by ``api_ws_init_timeout_seconds`` once upgraded.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from liqmap.logs import get_logger

log = get_logger(__name__)


class HeadTimeoutProtocol(HttpToolsProtocol):
    head_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_deadline is None:  # the first byte of a later request on the connection
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            log.info("connection closed: no complete request head in time",
                     client=self.client, seconds=self.head_timeout_s)  # fmt: skip
            self.transport.close()


def head_timeout_protocol(seconds: float) -> type[HeadTimeoutProtocol]:
    """The protocol class uvicorn's ``http=`` takes, with its deadline set."""
    return type("HeadTimeoutProtocol", (HeadTimeoutProtocol,), {"head_timeout_s": seconds})
