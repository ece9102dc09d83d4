"""DocSpace ``/api/2.0/smtpsettings/smtp`` request and response models (DocSpace's names)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from mailgate.api.fields import EmailAddress, HeaderText, Hostname, StrictModel

Password = Annotated[str, StringConstraints(max_length=500)]


class SmtpSettingsIn(StrictModel):
    """``SmtpSettingsDto`` as a save request. ``host`` and ``senderAddress`` are required
    (checked in mapping so a missing field and a ``null`` read the same)."""

    host: Hostname | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    senderAddress: EmailAddress | None = None
    senderDisplayName: HeaderText | None = None
    credentialsUserName: HeaderText | None = None
    credentialsUserPassword: Password | None = None
    enableSSL: bool | None = None
    enableAuth: bool | None = None
    useNtlm: bool | None = None
    isDefaultSettings: bool | None = None  # accepted, ignored (derived)


class SmtpSettingsOut(BaseModel):
    host: str
    port: int
    senderAddress: str
    senderDisplayName: str
    credentialsUserName: str
    credentialsUserPassword: Literal[""]  # never the password
    enableSSL: bool
    enableAuth: bool
    useNtlm: bool
    isDefaultSettings: bool


class SmtpOperationStatusOut(BaseModel):
    id: str
    completed: bool
    status: str
    error: str
    percents: int


class Link(BaseModel):
    href: str
    action: str


class SmtpSettingsWrapper(BaseModel):
    response: SmtpSettingsOut
    count: int
    links: list[Link]
    status: Literal[0]
    statusCode: int


class SmtpOperationStatusWrapper(BaseModel):
    response: SmtpOperationStatusOut
    count: int
    links: list[Link]
    status: Literal[0]
    statusCode: int


class ErrorIssue(BaseModel):
    field: str
    code: str
    message: str


class ErrorDetail(BaseModel):
    message: str
    type: str
    errors: list[ErrorIssue] | None = None


class ErrorWrapper(BaseModel):
    error: ErrorDetail
    links: list[Link]
    status: Literal[1]
    statusCode: int
