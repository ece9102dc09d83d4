"""SMTP2GO's envelope, success and error alike: ``{"request_id": "<uuid>", "data": ...}``."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mailgate.api.smtp2go.mapping import request_uuid

__all__ = ["envelope", "json_response", "request_id"]


def request_id(request: Request) -> str:
    return request_uuid(str(getattr(request.state, "request_id", "")))


def envelope(request: Request, data: Any) -> dict[str, Any]:
    return {"request_id": request_id(request), "data": data}


def json_response(
    body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(raw, status_code=status_code, media_type="application/json", headers=headers)
