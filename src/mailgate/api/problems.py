"""One description of a failed request, shared by every surface's error renderer.

A surface's ``errors.py`` turns a :class:`Problem` into its vendor's body; what a failure
*is* (its kind, default status and translated text) is decided here once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from mailgate.errors import (
    Conflict,
    Gone,
    IdempotencyConflict,
    Invalid,
    Issue,
    MailgateError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    SmtpAuthError,
    SmtpConnectionError,
    SmtpError,
    SmtpRejected,
    SmtpTlsError,
    Unauthenticated,
)
from mailgate.i18n import N_, translate

__all__ = [
    "HttpError",
    "Kind",
    "Problem",
    "TranslatedIssue",
    "as_mailgate_error",
    "describe",
    "issues_from_pydantic",
]


class Kind(StrEnum):
    INVALID = "invalid"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    SMTP_AUTH = "smtp_auth"
    SMTP_CONNECTION = "smtp_connection"
    SMTP_TLS = "smtp_tls"
    SMTP_REJECTED = "smtp_rejected"
    INTERNAL = "internal"


class HttpError(MailgateError):
    """Failures the framework finds before a service runs: unknown route, wrong method."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


# Most specific first: the first isinstance match wins.
_KINDS: Final[Sequence[tuple[type[MailgateError], Kind, int]]] = (
    (PayloadTooLarge, Kind.PAYLOAD_TOO_LARGE, 413),
    (Invalid, Kind.INVALID, 400),
    (Gone, Kind.NOT_FOUND, 410),
    (NotFound, Kind.NOT_FOUND, 404),
    (IdempotencyConflict, Kind.IDEMPOTENCY_CONFLICT, 409),
    (Conflict, Kind.CONFLICT, 409),
    (Unauthenticated, Kind.UNAUTHENTICATED, 401),
    (PermissionDenied, Kind.FORBIDDEN, 403),
    (RateLimited, Kind.RATE_LIMITED, 429),
    (SmtpAuthError, Kind.SMTP_AUTH, 422),
    (SmtpTlsError, Kind.SMTP_TLS, 422),
    (SmtpConnectionError, Kind.SMTP_CONNECTION, 422),
    (SmtpRejected, Kind.SMTP_REJECTED, 422),
    (SmtpError, Kind.SMTP_CONNECTION, 422),
)


@dataclass(frozen=True)
class TranslatedIssue:
    field: str
    code: str
    message: str


@dataclass(frozen=True)
class Problem:
    kind: Kind
    status: int
    message: str
    issues: tuple[TranslatedIssue, ...] = ()
    retry_after: int | None = None
    smtp_code: int | None = None


def describe(exc: MailgateError, language: str) -> Problem:
    message = translate(exc.message, language, dict(exc.params))
    if isinstance(exc, HttpError):
        kind = {404: Kind.NOT_FOUND, 405: Kind.METHOD_NOT_ALLOWED, 413: Kind.PAYLOAD_TOO_LARGE}
        return Problem(kind.get(exc.status, Kind.INVALID), exc.status, message)
    kind_of, status = next(
        ((kind, code) for cls, kind, code in _KINDS if isinstance(exc, cls)), (Kind.INTERNAL, 500)
    )
    issues: tuple[TranslatedIssue, ...] = ()
    if isinstance(exc, Invalid):
        issues = tuple(
            TranslatedIssue(i.field, i.code, translate(i.message, language, dict(i.params)))
            for i in exc.issues
        )
        if exc.message == Invalid.message and issues:
            first = issues[0]
            message = f"{first.field}: {first.message}" if first.field else first.message
    return Problem(
        kind=kind_of,
        status=status,
        message=message,
        issues=issues,
        retry_after=exc.retry_after if isinstance(exc, RateLimited) else None,
        smtp_code=exc.smtp_code if isinstance(exc, SmtpError) else None,
    )


