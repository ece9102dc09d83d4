"""Closed vocabularies and value types shared by services, delivery and every surface.

Vendor words never appear here: each surface's ``mapping.py`` translates to these.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "AuthMethod",
    "Permission",
    "ProviderStatus",
    "QuotaRange",
    "QuotaWindow",
    "Security",
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


@dataclass(frozen=True)
class QuotaRange:
    """A sending quota: ``max`` is the cap; ``min`` the guaranteed floor (equal for a fixed cap)."""

    min: int
    max: int


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

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return (
            f"SmtpEndpoint(host={self.host!r}, port={self.port}, security={self.security.value}, "
            f"username={self.username!r}, auth_method={self.auth_method.value})"
        )
