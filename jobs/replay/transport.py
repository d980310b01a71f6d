"""The recorded HTTP transport: real ccxt exchange classes, answers from a recording.

``RecordedTransport.install(exchange)`` replaces only the instance's ``fetch(url, method,
headers, body)`` — ccxt's HTTP layer. Everything above it (request building, signing,
pagination, ``handle_errors``, parsing) is ccxt's own code, run unchanged. A request is routed
by (method, URL path) to the exchange's wire module, which answers from the recording with the
venue's own query semantics (time windows, limits, cursors). The reply then goes through the same
steps ccxt's ``fetch`` takes on a live response (``on_rest_response``, ``parse_json``,
``handle_errors``, ``handle_http_status_code``), so HTTP errors map to ccxt exceptions exactly as
they would live.

Fault injection (for retry tests)::

    transport.inject("/fapi/v1/klines", "timeout", times=2)   # ccxt.RequestTimeout twice
    transport.inject("klines", 429)        # HTTP 429 with the venue's rate-limit body
    transport.inject("klines", 503, body="Service Unavailable")
    transport.inject("openInterestHist", "malformed_json")  # 200 with a truncated JSON body
    transport.inject("fundingRate", ccxt.ExchangeNotAvailable("down"), times=None)  # always
    transport.inject("klines", lambda payload: payload[:-1])  # rewrite the recorded payload

``match`` is a substring of ``"METHOD /path?query"`` (query in the order ccxt sent it). Each
matching request consumes one use (``times=None``: every request); the first active injection
that matches wins. ``transport.requests`` logs every request as ``RecordedRequest``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt.async_support as ccxt

from jobs.replay.recording import Recording
from jobs.replay.wire import Reply, Routes, Unrecorded, answering_at

# request parameters that only authenticate or time-stamp a call; never part of the key
_VOLATILE_PARAMS = frozenset({"signature", "timestamp", "recvWindow", "sign"})

FaultSpec = BaseException | type[BaseException] | int | str | Callable[[Any], Any]
FAULT_NAMES = ("timeout", "disconnect", "malformed_json")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]

    @property
    def key(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.method} {self.path}" + (f"?{query}" if query else "")


@dataclass(slots=True)
class Injection:
    match: str
    fault: FaultSpec
    times: int | None  # remaining uses; None = unlimited
    body: str | None = None
    hits: int = 0

    @property
    def active(self) -> bool:
        return self.times is None or self.times > 0


# bodies the venues send with rate-limit / ban statuses (their documented error JSON)
_STATUS_BODIES: dict[str, dict[int, str]] = {
    "binanceusdm": {
        429: '{"code":-1003,"msg":"Too many requests; current limit of IP is 2400 requests per '
        'minute."}',
        418: '{"code":-1003,"msg":"Way too many requests; IP banned."}',
    },
    "bybit": {
        429: '{"retCode":10006,"retMsg":"Too many visits!","result":{},"retExtInfo":{}}',
    },
    "okx": {429: '{"code":"50011","msg":"Too Many Requests","data":[]}'},
}


@dataclass
class RecordedTransport:
    recording: Recording
    routes: Routes
    requests: list[RecordedRequest] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)
    latency_s: float = 0.0  # every answer waits this long, like a slow link (tests)
    # the replay clock (its window's end, or running towards it): answers stop at its reading
    clock: Callable[[], int] | None = None

    # --- fault injection -----------------------------------------------------------------
    def inject(
        self, match: str, fault: FaultSpec, *, times: int | None = 1, body: str | None = None
    ) -> Injection:
        """Make the next ``times`` requests whose key contains ``match`` fail with ``fault``.

        ``fault``: ``"timeout"`` (ccxt.RequestTimeout, as ccxt raises on a socket timeout),
        ``"disconnect"`` (ccxt.ExchangeNotAvailable, as on a dropped connection),
        ``"malformed_json"`` (HTTP 200 whose body is the recorded one cut in half), an HTTP
        status code (the reply carries ``body`` or the venue's error body for 418/429, else a
        plain-text reason, and goes through ccxt's own error mapping), an exception instance or
        class (raised as is), or a callable that rewrites the recorded JSON payload.
        """
        if isinstance(fault, str) and fault not in FAULT_NAMES:
            raise ValueError(f"unknown fault {fault!r}; valid: {', '.join(FAULT_NAMES)}")
        injection = Injection(match, fault, times, body)
        self.injections.append(injection)
        return injection

    def clear_faults(self) -> None:
        self.injections.clear()

    # --- the HTTP layer ------------------------------------------------------------------
    def install(self, exchange: ccxt.Exchange) -> None:
        async def fetch(
            url: str, method: str = "GET", headers: Any = None, body: Any = None
        ) -> Any:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return self._fetch(exchange, url, method, headers, body)

        exchange.fetch = fetch

    def _fetch(
        self, exchange: ccxt.Exchange, url: str, method: str, headers: Any, body: Any
    ) -> Any:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if isinstance(body, str) and body:
            if body.lstrip().startswith("{"):  # a JSON body (Hyperliquid's POST /info)
                pairs += _flatten(json.loads(body))
            elif not body.lstrip().startswith("["):
                pairs += parse_qsl(body, keep_blank_values=True)
        request = RecordedRequest(
            method.upper(),
            parts.path,
            {k: v for k, v in pairs if k not in _VOLATILE_PARAMS},
        )
        self.requests.append(request)
        injection = self._take_injection(request)
        details = f"{exchange.id} {method} {url}"
        fault = None if injection is None else injection.fault
        if injection is None:
            reply = self._answer(request)
        elif callable(fault) and not isinstance(fault, type):  # rewrite the recorded payload
            reply = self._answer(request)
            payload = fault(json.loads(reply.body))
            reply = Reply(reply.status, json.dumps(payload, separators=(",", ":")))
        else:
            reply = self._fault_reply(request, injection, details)
        return self._deliver(exchange, url, method, headers, body, reply)

    def _take_injection(self, request: RecordedRequest) -> Injection | None:
        key = request.key
        for injection in self.injections:
            if injection.active and injection.match in key:
                injection.hits += 1
                if injection.times is not None:
                    injection.times -= 1
                return injection
        return None

    def _answer(self, request: RecordedRequest) -> Reply:
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            recorded = ", ".join(f"{m} {p}" for m, p in self.routes)
            raise ccxt.BadRequest(
                f"{self.recording.exchange_id} replay: no recording for {request.key} "
                f"(recorded endpoints: {recorded})"
            )
        recording, token = self.recording, None
        if self.clock is not None:  # the replay window's clock: nothing after it exists yet
            now = self.clock()
            recording = replace(recording, now_ms=now)
            token = answering_at.set(now)
        try:
            return handler(recording, request.params)
        except Unrecorded as exc:
            raise ccxt.BadRequest(
                f"{self.recording.exchange_id} replay: no recording for {request.key}: {exc}"
            ) from None
        finally:
            if token is not None:
                answering_at.reset(token)

    def _fault_reply(self, request: RecordedRequest, injection: Injection, details: str) -> Reply:
        fault = injection.fault
        if isinstance(fault, BaseException):
            raise fault
        if isinstance(fault, type):
            raise fault(f"{details} (injected)")
        if fault == "timeout":
            raise ccxt.RequestTimeout(details)
        if fault == "disconnect":
            raise ccxt.ExchangeNotAvailable(details)
        if fault == "malformed_json":
            good = self._answer(request).body
            return Reply(200, injection.body or good[: max(1, len(good) // 2)])
        assert isinstance(fault, int)
        default = _STATUS_BODIES.get(self.recording.exchange_id, {}).get(fault, "")
        return Reply(fault, injection.body if injection.body is not None else default)

    @staticmethod
    def _deliver(
        exchange: ccxt.Exchange, url: str, method: str, headers: Any, body: Any, reply: Reply
    ) -> Any:
        """The tail of ccxt's ``fetch`` for a response that arrived over the wire."""
        response_headers = {"Content-Type": "application/json"}
        status_text = _REASONS.get(reply.status, "")
        request_headers = exchange.prepare_request_headers(headers)
        http_response = exchange.on_rest_response(
            reply.status,
            status_text,
            url,
            method,
            response_headers,
            reply.body,
            request_headers,
            body,
        )
        json_response = exchange.parse_json(http_response)
        if exchange.enableLastHttpResponse:
            exchange.last_http_response = http_response
        if exchange.enableLastJsonResponse:
            exchange.last_json_response = json_response
        exchange.handle_errors(
            reply.status,
            status_text,
            url,
            method,
            response_headers,
            http_response,
            json_response,
            request_headers,
            body,
        )
        exchange.handle_http_status_code(reply.status, status_text, url, method, http_response)
        if json_response is not None:
            return json_response
        return http_response


def _flatten(payload: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A JSON object as flat parameters: ``{"req": {"coin": "BTC"}}`` → ``req.coin=BTC``."""
    pairs: list[tuple[str, str]] = []
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            pairs += _flatten(value, f"{name}.")
        elif isinstance(value, str):
            pairs.append((name, value))
        else:
            pairs.append((name, json.dumps(value, separators=(",", ":"))))
    return pairs


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    418: "I'm a teapot",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
