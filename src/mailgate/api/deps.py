"""Annotated dependencies shared by every surface: context, session, language, principal.

Every dependency is ``async def``: FastAPI runs a plain ``def`` one in a thread pool, a
thread hand-off per request for what takes microseconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.api.context import AppContext
from mailgate.api.surface import KeyExtractor
from mailgate.errors import PermissionDenied, RateLimited
from mailgate.i18n import negotiate
from mailgate.security.rate_limit import RateState
from mailgate.services.accounts import Principal

__all__ = [
    "CtxDep",
    "LanguageDep",
    "SessionDep",
    "bearer_or_header_key",
    "context_of",
    "require",
]


def context_of(request: Request) -> AppContext:
    """The app's context, for dependencies: read directly, not as a sub-dependency (each
    dependency FastAPI resolves costs tens of microseconds per request)."""
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_ctx(request: Request) -> AppContext:
    return context_of(request)


CtxDep = Annotated[AppContext, Depends(get_ctx)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with context_of(request).database.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_language(request: Request) -> str:
    return negotiate(request.headers.get("accept-language"))


LanguageDep = Annotated[str, Depends(get_language)]


async def bearer_or_header_key(request: Request) -> str | None:
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def require(
    permission: str | None, key_from: KeyExtractor = bearer_or_header_key
) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: authenticate the key, count it against its rate limit, check ``permission``
    (``None``: any valid key will do)."""

    async def dependency(request: Request) -> Principal:
        ctx = context_of(request)
        principal = await ctx.principals.authenticate(await key_from(request))
        try:
            request.state.rate_limit = await ctx.rate_limiter.hit("api-key", principal.key_prefix)
        except RateLimited as exc:  # the 429 carries the window's headers too
            request.state.rate_limit = RateState(exc.limit, 0, exc.reset_at)
            raise
        if permission is not None and permission not in principal.permissions:
            raise PermissionDenied(permission=permission)
        return principal

    return dependency
