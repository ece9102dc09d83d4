"""Closed vocabularies and value types shared by services, delivery and every surface.

Vendor words never appear here: each surface's ``mapping.py`` translates to these.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Attachment",
    "AuthMethod",
    "EventType",
    "Mailbox",
    "MessageDraft",
    "MessageStatus",
    "Outcome",
    "Permission",
    "ProviderStatus",
    "QuotaRange",
    "QuotaWindow",
    "RecipientKind",
    "RecipientStatus",
    "Security",
    "SendingRateLimit",
    "SmtpEndpoint",
]


class Security(StrEnum):
    """How the connection to an upstream is protected."""

    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"  # implicit TLS from the first byte (SMTPS, port 465)


class AuthMethod(StrEnum):
    """SMTP AUTH mechanism. ``AUTO`` picks the best one the server offers."""

    AUTO = "auto"
    NONE = "none"  # never authenticate, even with a user name stored (open relays, sinks)
    PLAIN = "plain"
    LOGIN = "login"
    CRAM_MD5 = "cram-md5"
    XOAUTH2 = "xoauth2"
    NTLM = "ntlm"


class ProviderStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    ERROR = "error"
    PENDING = "pending"


class QuotaWindow(StrEnum):
    PER_SECOND = "per_second"
    PER_MINUTE = "per_minute"
    PER_HOUR = "per_hour"
    PER_DAY = "per_day"


class Permission(StrEnum):
    PROVIDERS_READ = "providers:read"
    PROVIDERS_WRITE = "providers:write"
    KEYS_READ = "keys:read"
    MESSAGES_SEND = "messages:send"
    MESSAGES_READ = "messages:read"
    SMTP_USERS_READ = "smtp_users:read"
    SMTP_USERS_WRITE = "smtp_users:write"
    IP_AUTH_READ = "ip_auth:read"
    IP_AUTH_WRITE = "ip_auth:write"
    TEMPLATES_READ = "templates:read"
    TEMPLATES_WRITE = "templates:write"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    SUPPRESSIONS_READ = "suppressions:read"
    SUPPRESSIONS_WRITE = "suppressions:write"
    EVENTS_READ = "events:read"  # the events feed and activity search
    TRACKING_READ = "tracking:read"  # the account's open/click/unsubscribe defaults
    TRACKING_WRITE = "tracking:write"


class MessageStatus(StrEnum):
    """Where a message is in its life. The queue is every row in QUEUED or DEFERRED."""

    SCHEDULED = "scheduled"  # send_at in the future (still in the queue, not yet due)
    QUEUED = "queued"
    DEFERRED = "deferred"  # some recipient got a soft failure; retried later
    DELIVERED = "delivered"  # every recipient accepted
    PARTIAL = "partial"  # finished: some recipients delivered, others bounced/failed/rejected
    BOUNCED = "bounced"  # finished: no recipient delivered, at least one hard bounce
    FAILED = "failed"  # finished: expired while deferred
    REJECTED = "rejected"  # every recipient refused at accept time (suppressed)
    CANCELLED = "cancelled"


class RecipientKind(StrEnum):
    TO = "to"
    CC = "cc"
    BCC = "bcc"


class RecipientStatus(StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    REJECTED = "rejected"  # suppressed at accept time: never sent
    FAILED = "failed"  # gave up after the retry window
    CANCELLED = "cancelled"


class EventType(StrEnum):
    """Closed vocabulary of what can happen to a message or a recipient."""

    PROCESSED = "processed"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCE = "bounce"
    REJECT = "reject"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SPAM = "spam"
    UNSUBSCRIBE = "unsubscribe"
    OPEN = "open"
    CLICK = "click"


class Outcome(StrEnum):
    """What one delivery attempt did for one recipient."""

    DELIVERED = "delivered"  # 2xx
    SOFT = "soft"  # 4xx, timeout, disconnect: retry later
    HARD = "hard"  # 5xx: a bounce, never retried


@dataclass(frozen=True)
class QuotaRange:
    """A sending quota: ``max`` is the cap; ``min`` the guaranteed floor (equal for a fixed cap)."""

    min: int
    max: int


@dataclass(frozen=True)
class SendingRateLimit:
    """At most ``max_messages`` messages in any ``period_seconds`` (an SMTP user's own limit)."""

    max_messages: int
    period_seconds: int


@dataclass(frozen=True)
class Mailbox:
    """An address with an optional display name (``"Name" <address>``)."""

    address: str
    name: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A file carried by a message. With ``content_id`` it is an inline part (``cid:``)."""

    filename: str
    content: bytes
    mimetype: str = "application/octet-stream"
    content_id: str | None = None

    @property
    def inline(self) -> bool:
        return self.content_id is not None


@dataclass(frozen=True)
class MessageDraft:
    """A message as an API describes it, before it becomes MIME. Bcc never becomes a header."""

    sender: Mailbox
    to: tuple[Mailbox, ...] = ()
    cc: tuple[Mailbox, ...] = ()
    bcc: tuple[Mailbox, ...] = ()
    reply_to: tuple[Mailbox, ...] = ()
    subject: str = ""
    text: str | None = None
    html: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[Attachment, ...] = ()

    @property
    def recipients(self) -> tuple[Mailbox, ...]:
        return self.to + self.cc + self.bcc


@dataclass(frozen=True)
class SmtpEndpoint:
    """Everything needed to open an authenticated session with an upstream SMTP server.

    ``password`` is plaintext: it lives only in memory for the length of one connection.
    """

    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = None
    auth_method: AuthMethod = AuthMethod.AUTO
    verify_tls: bool = True

    @property
    def login(self) -> str | None:
        """The user name to AUTH with, or None when this endpoint does not authenticate."""
        return None if self.auth_method is AuthMethod.NONE else self.username

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return (
            f"SmtpEndpoint(host={self.host!r}, port={self.port}, security={self.security.value}, "
            f"username={self.username!r}, auth_method={self.auth_method.value})"
        )
