"""Domain errors as DocSpace answers them:
``{"error": {"message", "type"}, "links", "status": 1, "statusCode"}``; HTTP status = statusCode.

``type`` names the kind of failure the way DocSpace does (after the .NET exception class).
Validation failures add ``error.errors``: ``[{field, code, message}]`` in DocSpace's names.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from mailgate.api.docspace.envelope import links
from mailgate.api.problems import Kind, Problem
from mailgate.api.responses import json_response

TYPES: Final[dict[Kind, str]] = {
    Kind.INVALID: "ArgumentException",
    Kind.PAYLOAD_TOO_LARGE: "PayloadTooLargeException",
    Kind.NOT_FOUND: "ItemNotFoundException",
    Kind.METHOD_NOT_ALLOWED: "MethodNotAllowedException",
    Kind.CONFLICT: "InvalidOperationException",
    Kind.IDEMPOTENCY_CONFLICT: "InvalidOperationException",
    Kind.UNAUTHENTICATED: "AuthenticationException",
    Kind.FORBIDDEN: "SecurityException",
    Kind.RATE_LIMITED: "TooManyRequestsException",
    Kind.SMTP_AUTH: "SmtpException",
    Kind.SMTP_CONNECTION: "SmtpException",
    Kind.SMTP_TLS: "SmtpException",
    Kind.SMTP_REJECTED: "SmtpException",
    Kind.INTERNAL: "Exception",
}


def render_error(request: Request, problem: Problem) -> Response:
    error: dict[str, Any] = {"message": problem.message, "type": TYPES[problem.kind]}
    if problem.issues:
        error["errors"] = [
            {"field": i.field, "code": i.code, "message": i.message} for i in problem.issues
        ]
    body = {"error": error, "links": links(request), "status": 1, "statusCode": problem.status}
    return json_response(body, problem.status)
