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
        self.sent: list[Any] = []  # subscription requests ccxt sent, in order
        self.delivered = 0
        self._clients: list[Any] = []
        self._sent_by_client: dict[int, list[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._expected: set[tuple[int, str]] = set()
        self._expected_count = 1

    def install(self, exchange: Any) -> None:
        original = exchange.client

        def client(url: str) -> Any:
            ws = original(url)
            if ws not in self._clients:
                self._clients.append(ws)
                sent_here = self._sent_by_client.setdefault(id(ws), [])

                def connect(session: Any, backoff_delay: float = 0) -> Any:
                    if not ws.connected.done():
                        ws.isConnected = True
                        ws.connected.resolve(url)
                    return ws.connected

                async def send(message: Any) -> None:
                    self.sent.append(message)
                    sent_here.append(json.dumps(message, separators=(",", ":")))

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

    def _pending(self) -> set[tuple[int, str]]:
        return {(id(ws), h) for ws in self._clients for h, f in ws.futures.items() if not f.done()}

    async def _listening(self) -> None:
        """Return once every future the watcher registered (on any client) is pending again.

        A watcher may span several clients (Bybit's linear and inverse markets live on
        different endpoints), so pending futures are counted across all of them.
        """
        while True:
            pending = self._pending()
            if not self._expected and len(pending) >= self._expected_count:
                self._expected = pending  # what the watcher awaits, fixed once complete
            if self._expected and self._expected <= pending:
                return
            await asyncio.sleep(0)

    def _client_for(self, frame: Any) -> Any:
        """The client that subscribed to the frame's stream (topic, stream name or arg)."""
        key: Any = None
        if isinstance(frame, dict):
            key = frame.get("topic") or frame.get("stream") or frame.get("arg")
        if key is not None:
            needle = key if isinstance(key, str) else json.dumps(key, separators=(",", ":"))
            needle = needle.strip("{}")
            for ws in self._clients:
                if any(needle in sent for sent in self._sent_by_client.get(id(ws), [])):
                    return ws
        pending_ids = {client_id for client_id, _ in self._expected}
        return next(ws for ws in self._clients if id(ws) in pending_ids)

    async def _feed(self) -> None:
        for frame in self.frames:
            await self._listening()
            ws = self._client_for(frame)
            ws.handle_text_or_binary_message(json.dumps(frame, separators=(",", ":")))
            self.delivered += 1
            await asyncio.sleep(0)
        await self._listening()
        end = ReplayExhausted(f"{self.delivered} recorded frames replayed")
        for ws in self._clients:
            for message_hash, future in list(ws.futures.items()):
                if not future.done():
                    ws.reject(end, message_hash)
