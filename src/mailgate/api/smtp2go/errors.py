"""Domain errors in SMTP2GO's envelope:
``{"request_id", "data": {"error", "error_code", "field_validation_errors"?}}``.

Statuses are SMTP2GO's: 400 bad parameters, 401 key, 402 valid request that failed,
403 permission, 404, 429. ``API_EXCEPTION``, ``NON_VALIDATING_IN_PAYLOAD`` and
``ENDPOINT_PERMISSION_DENIED`` are SMTP2GO's documented codes; ``API_KEY_INVALID`` and
``RATE_LIMIT_EXCEEDED`` are the names its clients in the wild check for; ``NOT_FOUND`` and
``METHOD_NOT_ALLOWED`` are Mailgate's.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from mailgate.api.problems import Kind, Problem
from mailgate.api.responses import json_response
from mailgate.api.smtp2go.envelope import envelope
from mailgate.api.smtp2go.mapping import error_code

CODES: Final[dict[Kind, tuple[int, str]]] = {
    Kind.INVALID: (400, "NON_VALIDATING_IN_PAYLOAD"),
    Kind.PAYLOAD_TOO_LARGE: (400, "NON_VALIDATING_IN_PAYLOAD"),
    Kind.NOT_FOUND: (404, "NOT_FOUND"),
    Kind.METHOD_NOT_ALLOWED: (405, "METHOD_NOT_ALLOWED"),
    Kind.CONFLICT: (402, "API_EXCEPTION"),
    Kind.IDEMPOTENCY_CONFLICT: (402, "API_EXCEPTION"),
    Kind.UNAUTHENTICATED: (401, "API_KEY_INVALID"),
    Kind.FORBIDDEN: (403, "ENDPOINT_PERMISSION_DENIED"),
    Kind.RATE_LIMITED: (429, "RATE_LIMIT_EXCEEDED"),
    Kind.SMTP_AUTH: (402, "API_EXCEPTION"),
    Kind.SMTP_CONNECTION: (402, "API_EXCEPTION"),
    Kind.SMTP_TLS: (402, "API_EXCEPTION"),
    Kind.SMTP_REJECTED: (402, "API_EXCEPTION"),
    Kind.INTERNAL: (500, "API_EXCEPTION"),
}


def render_error(request: Request, problem: Problem) -> Response:
    status, code = CODES[problem.kind]
    data: dict[str, Any] = {"error": problem.message, "error_code": error_code(code)}
    if problem.issues:
        errors = [{"fieldname": i.field, "message": i.message} for i in problem.issues]
        data["field_validation_errors"] = {**errors[0], "errors": errors}
    return json_response(envelope(request, data), status)
