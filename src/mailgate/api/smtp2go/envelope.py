"""SMTP2GO's envelope, success and error alike: ``{"request_id": "<uuid>", "data": ...}``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from mailgate.api.smtp2go.mapping import request_uuid

__all__ = ["envelope", "request_id"]


def request_id(request: Request) -> str:
    return request_uuid(str(getattr(request.state, "request_id", "")))


def envelope(request: Request, data: Any) -> dict[str, Any]:
    return {"request_id": request_id(request), "data": data}
