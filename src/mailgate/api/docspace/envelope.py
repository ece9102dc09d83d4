"""DocSpace's answer wrapper: ``{response, count, links, status, statusCode}``."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["json_response", "links", "wrap"]


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


def json_response(body: dict[str, Any], status_code: int = 200) -> Response:
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(raw, status_code=status_code, media_type="application/json")
