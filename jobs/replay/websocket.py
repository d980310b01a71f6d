"""Websocket replay: recorded frames fed through ccxt pro's own client and message handler.

``install(exchange)`` patches only the ws ``Client`` objects the exchange creates: ``connect``
resolves at once (no socket) and ``send`` records the subscription instead of writing it. The
recorded frames then enter through ``Client.handle_text_or_binary_message`` — the decoder a live
frame goes through — and from there ccxt's ``handle_message`` → ``handle_liquidation`` →
``parse_ws_liquidation`` resolve the futures that ``watch_liquidations*`` awaits.

Frames are fed one at a time, each only once every future the watcher registered is pending
again, so no frame is dropped between two ``watch`` calls (live, frames arriving between calls
would only reach ccxt's cache). After the last frame the watcher's futures are rejected with
``ReplayExhausted``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class ReplayExhausted(Exception):
    """The recorded websocket frames have all been delivered."""


class WebsocketReplay:
    def __init__(self, frames: list[Any]) -> None:
        self.frames = frames
        self.sent: list[Any] = []  # subscription requests ccxt sent
        self.delivered = 0
        self._clients: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._expected: set[str] = set()
        self._expected_count = 1

    def install(self, exchange: Any) -> None:
        original = exchange.client

        def client(url: str) -> Any:
            ws = original(url)
            if ws not in self._clients:
                self._clients.append(ws)

                def connect(session: Any, backoff_delay: float = 0) -> Any:
                    if not ws.connected.done():
                        ws.isConnected = True
                        ws.connected.resolve(url)
                    return ws.connected

                async def send(message: Any) -> None:
                    self.sent.append(message)

                ws.connect = connect
                ws.send = send
            return ws

        exchange.client = client

    def start(self, expected_subscriptions: int = 1) -> None:
        """Feed the frames once the watcher awaits ``expected_subscriptions`` futures."""
        self._expected_count = expected_subscriptions
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._feed())

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    @property
    def finished(self) -> bool:
        """Every recorded frame has been delivered (a later watch has nothing to replay)."""
        return self._task is not None and self._task.done()

    @staticmethod
    def is_end(exc: BaseException) -> bool:
        return isinstance(exc, ReplayExhausted)

    async def _listening(self) -> Any:
        """The client once every future the watcher registered is pending."""
        while True:
            for ws in self._clients:
                pending = {h for h, f in ws.futures.items() if not f.done()}
                if not self._expected and len(pending) >= self._expected_count:
                    self._expected = pending  # what the watcher awaits, fixed once complete
                if self._expected and self._expected <= pending:
                    return ws
            await asyncio.sleep(0)

    async def _feed(self) -> None:
        for frame in self.frames:
            ws = await self._listening()
            ws.handle_text_or_binary_message(json.dumps(frame, separators=(",", ":")))
            self.delivered += 1
            await asyncio.sleep(0)
        ws = await self._listening()
        for message_hash, future in list(ws.futures.items()):
            if not future.done():
                ws.reject(ReplayExhausted(f"{self.delivered} recorded frames replayed"),
                          message_hash)  # fmt: skip
