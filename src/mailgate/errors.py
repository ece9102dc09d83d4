"""The domain error tree. Services raise these; each API surface renders them.

    MailgateError
    ├── Invalid(issues)              bad input: one or more (field, message) issues
    │   └── PayloadTooLarge          a body or field over its size limit
    ├── NotFound                     an id that does not exist for this account (LookupError)
    │   └── Gone                     it existed, but what was asked for is no more (a purged body)
    ├── Conflict                     the request clashes with stored state
    │   └── IdempotencyConflict      same Idempotency-Key, different request
    │       └── IdempotencyInProgress  same Idempotency-Key, first request not answered yet
    ├── Unauthenticated              no key, or a key that is unknown or revoked
    ├── PermissionDenied             the key lacks a permission
    ├── RateLimited(retry_after)     too many requests for this key
    └── SmtpError                    an upstream SMTP server said no (connection test, delivery)
        ├── SmtpConnectionError      DNS, refused, reset, timeout
        ├── SmtpTlsError             handshake or certificate failure
        ├── SmtpAuthError            AUTH rejected (535 ...) or no usable mechanism
        └── SmtpRejected(smtp_code)  MAIL / RCPT / DATA refused

Messages are English msgids with ``{name}`` placeholders, marked with
:func:`mailgate.i18n.N_` wherever they are written (here, and where a service raises one);
surfaces translate them with :func:`mailgate.i18n.translate` for the caller's language,
which also fills in ``params``. Never put a secret in a message or a param.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailgate.i18n import N_

__all__ = [
    "Conflict",
    "Gone",
    "IdempotencyConflict",
    "IdempotencyInProgress",
    "Invalid",
    "Issue",
    "MailgateError",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "SmtpAuthError",
    "SmtpConnectionError",
    "SmtpError",
    "SmtpRejected",
    "SmtpTlsError",
    "Unauthenticated",
]


class MailgateError(Exception):
    """Root of every error a service raises on purpose."""

    message: str = N_("The request failed.")

    def __init__(self, message: str | None = None, **params: Any) -> None:
        self.message = message or type(self).message
        self.params: Mapping[str, Any] = params
        super().__init__(self.message)


@dataclass(frozen=True)
class Issue:
    """One problem with one input field. ``field`` is a dot path in the caller's names."""

    field: str
    message: str
    code: str = "invalid"
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class Invalid(MailgateError, ValueError):
    message = N_("The request is not valid.")

    def __init__(self, issues: Sequence[Issue] | Issue, message: str | None = None) -> None:
        self.issues: tuple[Issue, ...] = (issues,) if isinstance(issues, Issue) else tuple(issues)
        super().__init__(message)

    def renamed(self, names: Mapping[str, str] | Callable[[str], str]) -> Invalid:
        """The same issues with field names translated (domain -> a surface's names): by a
        table (names not in it stay) or by a function."""
        rename = names if callable(names) else (lambda field: names.get(field, field))
        issues = [dataclasses.replace(i, field=rename(i.field)) for i in self.issues]
        return type(self)(issues, self.message if self.message != type(self).message else None)

    @classmethod
    def field(cls, name: str, message: str, code: str = "invalid", **params: Any) -> Invalid:
        return cls(Issue(name, message, code, params))


class PayloadTooLarge(Invalid):
    message = N_("The request body is too large.")


class NotFound(MailgateError, LookupError):
    message = N_("No such resource.")


class Gone(NotFound):
    message = N_("This resource is no longer available.")


class Conflict(MailgateError):
    message = N_("The request conflicts with the current state.")


class IdempotencyConflict(Conflict):
    message = N_("This Idempotency-Key was already used with a different request.")


class IdempotencyInProgress(IdempotencyConflict):
    message = N_(
        "A request with this Idempotency-Key has not been answered yet. Retry later; if it "
        "stays this way, the first request ended without an answer: check what it did before "
        "sending again with a new key."
    )


class Unauthenticated(MailgateError):
    message = N_("A valid API key is required.")


class PermissionDenied(MailgateError, PermissionError):
    message = N_("This API key lacks the permission {permission}.")


class RateLimited(MailgateError):
    message = N_("Rate limit exceeded. Retry in {retry_after} seconds.")

    def __init__(
        self, retry_after: int, limit: int = 0, reset_at: int = 0, message: str | None = None
    ) -> None:
        self.retry_after = max(1, retry_after)
        self.limit = limit
        self.reset_at = reset_at
        super().__init__(message, retry_after=self.retry_after)


class SmtpError(MailgateError):
    """An upstream SMTP server failed us. ``detail`` is the server's words, secret-free."""

    message = N_("The SMTP server failed: {detail}")

    def __init__(
        self, detail: str, smtp_code: int | None = None, message: str | None = None
    ) -> None:
        self.detail = detail
        self.smtp_code = smtp_code
        super().__init__(message, detail=detail)


class SmtpConnectionError(SmtpError):
    message = N_("Could not connect to the SMTP server: {detail}")


class SmtpTlsError(SmtpError):
    message = N_("TLS with the SMTP server failed: {detail}")


class SmtpAuthError(SmtpError):
    message = N_("SMTP authentication failed: {detail}")


class SmtpRejected(SmtpError):
    message = N_("The SMTP server rejected the message: {detail}")
