"""Domain errors in MailSage's error body: ``{error, code, message}``.

``error`` is a short English title (clients match on ``code``; the title is fixed so that
logs and dashboards group it), ``message`` is the translated explanation. A validation
error adds ``details`` (one ``{field, message}`` per issue) and a rate limit ``retry_after``.
TLS failures are reported as ``smtp_connection_error``: MailSage documents no TLS code, and
TLS is part of connecting.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mailgate.api.problems import Kind, Problem

__all__ = ["render_error"]

# Kind -> (code, title). Statuses are problem.status: MailSage's table agrees for 400-429,
# and an SMTP failure of a valid request is a 422.
ERRORS: Final[dict[Kind, tuple[str, str]]] = {
    Kind.INVALID: ("invalid_request", "Invalid request"),
    Kind.PAYLOAD_TOO_LARGE: ("payload_too_large", "Payload too large"),
    Kind.NOT_FOUND: ("not_found", "Not found"),
    Kind.METHOD_NOT_ALLOWED: ("method_not_allowed", "Method not allowed"),
    Kind.CONFLICT: ("conflict", "Conflict"),
    Kind.IDEMPOTENCY_CONFLICT: ("conflict", "Conflict"),
    Kind.UNAUTHENTICATED: ("unauthorized", "Invalid API key"),
    Kind.FORBIDDEN: ("forbidden", "Insufficient permissions"),
    Kind.RATE_LIMITED: ("rate_limit", "Rate limit exceeded"),
    Kind.SMTP_AUTH: ("smtp_auth_error", "SMTP authentication failed"),
    Kind.SMTP_CONNECTION: ("smtp_connection_error", "SMTP connection failed"),
    Kind.SMTP_TLS: ("smtp_connection_error", "SMTP connection failed"),
    Kind.SMTP_REJECTED: ("smtp_rejected", "SMTP server rejected the message"),
    Kind.INTERNAL: ("internal_error", "Internal server error"),
}


def render_error(request: Request, problem: Problem) -> Response:
    code, title = ERRORS[problem.kind]
    body: dict[str, object] = {"error": title, "code": code, "message": problem.message}
    if problem.retry_after is not None:
        body["retry_after"] = problem.retry_after
    if problem.issues:
        body["details"] = [{"field": i.field, "message": i.message} for i in problem.issues]
    return JSONResponse(body, status_code=problem.status)
