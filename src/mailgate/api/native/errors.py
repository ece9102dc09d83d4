"""Domain errors in the native error envelope: ``{ok: false, meta, error}``."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mailgate.api.problems import Kind, Problem

CODES: Final[dict[Kind, str]] = {
    Kind.INVALID: "validation_error",
    Kind.PAYLOAD_TOO_LARGE: "payload_too_large",
    Kind.NOT_FOUND: "not_found",
    Kind.METHOD_NOT_ALLOWED: "method_not_allowed",
    Kind.CONFLICT: "conflict",
    Kind.IDEMPOTENCY_CONFLICT: "idempotency_conflict",
    Kind.UNAUTHENTICATED: "unauthorized",
    Kind.FORBIDDEN: "forbidden",
    Kind.RATE_LIMITED: "rate_limited",
    Kind.SMTP_AUTH: "smtp_auth_error",
    Kind.SMTP_CONNECTION: "smtp_connection_error",
    Kind.SMTP_TLS: "smtp_tls_error",
    Kind.SMTP_REJECTED: "smtp_rejected",
    Kind.INTERNAL: "internal_error",
}
RETRYABLE: Final = frozenset({Kind.RATE_LIMITED, Kind.INTERNAL, Kind.SMTP_CONNECTION})


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def render_error(request: Request, problem: Problem) -> Response:
    error: dict[str, object] = {
        "code": CODES[problem.kind],
        "message": problem.message,
        "retryable": problem.kind in RETRYABLE,
    }
    if problem.issues:
        error["param"] = problem.issues[0].field or None
        error["errors"] = [
            {"field": i.field, "code": i.code, "message": i.message} for i in problem.issues
        ]
    if problem.retry_after is not None:
        error["retry_after"] = problem.retry_after
    body = {"ok": False, "meta": {"request_id": request_id(request)}, "error": error}
    return JSONResponse(body, status_code=problem.status)
