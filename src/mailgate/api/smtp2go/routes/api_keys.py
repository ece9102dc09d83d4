"""``/v3/api_keys/...``: what the calling key may do."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from mailgate.api.responses import json_response
from mailgate.api.routing import JsonAnyContentTypeRoute
from mailgate.api.smtp2go import mapping
from mailgate.api.smtp2go.auth import AnyKey
from mailgate.api.smtp2go.envelope import envelope
from mailgate.api.smtp2go.schemas import (
    ErrorEnvelope,
    PermissionsEnvelope,
    ViewPermissionsRequest,
)

router = APIRouter(
    prefix="/api_keys", tags=["smtp2go: api keys"], route_class=JsonAnyContentTypeRoute
)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 404, 429)
}


@router.post("/permissions", response_model=PermissionsEnvelope, responses=ERRORS)
async def view_permissions(
    request: Request, principal: AnyKey, body: ViewPermissionsRequest | None = None
) -> Response:
    """The endpoints this API key may call (every valid key may ask)."""
    return json_response(envelope(request, mapping.permitted_endpoints(principal.permissions)))
