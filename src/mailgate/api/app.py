"""``create_app(settings)``: every surface mounted on one FastAPI app over one domain."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy import text
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailgate import __version__
from mailgate.api import backoffice, docspace, mailsage, native, public, smtp2go
from mailgate.api.context import AppContext
from mailgate.api.direct import DirectRoutes, direct_routes
from mailgate.api.problems import as_mailgate_error, describe
from mailgate.api.surface import Surface
from mailgate.config import Settings
from mailgate.errors import MailgateError
from mailgate.i18n import negotiate
from mailgate.logs import configure_logging
from mailgate.node import running_node
from mailgate.security.rate_limit import RateState
from mailgate.services.accounts import PrincipalCache
from mailgate.services.smtp_test_jobs import SmtpTestRunner

__all__ = ["create_app", "served_app"]

log = structlog.get_logger(__name__)

# Longest prefix first: MailSage's /api/v1/smtp/configs sits inside the native /api/v1.
SURFACES: tuple[Surface, ...] = tuple(
    sorted(
        (mailsage.surface, native.surface, backoffice.surface, docspace.surface, smtp2go.surface),
        key=lambda s: len(s.prefix),
        reverse=True,
    )
)


def surface_for(path: str) -> Surface:
    for surface in SURFACES:
        if path == surface.prefix or path.startswith(surface.prefix + "/"):
            return surface
    return native.surface


class RequestContextMiddleware:
    """Gives each request an id and echoes it, plus the key's rate-limit state, as headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Unique, not secret: a random prefix per process and a counter (a random id per
        # request cost a getrandom() system call each).
        self._prefix = "req_" + secrets.token_hex(6)
        self._numbers = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"{self._prefix}{next(self._numbers):012x}"
        state = scope.setdefault("state", {})
        state["request_id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                rate: RateState | None = state.get("rate_limit")
                if rate is not None:
                    headers += [
                        (b"x-ratelimit-limit", str(rate.limit).encode()),
                        (b"x-ratelimit-remaining", str(rate.remaining).encode()),
                        (b"x-ratelimit-reset", str(rate.reset_at).encode()),
                    ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class MailgateApp(FastAPI):
    """FastAPI behind a front door (``front``, set by :func:`create_app`): every request gets
    its id there, and the direct routes (api/direct.py) are served there, before FastAPI's
    own per-request work (an OpenTelemetry probe, then Starlette's middleware stack). The
    rest goes on to FastAPI as usual."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None or scope["type"] == "lifespan":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # as Starlette sets it: request.app
        await self.front(scope, receive, send)

    async def behind_front(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


async def render_error(request: Request, exc: Exception) -> Response:
    error = as_mailgate_error(exc)
    if type(error) is MailgateError:
        log.error("unhandled error", path=request.url.path, error_type=type(exc).__name__)
    problem = describe(error, negotiate(request.headers.get("accept-language")))
    response = surface_for(request.url.path).render_error(request, problem)
    if problem.retry_after is not None:
        response.headers["Retry-After"] = str(problem.retry_after)
    return response


def create_app(
    settings: Settings | None = None,
    *,
    run_migrations: bool = True,
    settle_gc: bool = False,
    direct: bool = True,
) -> FastAPI:
    """``settle_gc``: tune the garbage collector once started (a long-running server process;
    not for tests, which build many apps in one process). ``direct=False``: the direct routes
    (api/direct.py) go through FastAPI too, for the tests that compare the two."""
    settings = settings or Settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running_node(
            settings, run_migrations=run_migrations, relay=True, settle_gc=settle_gc
        ) as node:
            ctx = AppContext(
                settings=settings,
                database=node.database,
                box=node.box,
                rate_limiter=node.rate_limiter,
                smtp_tests=SmtpTestRunner(node.database, node.box, settings),
                accepter=node.accepter,
                principals=PrincipalCache(node.database, settings.api_key_cache_seconds),
            )
            app.state.ctx = ctx
            try:
                yield
            finally:
                await ctx.smtp_tests.close()

    app = MailgateApp(
        title="Mailgate",
        version=__version__,
        description=(
            "Self-hosted outbound email gateway. One domain behind five API surfaces: native "
            "`/api/v1`, MailSage `/api/v1/smtp/configs`, Back Office `/api/v2/mail/providers`, "
            "DocSpace `/api/2.0/smtpsettings/smtp` and SMTP2GO `/v3`."
        ),
        lifespan=lifespan,
    )
    # Busiest first: a request is matched against the routes in the order they were included.
    busiest_first = (native, smtp2go, mailsage, backoffice, docspace)
    for package in busiest_first:
        package.surface.include(app)
    inner: ASGIApp = app.behind_front
    if direct:
        routes = direct_routes(r for package in busiest_first for r in package.surface.routes())
        inner = DirectRoutes(inner, routes=routes, render_error=render_error)
    app.front = RequestContextMiddleware(inner)
    app.include_router(public.router)  # tracking and unsubscribe links: no key, no envelope
    for exc_type in (MailgateError, RequestValidationError, HTTPException, Exception):
        app.add_exception_handler(exc_type, render_error)

    @app.get("/healthz", tags=["health"], include_in_schema=True)
    async def healthz(request: Request) -> JSONResponse:
        """Liveness and database reachability."""
        ctx: AppContext = request.app.state.ctx
        async with ctx.database.session() as session:
            await session.execute(text("SELECT 1"))
        return JSONResponse({"status": "ok", "version": __version__})

    return app


def served_app() -> FastAPI:
    """The app of each process of ``mailgate serve`` (a uvicorn factory): the parent has
    migrated the database already."""
    return create_app(run_migrations=False, settle_gc=True)
