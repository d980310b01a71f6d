"""The GraphQL endpoint: Strawberry's ASGI view with orjson, cache headers and an auth gate."""

from __future__ import annotations

import asyncio
import time
import zlib
from datetime import timedelta
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema import BaseSchema

from api import graphiql
from api.auth import KeyStore, RateLimiter, key_from_headers
from api.clock import ApiClock
from api.column_cache import ColumnCache
from api.context import ApiContext
from api.errors import (
    BAD_USER_INPUT,
    INTERNAL,
    INTERNAL_MESSAGE,
    RATE_LIMITED,
    SERVICE_UNAVAILABLE,
    UNAUTHENTICATED,
    UNAVAILABLE_MESSAGE,
    UNAVAILABLE_RETRY_AFTER_S,
    error_body,
    present,
)
from api.limits import ApiLimits
from api.loaders import Loaders
from api.media import GRAPHQL_RESPONSE_JSON, is_request_error, response_media_type
from api.metrics import Metrics
from api.rate_limits import Limiter, MemoryLimiter
from api.response_cache import CachedResponse, Key, ResponseCache, request_key
from api.subscriptions import Hub
from api.timerange import timeframe_seconds
from liqmap.database import is_connection_error
from liqmap.logs import get_logger
from liqmap.settings import Settings

log = get_logger(__name__)

CLOSED_RANGE_MAX_AGE_S = 300
WS_PROTOCOLS = ("graphql-transport-ws", "graphql-ws")  # what Strawberry's view speaks
GZIP_MINIMUM_SIZE = 1024  # the same threshold as the app's GZipMiddleware


def body_etag(body: bytes) -> str:
    """A strong validator of a response body: CRC-32 and Adler-32 (64 bits) plus the length.

    Checksums rather than a cryptographic hash, which costs far more on a heatmap of megabytes:
    an ETag only has to tell versions of one URL's answer apart, not resist forgery.
    """
    return f'"{zlib.crc32(body):08x}{zlib.adler32(body):08x}-{len(body):x}"'


def _is_subscription(query: str, operation_name: str | None) -> bool:
    """Whether the operation a request would run is a subscription (False if it won't parse:
    the execution then reports the syntax error with its own code)."""
    if "subscription" not in query:  # the keyword must appear: skip parsing every query twice
        return False
    try:
        document = parse(query)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    return len(operations) == 1 and operations[0].operation == OperationType.SUBSCRIPTION


def encode(data: object) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)


