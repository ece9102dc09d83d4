"""Native ``/api/v1/smtp-users`` and ``/api/v1/ip-auth`` request and response models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from mailgate.api.fields import HeaderText, StrictModel
from mailgate.api.native.schemas import Meta, Pagination
from mailgate.services.smtp_users import (
    MAX_ALLOWED_SENDERS,
    MAX_PERIOD_SECONDS,
    MAX_RATE_LIMIT,
    PASSWORD_LENGTH,
    USERNAME_LENGTH,
)
from mailgate.validation import check_network, check_sender_rule

Username = Annotated[
    str, StringConstraints(min_length=USERNAME_LENGTH[0], max_length=USERNAME_LENGTH[1])
]
Password = Annotated[
    str, StringConstraints(min_length=PASSWORD_LENGTH[0], max_length=PASSWORD_LENGTH[1])
]
SenderRule = Annotated[
    str, StringConstraints(min_length=1, max_length=320), AfterValidator(check_sender_rule)
]
AllowedSenders = Annotated[list[SenderRule], Field(max_length=MAX_ALLOWED_SENDERS)]
Network = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(check_network)
]


class RateLimitIn(StrictModel):
    max_messages: int = Field(ge=1, le=MAX_RATE_LIMIT)
    period_seconds: int = Field(ge=1, le=MAX_PERIOD_SECONDS)


class SmtpUserCreate(StrictModel):
    username: Username = Field(description="The SMTP AUTH user name, unique in this Mailgate.")
    password: Password | None = Field(
        default=None, description="Omit it to have one generated (answered once)."
    )
    description: HeaderText | None = None
    is_active: bool = True
    allowed_senders: AllowedSenders | None = Field(
        default=None, description="Addresses and whole domains it may send as; empty: any."
    )
    rate_limit: RateLimitIn | None = Field(
        default=None, description="Its own limit; null: none but the account's."
    )


class SmtpUserUpdate(StrictModel):
    username: Username | None = None
    password: Password | None = None
    generate_password: bool | None = Field(
        default=None, description="True: replace the password with a generated one (answered once)."
    )
    description: HeaderText | None = None
    is_active: bool | None = None
    allowed_senders: AllowedSenders | None = None
    rate_limit: RateLimitIn | None = None


class RateLimitOut(BaseModel):
    max_messages: int
    period_seconds: int


class SmtpUserItem(BaseModel):
    id: str
    username: str
    description: str
    is_active: bool
    allowed_senders: list[str]
    rate_limit: RateLimitOut | None
    has_password: bool
    created_at: str
    updated_at: str
    last_used_at: str | None


class SmtpUserWritten(SmtpUserItem):
    generated_password: str | None = Field(
        default=None, description="Only when this request generated one: it is never shown again."
    )


class SmtpUserEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: SmtpUserItem


class SmtpUserWrittenEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: SmtpUserWritten


class SmtpUserListEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: list[SmtpUserItem]
    pagination: Pagination


class Deleted(BaseModel):
    deleted: bool
    id: str


class DeletedEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: Deleted


class NetworkCreate(StrictModel):
    network: Network = Field(description="An IP address or a network in CIDR notation.")
    description: HeaderText | None = None


class NetworkUpdate(StrictModel):
    description: HeaderText | None = None


class NetworkItem(BaseModel):
    id: str
    network: str
    description: str
    created_at: str


class NetworkEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: NetworkItem


class NetworkListEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: list[NetworkItem]
    pagination: Pagination
