"""The route class every surface uses: body size limit, and JSON whatever the Content-Type."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from mailgate.errors import Issue, PayloadTooLarge
from mailgate.i18n import N_

__all__ = ["JsonAnyContentTypeRoute", "MailgateRoute"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        Issue(
            "", N_("The request body must not exceed {limit} bytes."), "too_large", {"limit": limit}
        )
    )


async def _read_body(request: Request, limit: int) -> bytes:
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


class MailgateRoute(APIRoute):
    """Refuses bodies over ``app.state.ctx.settings.max_request_bytes`` with a 413."""

    force_json: bool = False

    def get_route_handler(self) -> Handler:
        original = super().get_route_handler()
        force_json = self.force_json

        async def handler(request: Request) -> Response:
            limit: int = request.app.state.ctx.settings.max_request_bytes
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(limit)
            scope = request.scope
            if force_json and request.method in ("POST", "PUT", "PATCH", "DELETE"):
                headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
            # Read the body here, counting: a limit hit inside FastAPI's own read would be
            # reported as unparsable JSON. Then replay it to the route.
            pending: bytes | None = await _read_body(request, limit)

            async def replay() -> Message:
                nonlocal pending
                if pending is None:
                    return await request.receive()
                chunk, pending = pending, None
                return {"type": "http.request", "body": chunk, "more_body": False}

            return await original(Request(scope, replay))

        return handler


class JsonAnyContentTypeRoute(MailgateRoute):
    """For clients that send JSON labelled as form data (curl's default ``-d``)."""

    force_json = True
