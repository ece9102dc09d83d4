"""The route class every surface uses: body size limit, and JSON when the Content-Type says
so or says nothing (or, for :class:`JsonAnyContentTypeRoute`, whatever it says)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, Final

import orjson
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Scope

from mailgate.errors import Issue, PayloadTooLarge
from mailgate.i18n import N_

__all__ = [
    "JsonAnyContentTypeRoute",
    "MailgateRoute",
    "is_json",
    "parse_json",
    "read_body",
    "replaying",
]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        Issue(
            "", N_("The request body must not exceed {limit} bytes."), "too_large", {"limit": limit}
        )
    )


def is_json(content_type: str | None) -> bool:
    """``application/json``, ``application/<anything>+json``, or no Content-Type at all."""
    if not content_type:
        return True
    kind = content_type.partition(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def parse_json(raw: bytes) -> Any:
    """``json.loads(raw)``, four times faster for what orjson reads: what it refuses (bad
    JSON, NaN, a lone surrogate, a BOM, UTF-16) is read again by ``json``, which answers or
    raises exactly as FastAPI's own parsing does. One difference: an integer beyond 64 bits
    arrives as a float."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with a 413 as soon as it is known to exceed ``limit``: by its
    Content-Length, or while it is read (counting, so a limit hit is not reported as bad
    JSON)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replaying(request: Request, body: bytes, scope: Scope | None = None) -> Request:
    """The request again (or with ``scope``), its body read already: it is replayed."""
    pending: bytes | None = body

    async def replay() -> Message:
        nonlocal pending
        if pending is None:
            return await request.receive()
        chunk, pending = pending, None
        return {"type": "http.request", "body": chunk, "more_body": False}

    return Request(request.scope if scope is None else scope, replay)


_WITH_BODY: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class MailgateRoute(APIRoute):
    """Refuses bodies over ``app.state.ctx.settings.max_request_bytes`` with a 413."""

    force_json: bool = False

    def get_route_handler(self) -> Handler:
        original = super().get_route_handler()
        force_json = self.force_json

        async def handler(request: Request) -> Response:
            limit: int = request.app.state.ctx.settings.max_request_bytes
            # Read the body here: a limit hit inside FastAPI's own read would be reported as
            # unparsable JSON. Then replay it to the route.
            body = await read_body(request, limit)
            scope = request.scope
            content_type = request.headers.get("content-type")
            if request.method in _WITH_BODY and (force_json or not content_type):
                # The same reading whatever FastAPI's default for a missing Content-Type.
                headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
            return await original(replaying(request, body, scope))

        return handler


class JsonAnyContentTypeRoute(MailgateRoute):
    """For clients that send JSON labelled as form data (curl's default ``-d``)."""

    force_json = True
