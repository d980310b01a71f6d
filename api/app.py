"""The Starlette application: GraphQL, health checks, Prometheus metrics."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from api import graphiql
from api.auth import KeyStore, key_from_headers
from api.body_limits import BodyLimits
from api.compression import GzipMiddleware
from api.errors import UNAUTHENTICATED, error_body
from api.http import GZIP_MINIMUM_SIZE, AuthGate, LiqmapGraphQL
from api.limits import ApiLimits
from api.metrics import CONTENT_TYPE, Metrics
from api.rate_limits import create_limiter
from api.schema import create_schema
from api.subscriptions import Hub
from api.viewer import routes as viewer_routes
from liqmap.logs import get_logger
from liqmap.settings import Settings

log = get_logger(__name__)


def create_app(settings: Settings, engine: AsyncEngine, *, database_url: str) -> Starlette:
    """The whole HTTP surface of liqmap (the viewer mounts here too)."""
    limits = ApiLimits.from_settings(settings)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    hub = Hub(database_url)
    metrics = Metrics()
    graphql = LiqmapGraphQL(
        create_schema(limits),
        settings=settings,
        limits=limits,
        sessions=sessions,
        hub=hub,
        metrics=metrics,
    )
    keys = KeyStore(engine, limits.key_cache_seconds)
    hub.on_key_revoked(keys.forget)
    hub.on_reset(keys.forget)  # revocations may have been missed while not listening
    gate = AuthGate(
        graphql,
        keys,
        create_limiter(settings.api_rate_limit_store, engine),
        require_keys=settings.require_api_keys,
        anonymous_limit=limits.anonymous_rate_limit_per_minute,
        failed_auth_limit=limits.failed_auth_per_minute,
        metrics=metrics,
    )

    async def live(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(_: Request) -> JSONResponse:
        from liqmap import migrations

        try:
            async with engine.connect() as conn:
                current = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar()
        except Exception as exc:  # the database is down or not migrated
            # the cause goes to the log, not to whoever asks (no class names, no driver text)
            log.warning("readiness check failed", error=repr(exc))
            return JSONResponse({"status": "unavailable", "reason": "database unavailable"}, 503)
        head = migrations.head_revision()
        if current != head:
            return JSONResponse({"status": "migrating", "revision": current, "head": head}, 503)
        return JSONResponse({"status": "ok", "revision": current})

    async def prometheus(request: Request) -> Response:
        if not await metrics_allowed(request):
            metrics.http.labels("unauthenticated").inc()
            body = error_body(UNAUTHENTICATED, "/metrics needs the metrics token or an API key")
            return JSONResponse(body, 401, headers={"WWW-Authenticate": "Bearer"})
        return Response(await metrics.render(sessions, graphql.clock), media_type=CONTENT_TYPE)

    async def metrics_allowed(request: Request) -> bool:
        """``LIQMAP_METRICS_TOKEN`` when set; else an API key when keys are required."""
        sent = key_from_headers(request.headers, {})
        if settings.metrics_token is not None:
            token = settings.metrics_token.get_secret_value()
            return sent is not None and hmac.compare_digest(sent.encode(), token.encode())
        if not settings.require_api_keys:
            return True
        return sent is not None and await keys.lookup(sent) is not None

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            await hub.start()
        except Exception as exc:  # subscriptions retry on first use; serving goes on
            log.warning("snapshot listener not started", error=repr(exc))
        yield
        await hub.close()

    middleware = [
        Middleware(
            BodyLimits,
            max_bytes=limits.max_body_bytes,
            timeout_s=limits.request_body_timeout_seconds,
            on_reject=lambda reason: metrics.http.labels(reason).inc(),
        ),
        Middleware(GzipMiddleware, minimum_size=GZIP_MINIMUM_SIZE, level=limits.gzip_level),
    ]
    origins = list(settings.cors_origins)
    if origins:
        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "X-API-Key", "If-None-Match"],
                expose_headers=["ETag", "Retry-After"],
                max_age=600,
            ),
        )
    app = Starlette(
        routes=[
            Route("/health/live", live),
            Route("/health/ready", ready),
            Route("/metrics", prometheus),
            Route("/graphql", gate, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", gate),
            *viewer_routes(),
            *(graphiql.routes() if settings.graphiql else []),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.hub = hub
    app.state.metrics = metrics
    app.state.limits = limits
    app.state.graphql = graphql
    return app
