"""Domain errors in the Back Office error body (the document shows none; this one is ours):

    {"error": {"code": "...", "message": "...", "details": [{"field": "...", "message": "..."}]}}

``message`` is in the language ``accept-language`` asked for, and the response says which in
``Content-Language``. ``details`` comes with validation errors, ``retryAfter`` with a 429.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mailgate.api.problems import Kind, Problem
from mailgate.i18n import negotiate

__all__ = ["render_error"]

# Statuses are problem.status: 400 401 403 404 405 409 413 429, and 422 for an SMTP failure.
CODES: Final[dict[Kind, str]] = {
    Kind.INVALID: "invalid_request",
    Kind.PAYLOAD_TOO_LARGE: "payload_too_large",
    Kind.NOT_FOUND: "not_found",
    Kind.METHOD_NOT_ALLOWED: "method_not_allowed",
    Kind.CONFLICT: "conflict",
    Kind.IDEMPOTENCY_CONFLICT: "conflict",
    Kind.UNAUTHENTICATED: "unauthorized",
    Kind.FORBIDDEN: "forbidden",
    Kind.RATE_LIMITED: "rate_limited",
    Kind.SMTP_AUTH: "smtp_auth_error",
    Kind.SMTP_CONNECTION: "smtp_connection_error",
    Kind.SMTP_TLS: "smtp_tls_error",
    Kind.SMTP_REJECTED: "smtp_rejected",
    Kind.INTERNAL: "internal_error",
}


def render_error(request: Request, problem: Problem) -> Response:
    error: dict[str, object] = {"code": CODES[problem.kind], "message": problem.message}
    if problem.issues:
        error["details"] = [{"field": i.field, "message": i.message} for i in problem.issues]
    if problem.retry_after is not None:
        error["retryAfter"] = problem.retry_after
    response = JSONResponse({"error": error}, status_code=problem.status)
    response.headers["Content-Language"] = negotiate(request.headers.get("accept-language"))
    return response