class TextFrames(ASGIWebSocketAdapter):
    """Every websocket frame as a text frame: graphql-transport-ws and graphql-ws are text
    protocols, and standard clients (Python ``gql``, npm ``graphql-ws``) refuse binary frames.
    Strawberry sends bytes from ``encode_json`` as binary frames; orjson's bytes are UTF-8."""

    async def send_json(self, message: Any) -> None:
        try:
            await self.ws.send_text(encode(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class LiqmapGraphQL(GraphQL):
    """Strawberry's view with orjson encoding and HTTP caching for closed historical ranges.

    ``get_context``, ``process_result``, ``encode_json`` and ``decode_json`` are the view's
    documented hooks. ``run`` (the response cache), ``execute_single`` (subscriptions refused
    over plain HTTP), ``parse_json`` (a body that is JSON but not an object) and
    ``create_response`` (ETag, Cache-Control, 503) are not, nor is the ``HTTPException`` it
    raises: pyproject.toml bounds Strawberry to the tested minor. Strawberry's own behaviour
    there is a null-field error for a subscription over POST and a 500 for a body of ``1``.
    ``websocket_adapter_class`` sends text frames (:class:`TextFrames`).
    """

    websocket_adapter_class = TextFrames

    def __init__(
        self,
        schema: BaseSchema,
        *,
        settings: Settings,
        limits: ApiLimits,
        sessions: async_sessionmaker[AsyncSession],
        hub: Hub,
        metrics: Metrics,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            # a websocket that never sends connection_init is closed (4408) after this long
            connection_init_wait_timeout=timedelta(seconds=limits.ws_init_timeout_seconds),
        )
        self.settings = settings
        self.limits = limits
        self.sessions = sessions
        self.hub = hub
        self.metrics = metrics
        self.timeframe_s = timeframe_seconds(settings.timeframe)
        self.clock = ApiClock(sessions, replay=settings.replay_dir is not None)
        self.columns = ColumnCache(limits.column_cache_entries)
        hub.on_event(self.columns.forget)
        hub.on_reset(self.columns.clear)
        self.responses = ResponseCache(
            limits.cache_entries,
            limits.response_cache_seconds,
            CLOSED_RANGE_MAX_AGE_S,
            max_bytes=limits.cache_bytes,
        )
        hub.on_event(self.responses.forget)
        hub.on_reset(self.responses.clear)
        # identical queries arriving while one of them executes wait for its answer
        self._executing: dict[Key, asyncio.Future[None]] = {}

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL with its assets served by this API (:mod:`api.graphiql`), not a CDN."""
        return graphiql.page()

    @property
    def response_cache_seconds(self) -> float:
        return self.responses.ttl

    @response_cache_seconds.setter
    def response_cache_seconds(self, value: float) -> None:
        self.responses.ttl = value

    # bench/bench_api.py, one run at load 4.4–6.5, p50 with the caches on vs off: latest
    # liquidationLevels 12.0 vs 36.5 ms, a 24 h heatmap 28.5 vs 113.9 ms
    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
        """Serve repeated identical queries from :class:`ResponseCache`; execute the rest.

        Requests Strawberry refuses before execution (a body that is not JSON, no query, a
        subscription over plain HTTP, a mutation over GET) get a GraphQL-shaped JSON body with
        ``BAD_USER_INPUT`` and the HTTP status Strawberry chose, instead of plain text.
        """
        try:
            return await self._run(request, context, root_value)
        except HTTPException as exc:
            if not isinstance(request, Request):
                raise
            code = BAD_USER_INPUT if exc.status_code < 500 else INTERNAL
            media_type = response_media_type(request.headers.get("accept"))
            body = error_body(code, exc.reason)
            if media_type == GRAPHQL_RESPONSE_JSON:
                del body["data"]  # the request was not executed
                media_type += "; charset=utf-8"
            return Response(encode(body), status_code=exc.status_code, media_type=media_type)

    async def execute_single(self, *args: Any, **kwargs: Any) -> Any:
        """One operation over plain HTTP: subscriptions need the websocket transport."""
        request_data = kwargs.get("request_data", args[-1] if args else None)
        query = getattr(request_data, "query", None) or ""
        if _is_subscription(query, getattr(request_data, "operation_name", None)):
            raise HTTPException(
                400,
                "subscriptions are served over websockets (graphql-transport-ws) at /graphql, "
                "not over plain HTTP",
            )
        return await super().execute_single(*args, **kwargs)

    async def _run(self, request: Any, context: Any, root_value: Any) -> Any:
        from strawberry.types.unset import UNSET

        context = UNSET if context is None else context
        root_value = UNSET if root_value is None else root_value
        key = None
        if (
            self.responses.enabled
            and isinstance(request, Request)
            and request.method in {"GET", "POST"}
        ):
            key = request_key(
                request, await request.body(), response_media_type(request.headers.get("accept"))
            )
        if key is not None:
            started = time.perf_counter()
            hit = self.responses.get(key, self.hub)
            if hit is None and (running := self._executing.get(key)) is not None:
                # the same query is executing: its answer serves this one too (64 clients
                # asking for the newest map right after a new bar cost one execution)
                await asyncio.shield(running)
                hit = self.responses.get(key, self.hub)
            if hit is not None:
                self.metrics.requests.labels(hit.label, "ok").inc()
                self.metrics.cache_hits.labels(hit.label).inc()
                self.metrics.latency.labels(hit.label).observe(time.perf_counter() - started)
                return self._cached_response(request, key, hit)
        if key is None or key in self._executing:  # not cacheable, or the leader's answer was not
            return await super().run(request, context, root_value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._executing[key] = done
        try:
            return await self._execute_and_store(key, request, context, root_value)
        finally:
            del self._executing[key]
            done.set_result(None)

    async def _execute_and_store(
        self, key: Key, request: Any, context: Any, root_value: Any
    ) -> Any:
        generation = self.hub.generation
        response = await super().run(request, context, root_value)
        stored: ApiContext | None = getattr(response, "liqmap_context", None)
        if (
            stored is not None
            and getattr(response, "liqmap_ok", False)
            and response.status_code == 200
            and stored.operation_label
            # a write committed meanwhile may or may not be in this answer: not kept
            and self.hub.generation == generation
        ):
            headers = {
                k: v
                for k, v in response.headers.items()
                if k in {"etag", "cache-control", "content-type"}
            }
            reads = stored.cache.reads
            self.responses.put(
                key,
                CachedResponse(
                    body=bytes(response.body),
                    headers=headers,
                    label=stored.operation_label,
                    closed=stored.cache.cacheable,
                    reads=None if reads is None else tuple(reads),
                    announced=stored.cache.announced,
                ),
            )
        return response

    def _cached_response(self, request: Request, key: Key, hit: CachedResponse) -> Response:
        headers = dict(hit.headers)
        etag = headers.get("etag")
        if etag and etag in {
            t.strip() for t in request.headers.get("if-none-match", "").split(",")
        }:
            return Response(status_code=304, headers=headers)
        body = hit.body
        if len(body) >= GZIP_MINIMUM_SIZE and "gzip" in request.headers.get("accept-encoding", ""):
            body = self.responses.gzipped(key, hit, self.limits.gzip_level)
            headers["content-encoding"] = "gzip"
            headers["vary"] = "Accept-Encoding"
        return Response(body, headers=headers)

    async def process_result(self, request: Any, result: Any) -> Any:
        # errors raised outside the operation hooks (e.g. by the parse cache) get coded here
        if result.errors and any("code" not in (e.extensions or {}) for e in result.errors):
            result.errors = [
                e if "code" in (e.extensions or {}) else present(e) for e in result.errors
            ]
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> bytes:
        return encode(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        """A body that is JSON but not an object (``"text"``, ``1``, ``null``) is the client's
        error (400), not a crash in Strawberry's request parsing (500)."""
        decoded = super().parse_json(data)
        if not isinstance(decoded, dict | list):
            raise HTTPException(400, "the request body must be a JSON object")
        return decoded

    async def get_context(self, request: Any, response: Any = None) -> ApiContext:  # type: ignore[override]
        context = ApiContext(
            sessions=self.sessions,
            settings=self.settings,
            limits=self.limits,
            loaders=Loaders(self.sessions, self.timeframe_s, self.settings.timeframe, self.clock),
            hub=self.hub,
            request=request,
            response=response,
            api_key=request.scope.get("liqmap_api_key"),
            clock=self.clock,
        )
        context.metrics = self.metrics
        context.columns = self.columns
        if response is not None and not isinstance(response, WebSocket):
            response.liqmap_context = context
        return context

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        context: ApiContext | None = getattr(sub_response, "liqmap_context", None)
        request = context.request if context is not None else None
        media_type = response_media_type(request.headers.get("accept") if request else None)
        if (
            media_type == GRAPHQL_RESPONSE_JSON
            and isinstance(response_data, dict)
            and is_request_error(response_data)
            and not _database_unavailable(response_data)
        ):
            # GraphQL over HTTP: a request that did not execute has no data entry, and is the
            # client's error (400) unless the server failed before executing it (500)
            internal = any(
                (e.get("extensions") or {}).get("code") == INTERNAL for e in response_data["errors"]
            )
            response_data = {k: v for k, v in response_data.items() if k != "data"}
            sub_response.status_code = 500 if internal else 400
        response = super().create_response(response_data, sub_response)
        if media_type == GRAPHQL_RESPONSE_JSON:
            response.headers["Content-Type"] = f"{media_type}; charset=utf-8"
        ok = isinstance(response_data, dict) and not response_data.get("errors")
        if not ok and _database_unavailable(response_data):
            response.status_code = 503  # a load balancer or client retries; nothing is cached
            response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_S)
            response.headers["Cache-Control"] = "no-store"
            response.liqmap_context = context  # type: ignore[attr-defined]
            response.liqmap_ok = False  # type: ignore[attr-defined]
            return response
        response.liqmap_context = context  # type: ignore[attr-defined]
        response.liqmap_ok = ok  # type: ignore[attr-defined]
        if context is not None and ok and context.cache.cacheable:
            etag = body_etag(bytes(response.body))
            response.headers["ETag"] = etag
            # with keys required, shared caches must not hand the answer to clients without one
            scope = "private" if self.settings.require_api_keys else "public"
            response.headers["Cache-Control"] = f"{scope}, max-age={CLOSED_RANGE_MAX_AGE_S}"
            sent = context.request.headers.get("if-none-match", "") if context.request else ""
            if etag in {tag.strip() for tag in sent.split(",")}:
                return Response(status_code=304, headers=dict(response.headers))
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def _database_unavailable(response_data: Any) -> bool:
    errors = response_data.get("errors") if isinstance(response_data, dict) else None
    return any(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == SERVICE_UNAVAILABLE
        for e in errors or ()
    )


class AuthGate:
    """Checks the API key and the rate limit before the GraphQL view runs.

    A key that is sent must be valid (401 otherwise); keys are required only when
    ``require_api_keys`` is on — then for the GraphiQL page too. Over the limit: HTTP 429 with
    ``RATE_LIMITED`` and Retry-After. Wrong or revoked keys count against their address
    (``failed_auth_limit`` a minute): beyond it the address gets 429 without a lookup, so keys
    cannot be guessed at the speed of the server, nor the key store flooded.
    """

    def __init__(
        self,
        app: GraphQL,
        keys: KeyStore,
        limiter: Limiter | RateLimiter,
        *,
        require_keys: bool,
        anonymous_limit: int,
        metrics: Metrics,
        failed_auth_limit: int = 0,
    ) -> None:
        self.app = app
        self.keys = keys
        self.limiter: Limiter = (
            MemoryLimiter(limiter) if isinstance(limiter, RateLimiter) else limiter
        )
        self.require_keys = require_keys
        self.anonymous_limit = anonymous_limit
        self.failed_auth_limit = failed_auth_limit
        self.metrics = metrics

    async def _rate_limited(
        self, scope: Scope, receive: Receive, send: Send, client: str, limit: int, wait: float
    ) -> None:
        headers = {"Retry-After": str(max(1, round(wait + 0.5)))}
        message = f"rate limit of {limit} requests per minute exceeded"
        await self._reject(scope, receive, send, 429, RATE_LIMITED, message, headers)
        self.metrics.http.labels("rate_limited").inc()
        log.info("request rejected", reason="rate_limited", client=client, limit=limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        connection = Request(scope) if scope["type"] == "http" else WebSocket(scope, receive, send)
        is_ide = (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and "query" not in connection.query_params
            and "text/html" in connection.headers.get("accept", "")
        )
        key = key_from_headers(
            connection.headers, connection.query_params, websocket=scope["type"] == "websocket"
        )
        host = (scope.get("client") or ("unknown", 0))[0]
        failures = f"authfail:{host}"
        try:
            if key and self.failed_auth_limit > 0:
                wait = await self.limiter.wait(failures, self.failed_auth_limit)
                if wait > 0:
                    await self._rate_limited(
                        scope, receive, send, failures, self.failed_auth_limit, wait
                    )
                    return
            info = await self.keys.lookup(key) if key else None
            if key and info is None and self.failed_auth_limit > 0:
                await self.limiter.take(failures, self.failed_auth_limit)
            if info is not None:
                client, limit = f"key:{info.id}", info.rate_limit_per_minute
            else:
                client, limit = f"ip:{host}", self.anonymous_limit
            refused = key and info is None
            wait = 0.0
            if not refused and limit > 0 and not (info is None and self.require_keys):
                wait = await self.limiter.take(client, limit)
        except Exception as exc:  # the key store failed: never let the request through
            if is_connection_error(exc):
                log.warning("api key lookup failed: database unavailable", error=repr(exc))
                await self._reject(
                    scope,
                    receive,
                    send,
                    503,
                    SERVICE_UNAVAILABLE,
                    UNAVAILABLE_MESSAGE,
                    {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
                )
                return
            log.error("api key lookup failed", error=repr(exc))
            await self._reject(scope, receive, send, 500, INTERNAL, INTERNAL_MESSAGE, {})
            return
        if refused or (info is None and self.require_keys):
            message = "invalid or revoked API key" if key else "an API key is required"
            await self._reject(scope, receive, send, 401, UNAUTHENTICATED, message, {})
            self.metrics.http.labels("unauthenticated").inc()
            log.info("request rejected", reason="unauthenticated", key_sent=bool(key), ide=is_ide)
            return
        if wait > 0:
            await self._rate_limited(scope, receive, send, client, limit, wait)
            return
        scope["liqmap_api_key"] = info
        await self.app(scope, receive, send)

    @staticmethod
    async def _reject(
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str],
    ) -> None:
        if scope["type"] == "websocket":
            # graphql-transport-ws: 4401 Unauthorized / 4429 Too many requests / 45xx. Accepted
            # first: a close before accepting reaches the client as a bare HTTP 403 handshake
            # failure, which GraphQL websocket clients retry; a 44xx close code they do not.
            websocket = WebSocket(scope, receive, send)
            offered = scope.get("subprotocols") or []
            protocol = next((p for p in WS_PROTOCOLS if p in offered), None)
            await websocket.accept(subprotocol=protocol)
            await websocket.close(code=4000 + status, reason=message[:120])
            return
        # the media type the client asked for, as for GraphQL's own errors (the GraphQL over
        # HTTP spec: application/graphql-response+json when accepted, with no data entry)
        accept = Headers(scope=scope).get("accept")
        media_type = response_media_type(accept)
        body = error_body(code, message)
        if media_type == GRAPHQL_RESPONSE_JSON:
            del body["data"]  # the request was not executed
            media_type += "; charset=utf-8"
        response = Response(
            encode(body), status_code=status, headers=headers, media_type=media_type
        )
        await response(scope, receive, send)
