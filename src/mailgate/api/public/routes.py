"""The routes of the public pages. Tokens that do not verify are a 404 and record nothing."""

from __future__ import annotations

import base64
from typing import Final

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from mailgate.api.deps import context_of
from mailgate.api.public import pages
from mailgate.api.public.visitor import visitor_of
from mailgate.domain import EventType
from mailgate.services import tracking
from mailgate.services.tracking import Target
from mailgate.services.tracking_tokens import TokenKind, TrackingSigner

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# The smallest transparent GIF (1x1, 43 bytes).
PIXEL: Final = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE: Final = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}
ONE_CLICK: Final = b"List-Unsubscribe=One-Click"  # RFC 8058's body
BODY_LIMIT: Final = 8192  # an unsubscribe POST carries one short field


def _signer(request: Request) -> TrackingSigner:
    """One signer per app (reading the keys can mean reading the key file)."""
    state = request.app.state
    signer: TrackingSigner | None = getattr(state, "tracking_signer", None)
    if signer is None:
        signer = TrackingSigner(context_of(request).settings.secret_keys())
        state.tracking_signer = signer
    return signer


async def _target(request: Request, token: str, kind: TokenKind) -> Target | None:
    async with context_of(request).database.reading() as session:
        return await tracking.find_target(
            session=session, signer=_signer(request), token=token, kind=kind
        )


def _not_found() -> Response:
    return PlainTextResponse("Not found\n", status_code=404, headers=NO_STORE)


def _visitor(request: Request) -> tracking.Visitor:
    found = visitor_of(request, context_of(request).settings.trusted_proxy_networks)
    if request.method == "HEAD":  # people's mail programs GET; HEAD is a link checker
        return tracking.Visitor(found.user_agent, found.client_ip, automated=True)
    return found


async def _hit(request: Request, token: str, kind: TokenKind) -> Target | None:
    """The token's target, its open or click recorded; None when the token does not verify
    (or a click token holds no link): nothing is recorded then."""
    target = await _target(request, token, kind)
    if target is None or (kind is TokenKind.CLICK and target.url is None):
        return None
    event = EventType.OPEN if kind is TokenKind.OPEN else EventType.CLICK
    async with context_of(request).database.writing() as session:
        await tracking.record_hit(
            session=session, target=target, visitor=_visitor(request), kind=event
        )
    return target


@router.api_route("/t/o/{token}.gif", methods=["GET", "HEAD"])
async def open_pixel(token: str, request: Request) -> Response:
    """Records an ``open`` and answers a transparent 1x1 GIF."""
    target = await _hit(request, token, TokenKind.OPEN)
    if target is None:
        return _not_found()
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.api_route("/t/c/{token}", methods=["GET", "HEAD"])
async def click(token: str, request: Request) -> Response:
    """Records a ``click`` and redirects (302) to the link the signed token holds."""
    target = await _hit(request, token, TokenKind.CLICK)
    if target is None or target.url is None:
        return _not_found()
    return RedirectResponse(target.url, status_code=302, headers=NO_STORE)


@router.get("/u/{token}")
async def unsubscribe_form(token: str, request: Request) -> Response:
    """The confirmation page; nothing is recorded until it is submitted."""
    target = await _target(request, token, TokenKind.UNSUBSCRIBE)
    if target is None:
        return pages.invalid_page()
    return pages.confirm_page(target.recipient)


async def _small_body(request: Request) -> bytes | None:
    """The body, or None when it is larger than an unsubscribe request can be."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > BODY_LIMIT:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > BODY_LIMIT:
            return None
    return body


@router.post("/u/{token}")
async def unsubscribe(token: str, request: Request) -> Response:
    """RFC 8058 one-click (body ``List-Unsubscribe=One-Click``, from the mail program) or the
    confirmation form: either suppresses the address for the sending account and records an
    ``unsubscribe`` event, once. 200, no redirect, the same answer every time."""
    body = await _small_body(request)
    if body is None:
        return PlainTextResponse("Request body too large\n", status_code=413, headers=NO_STORE)
    one_click = ONE_CLICK in body
    ctx = context_of(request)
    async with ctx.database.writing() as session:
        target = await tracking.find_target(
            session=session, signer=_signer(request), token=token, kind=TokenKind.UNSUBSCRIBE
        )
        if target is None:
            return _not_found() if one_click else pages.invalid_page()
        await tracking.unsubscribe(
            session=session,
            target=target,
            visitor=_visitor(request),
            how="one-click" if one_click else "confirmation page",
        )
    if one_click:
        return PlainTextResponse("Unsubscribed\n", headers=NO_STORE)
    return pages.done_page(target.recipient)
