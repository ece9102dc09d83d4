"""The route class every surface uses: body size limit, and JSON whatever the Content-Type."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from mailgate.errors import Issue, PayloadTooLarge

__all__ = ["JsonAnyContentTypeRoute", "MailgateRoute"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        Issue("", "The request body must not exceed {limit} bytes.", "too_large", {"limit": limit})
    )


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
            receive = request.receive
            seen = 0

            async def counted() -> Message:
                nonlocal seen
                message = await receive()
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit)
                return message

            scope = request.scope
            if force_json and request.method in ("POST", "PUT", "PATCH", "DELETE"):
                headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
            return await original(Request(scope, counted))

        return handler


class JsonAnyContentTypeRoute(MailgateRoute):
    """For clients that send JSON labelled as form data (curl's default ``-d``)."""

    force_json = True
