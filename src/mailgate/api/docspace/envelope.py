"""DocSpace's answer wrapper: ``{response, count, links, status, statusCode}``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

__all__ = ["links", "wrap"]


def links(request: Request) -> list[dict[str, str]]:
    return [{"href": str(request.url), "action": request.method}]


def wrap(request: Request, payload: Any) -> dict[str, Any]:
    return {
        "response": payload,
        "count": 1,
        "links": links(request),
        "status": 0,
        "statusCode": 200,
    }
