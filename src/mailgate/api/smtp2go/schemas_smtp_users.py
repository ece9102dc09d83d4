"""SMTP2GO ``/smtp/...`` (also ``/users/smtp/...``) and ``/ip_auth/...`` bodies, in SMTP2GO's
field names. ``null`` means "not given" throughout, as the official clients send every key."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from mailgate.api.smtp2go.schemas import Smtp2goRequest
from mailgate.services.smtp_users import MAX_ALLOWED_SENDERS, MAX_RATE_LIMIT

ShortText = Annotated[str, StringConstraints(max_length=255)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
Period = Annotated[str, StringConstraints(max_length=64)]
SenderText = Annotated[str, StringConstraints(max_length=320)]


class SendingOptions(Smtp2goRequest):
    """SMTP2GO's per-sender options that Mailgate does not offer: accepted when left off."""

    ip_pool: int | None = None
    feedback_enabled: bool | None = None
    feedback_domain: ShortText | None = None
    feedback_html: LongText | None = None
    feedback_text: LongText | None = None
    open_tracking_enabled: bool | None = None
    click_tracking_enabled: bool | None = None
    archive_enabled: bool | None = None
    audit_email: ShortText | None = None
    bounce_notifications: ShortText | None = None
    subaccount_id: ShortText | None = None


class RateLimitFields(SendingOptions):
    custom_ratelimit: bool | None = Field(
        default=None, description="True: the user's own limit (value per period) applies."
    )
    custom_ratelimit_value: int | None = Field(default=None, ge=0, le=MAX_RATE_LIMIT)
    custom_ratelimit_period: Period | None = Field(
        default=None, description='"1 hour", "2 days", "1 week", "1 month" or "0:30:00".'
    )
    status: Literal["allowed", "blocked", "sandbox"] | None = None


class SmtpUserRequest(RateLimitFields):
    """``/add``, ``/edit`` and ``/patch``: ``username`` names the user."""

    username: ShortText | None = None
    email_password: ShortText | None = Field(
        default=None, description='Omitted on add, or "": a password is generated (answered once).'
    )
    description: ShortText | None = None
    allowed_senders: Annotated[list[SenderText], Field(max_length=MAX_ALLOWED_SENDERS)] | None = (
        Field(
            default=None,
            description="Mailgate's own: addresses and whole domains it may send as; [] for any.",
        )
    )


class SmtpUserLookup(Smtp2goRequest):
    """``/view`` (``username`` optional) and ``/remove`` (required)."""

    username: ShortText | None = None
    subaccount_id: ShortText | None = None


class IpAuthPatchRequest(RateLimitFields):
    ip_address: ShortText | None = Field(
        default=None, description="An IP address, or a network in CIDR notation."
    )
    description: ShortText | None = None


class IpAuthLookup(Smtp2goRequest):
    """``/ip_auth/view`` (``ip_address`` optional) and ``/ip_auth/remove`` (required)."""

    ip_address: ShortText | None = None
    subaccount_id: ShortText | None = None


class OptionsOut(BaseModel):
    sending_allowed: bool
    status: str
    description: str
    custom_ratelimit: bool
    custom_ratelimit_value: int | None
    custom_ratelimit_period: str
    feedback_enabled: bool
    feedback_domain: str
    feedback_html: str
    feedback_text: str
    archive_enabled: bool
    open_tracking_enabled: bool
    click_tracking_enabled: bool
    audit_email: str | None
    bounce_notifications: str


class SmtpUserOut(OptionsOut):
    username: str
    email_password: str | None = Field(
        description="The password only when this request generated it; null otherwise."
    )
    allowed_senders: list[str]


class SmtpUserResults(BaseModel):
    results: list[SmtpUserOut]


class SmtpUserViewResults(SmtpUserResults):
    default_ratelimit_value: int
    default_ratelimit_period: str


class SmtpUserResultsEnvelope(BaseModel):
    request_id: str
    data: SmtpUserResults


class SmtpUserViewEnvelope(BaseModel):
    request_id: str
    data: SmtpUserViewResults


class SmtpUserPatchedEnvelope(BaseModel):
    """SMTP2GO answers a PATCH with the list itself as ``data``."""

    request_id: str
    data: list[SmtpUserOut]


class IpAuthOut(OptionsOut):
    ip_address: str


class IpAuthResults(BaseModel):
    results: list[IpAuthOut]


class IpAuthViewResults(IpAuthResults):
    default_ratelimit_value: int
    default_ratelimit_period: str


class IpAuthResultsEnvelope(BaseModel):
    request_id: str
    data: IpAuthResults


class IpAuthViewEnvelope(BaseModel):
    request_id: str
    data: IpAuthViewResults


class IpAuthPatchedEnvelope(BaseModel):
    request_id: str
    data: list[IpAuthOut]
