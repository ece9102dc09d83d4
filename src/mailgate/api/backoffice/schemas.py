"""Back Office ``/api/v2/mail/providers`` request and response models (its camelCase names)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from mailgate.api.fields import EmailAddress, Hostname, RequiredText, StrictModel
from mailgate.i18n import N_

Driver = Literal["smtp"]
Encryption = Literal["tls", "ssl"]
Password = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _flag(value: Any) -> Any:
    """``true``/``false`` or ``1``/``0`` (the document uses both); nothing else."""
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise ValueError(N_("Must be true, false, 1 or 0."))


Flag = Annotated[bool, BeforeValidator(_flag)]


class ProviderCreate(StrictModel):
    driver: Driver
    host: Hostname
    port: Port
    username: RequiredText
    password: Password
    sendFrom: EmailAddress
    sendFromName: RequiredText
    encryption: Encryption
    isEnabled: Flag
    caption: RequiredText | None = None


class ProviderUpdate(StrictModel):
    """Every field optional; only the fields sent change (none is nullable)."""

    caption: RequiredText | None = None
    driver: Driver | None = None
    host: Hostname | None = None
    port: Port | None = None
    username: RequiredText | None = None
    password: Password | None = None
    sendFrom: EmailAddress | None = None
    sendFromName: RequiredText | None = None
    encryption: Encryption | None = None
    isEnabled: Flag | None = None


class SmtpProvider(BaseModel):
    """An SMTP Service Provider object. ``hasPassword`` stands in for the password."""

    id: int
    caption: str
    driver: str
    host: str
    port: int
    username: str | None
    sendFrom: str | None
    sendFromName: str | None
    encryption: Encryption | None
    isEnabled: bool
    hasPassword: bool
    status: Literal["active", "inactive", "error", "pending"]
    statusReason: str | None
    lastTestedAt: str | None
    createdAt: str
    updatedAt: str


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = None
    retryAfter: int | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody
