"""How ``/v3`` finds the key: ``X-Smtp2go-Api-Key``, ``Authorization: Bearer`` /
``X-API-Key``, or ``api_key`` in the JSON body (the official clients, which send no
Content-Type). The body is parsed once: starlette caches it on the request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mailgate.api.deps import CtxDep, SessionDep, bearer_or_header_key
from mailgate.api.smtp2go.mapping import api_key_from_body
from mailgate.services.accounts import Principal, authenticate

__all__ = ["AnyKey", "smtp2go_key"]


async def smtp2go_key(request: Request) -> str | None:
    header = request.headers.get("x-smtp2go-api-key", "").strip()
    if header:
        return header
    key = await bearer_or_header_key(request)
    if key:
        return key
    if not (await request.body()).strip():
        return None
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):  # the route reports the bad body itself
        return None
    return api_key_from_body(body)


async def any_valid_key(request: Request, ctx: CtxDep, session: SessionDep) -> Principal:
    """Authenticate and count the key, like ``deps.require``, for endpoints every key may call."""
    principal = await authenticate(session=session, presented=await smtp2go_key(request))
    request.state.rate_limit = await ctx.rate_limiter.hit("api-key", principal.key_prefix)
    return principal


AnyKey = Annotated[Principal, Depends(any_valid_key)]
