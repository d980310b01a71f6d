"""uvicorn's httptools protocol with deadlines on what a client must do: send its request head,
and read its answer (slow-loris clients, both ways).

uvicorn closes a keep-alive connection that stays silent between requests
(``timeout_keep_alive``), but nothing else is timed:

* a connection that opens and sends nothing, or sends its request line and headers a byte at a
  time, holds its socket and parser state for as long as it likes. Here every connection must
  deliver a complete request head within ``head_timeout_s`` of opening, and of the first byte
  of each later request; it is closed otherwise;
* a client that asks for a big answer (a heatmap is 1.5 MB) and then reads nothing keeps what
  the kernel's socket buffer cannot take in the server's write buffer for good — enough of them
  exhaust its memory. Here, while the transport's buffer is above its high-water mark (writes
  paused), a connection that takes none of it for ``send_timeout_s`` is aborted, as nginx's
  ``send_timeout`` does. A slow client that keeps reading makes progress and is not cut.

Bodies are bounded by size and time (``api/body_limits.py``); websockets by
``api_ws_init_timeout_seconds`` once upgraded.

No public mechanism gives these deadlines, so this subclasses uvicorn's httptools protocol (its
``loop``, ``transport`` and ``client`` attributes and parser callbacks) and pyproject.toml
bounds uvicorn to the tested minor. uvicorn's ``timeout_keep_alive`` only runs between requests
and every byte received resets it; ``limit_concurrency`` answers 503 to new requests instead of
closing idle connections; ``h11_max_incomplete_event_size`` bounds a head's size, not its time;
an ASGI middleware runs only once a head is complete, and cannot abort a connection whose
answer is left unread (uvicorn then closes it, and a closing transport keeps its buffer until
the client reads it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from liqmap.logs import get_logger

log = get_logger(__name__)


# The gain is protection: tests/reliability/test_hostile_input.py (silent and dribbling heads
# closed at the deadline, unread answers cut). The cost is within noise: bench/bench_api.py
# --only deadlines, median p50 of 3 runs, with vs uvicorn's own protocol: latest
# liquidationLevels 3.31 vs 3.32 ms, on a new connection each 4.41 vs 4.26 ms, a 1.54 MB
# heatmap 18.4 vs 17.7 ms (every run's ratio 0.95–1.09).
class DeadlineProtocol(HttpToolsProtocol):
    head_timeout_s: float = 10.0
    send_timeout_s: float = 30.0
    on_send_timeout: Any = None  # called with no argument on each abort (metrics)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._send_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head()
        self._disarm_send()
        super().connection_lost(exc)

    # --- the request head ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_deadline is None:  # the first byte of a later request on the connection
            self._arm_head()

    def on_headers_complete(self) -> None:
        self._disarm_head()
        super().on_headers_complete()

    def _arm_head(self) -> None:
        self._disarm_head()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _disarm_head(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            log.info(
                "connection closed: no complete request head in time",
                client=self.client,
                seconds=self.head_timeout_s,
            )
            self.transport.close()

    # --- the answer ---------------------------------------------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_deadline is None:
            self._arm_send(self.transport.get_write_buffer_size())

    def _arm_send(self, unsent: int) -> None:
        self._send_deadline = self.loop.call_later(self.send_timeout_s, self._check_send, unsent)

    def resume_writing(self) -> None:
        self._disarm_send()
        super().resume_writing()

    def _disarm_send(self) -> None:
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None

    def _check_send(self, unsent_before: int) -> None:
        self._send_deadline = None
        unsent = self.transport.get_write_buffer_size()
        if unsent == 0:
            return
        if unsent < unsent_before:  # the client took some: wait for the next part
            self._arm_send(unsent)
            return
        log.info(
            "connection aborted: the client read nothing of its answer in time",
            client=self.client,
            seconds=self.send_timeout_s,
            unsent_bytes=unsent,
        )
        if self.on_send_timeout is not None:
            self.on_send_timeout()
        self.transport.abort()  # close() would wait for the buffer to drain


def deadline_protocol(
    head_timeout_s: float, send_timeout_s: float, on_send_timeout: Any = None
) -> type[DeadlineProtocol]:
    """The protocol class uvicorn's ``http=`` takes, with its deadlines set."""
    attributes = {
        "head_timeout_s": head_timeout_s,
        "send_timeout_s": send_timeout_s,
        "on_send_timeout": staticmethod(on_send_timeout) if on_send_timeout else None,
    }
    return type("DeadlineProtocol", (DeadlineProtocol,), attributes)
