"""Native ``/api/v1`` request and response models (Sendmux's field names)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from mailgate.api.fields import EmailAddress, HeaderText, Hostname, RequiredText, StrictModel

SmtpProtocol = Literal["tls", "ssl", "none", "starttls"]
SmtpAuthMethod = Literal["auto", "none", "plain", "login", "cram-md5", "xoauth2", "ntlm"]
VariableName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
VariableValue = Annotated[str, StringConstraints(max_length=4096)]


class QuotaRangeIn(StrictModel):
    min: int = Field(gt=0)
    max: int = Field(gt=0)


QuotaValue = Annotated[int, Field(gt=0)] | QuotaRangeIn | None


class QuotasIn(StrictModel):
    per_second: QuotaValue = None
    per_minute: QuotaValue = None
    per_hour: QuotaValue = None
    per_day: QuotaValue = None


class ProviderCreate(StrictModel):
    name: RequiredText
    smtp_host: Hostname
    smtp_port: int = Field(ge=1, le=65535)
    smtp_protocol: SmtpProtocol
    smtp_username: RequiredText
    smtp_password: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    smtp_auth_method: SmtpAuthMethod = "auto"
    smtp_tls_verify: bool = True
    from_email: EmailAddress | None = None
    from_name: HeaderText | None = None
    reply_to_email: EmailAddress | None = None
    reply_to_name: HeaderText | None = None
    oauth_email: EmailAddress | None = None
    oauth_refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = (
        None
    )
    quotas: QuotasIn | None = None
    percentage: int = Field(default=100, ge=0, le=100)
    tracking_domain: Hostname | None = None
    variables: dict[VariableName, VariableValue] | None = None
    is_default: bool = False


class ProviderUpdate(StrictModel):
    name: RequiredText | None = None
    smtp_host: Hostname | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_protocol: SmtpProtocol | None = None
    smtp_username: RequiredText | None = None
    smtp_password: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    smtp_auth_method: SmtpAuthMethod | None = None
    smtp_tls_verify: bool | None = None
    from_email: EmailAddress | None = None
    from_name: HeaderText | None = None
    reply_to_email: EmailAddress | None = None
    reply_to_name: HeaderText | None = None
    oauth_email: EmailAddress | None = None
    oauth_refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = (
        None
    )
    quotas: QuotasIn | None = None
    percentage: int | None = Field(default=None, ge=0, le=100)
    tracking_domain: Hostname | None = None
    variables: dict[VariableName, VariableValue] | None = None
    is_default: bool | None = None


class QuotaRangeOut(BaseModel):
    min: int
    max: int


class QuotasOut(BaseModel):
    per_second: QuotaRangeOut | None
    per_minute: QuotaRangeOut | None
    per_hour: QuotaRangeOut | None
    per_day: QuotaRangeOut | None


class AllowedActions(BaseModel):
    update: bool
    delete: bool
    activate: bool
    deactivate: bool
    test: bool
    update_variables: bool


class ProviderListItem(BaseModel):
    id: str
    name: str
    type: str
    status: Literal["active", "inactive", "error", "pending"]
    status_reason: str | None
    is_active: bool
    is_shared: bool
    is_editable: bool
    is_default: bool
    allowed_actions: AllowedActions
    smtp_host: str | None
    smtp_port: int | None
    smtp_protocol: str | None
    smtp_username: str | None
    smtp_auth_method: str
    smtp_tls_verify: bool
    has_smtp_password: bool
    from_email: str | None
    from_name: str | None
    reply_to_email: str | None
    reply_to_name: str | None
    oauth_email: str | None
    has_refresh_token: bool
    quotas: QuotasOut
    percentage: int | None
    tracking_domain: str | None
    created_at: str
    updated_at: str
    last_tested_at: str | None
    last_used_at: str | None


class ProviderItem(ProviderListItem):
    variables: dict[str, str]


class Meta(BaseModel):
    request_id: str


class Pagination(BaseModel):
    has_more: bool
    next_cursor: str | None


class ProviderEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: ProviderItem


class ProviderListEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: list[ProviderListItem]
    pagination: Pagination


class ProviderDeleted(BaseModel):
    deleted: bool
    id: str


class ProviderDeletedEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: ProviderDeleted


class ProviderTestResult(BaseModel):
    success: bool
    message: str
    latency_ms: int
    tested_at: str


class ProviderTestEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: ProviderTestResult


class ErrorDetail(BaseModel):
    field: str
    code: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    retryable: bool
    param: str | None = None
    errors: list[ErrorDetail] | None = None


class ErrorEnvelope(BaseModel):
    ok: Literal[False]
    meta: Meta
    error: ErrorBody