# pydantic error type -> (our code, English msgid). Anything else keeps pydantic's own text.
_PYDANTIC: Final[dict[str, tuple[str, str]]] = {
    "missing": ("required", N_("This field is required.")),
    "extra_forbidden": ("unknown_field", N_("Unknown field.")),
    "int_type": ("invalid_type", N_("Must be a whole number.")),
    "int_parsing": ("invalid_type", N_("Must be a whole number.")),
    "int_from_float": ("invalid_type", N_("Must be a whole number.")),
    "string_type": ("invalid_type", N_("Must be a string.")),
    "bool_type": ("invalid_type", N_("Must be true or false.")),
    "bool_parsing": ("invalid_type", N_("Must be true or false.")),
    "dict_type": ("invalid_type", N_("Must be an object.")),
    "model_type": ("invalid_type", N_("Must be an object.")),
    "model_attributes_type": ("invalid_type", N_("Must be an object.")),
    "list_type": ("invalid_type", N_("Must be a list.")),
    "string_too_short": ("too_short", N_("Must be at least {min_length} characters long.")),
    "string_too_long": ("too_long", N_("Must be at most {max_length} characters long.")),
    "too_short": ("too_short", N_("Must have at least {min_length} items.")),
    "too_long": ("too_long", N_("Must have at most {max_length} items.")),
    "greater_than": ("out_of_range", N_("Must be greater than {gt}.")),
    "greater_than_equal": ("out_of_range", N_("Must be at least {ge}.")),
    "less_than": ("out_of_range", N_("Must be less than {lt}.")),
    "less_than_equal": ("out_of_range", N_("Must be at most {le}.")),
    "literal_error": ("invalid_choice", N_("Must be one of: {expected}.")),
    "enum": ("invalid_choice", N_("Must be one of: {expected}.")),
    "json_invalid": ("invalid_json", N_("The body is not valid JSON.")),
    "json_type": ("invalid_json", N_("The body must be a JSON object.")),
    "string_unicode": ("invalid_encoding", N_("The body is not valid UTF-8.")),
    "union_tag_invalid": ("invalid_choice", N_("Must be one of: {expected_tags}.")),
}


_PYDANTIC_TAG: Final = re.compile(
    r"^(int|str|bool|float|dict|list|none|constrained-\w+|function-\w+\[.*|lax-\w+|"
    r"json-or-python\[.*|nullable\[.*|[A-Z]\w*(In|Out|Model)?)$"
)


def _field_path(loc: Sequence[Any], rename: dict[str, str]) -> str:
    # FastAPI puts where the value came from first: ("body", "to", 0, ...).
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]
    parts = [str(p) for p in loc]
    # Drop pydantic's union-member and validator tags ('constrained-int', 'function-after[..]').
    parts = [p for p in parts if not _PYDANTIC_TAG.match(p)]
    path = ".".join(parts)
    return rename.get(path, path)


def issues_from_pydantic(
    errors: Sequence[Any], rename: dict[str, str] | None = None
) -> list[Issue]:
    issues: list[Issue] = []
    seen: set[str] = set()
    for error in errors:
        kind = str(error.get("type", ""))
        ctx = {
            k: v for k, v in (error.get("ctx") or {}).items() if isinstance(v, str | int | float)
        }
        # A JSON syntax error is located by character offset, not by field: name none.
        field = "" if kind == "json_invalid" else _field_path(error.get("loc", ()), rename or {})
        if field in seen:  # a union reports once per member: the first says enough
            continue
        seen.add(field)
        if kind == "value_error":
            # Our validators raise ValueError(msgid): pydantic prefixes "Value error, ".
            text = str(error.get("msg", "")).removeprefix("Value error, ")
            issues.append(Issue(field, text, "invalid"))
        elif kind in _PYDANTIC:
            code, text = _PYDANTIC[kind]
            issues.append(Issue(field, text, code, ctx))
        else:
            issues.append(Issue(field, str(error.get("msg", N_("Invalid value."))), "invalid"))
    return issues


def as_mailgate_error(exc: Exception) -> MailgateError:
    """Framework exceptions as domain errors, so every surface renders them the same way."""
    if isinstance(exc, MailgateError):
        return exc
    if isinstance(exc, RequestValidationError):
        return Invalid(issues_from_pydantic(exc.errors()))
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return HttpError(404, N_("No such endpoint."))
        if exc.status_code == 405:
            return HttpError(405, N_("This method is not allowed here."))
        if exc.status_code == 413:
            return PayloadTooLarge(Issue("", N_("The request body is too large.")))
        if exc.status_code == 400:
            return Invalid(Issue("", N_("The body is not valid JSON."), "invalid_json"))
        return HttpError(exc.status_code, str(exc.detail))
    return MailgateError(N_("An internal error occurred."))
