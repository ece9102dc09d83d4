"""SMTP2GO ``/v3`` request and response models (SMTP2GO's field names)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from mailgate.api.fields import StrictModel
from mailgate.api.messages_common import (
    MAX_RECIPIENTS_PER_FIELD,
    Filename,
    HeaderValue,
    Subject,
    at_most,
)
from mailgate.i18n import N_

ApiKey = Annotated[str, StringConstraints(max_length=255)]
AddressText = Annotated[str, StringConstraints(max_length=998)]
AddressList = Annotated[
    list[AddressText],
    at_most(MAX_RECIPIENTS_PER_FIELD, N_("Must list at most 100 addresses.")),
]
ShortText = Annotated[str, StringConstraints(max_length=255)]
Timestamp = Annotated[str, StringConstraints(max_length=64)]


class Smtp2goRequest(StrictModel):
    """Every ``/v3`` body may carry the key itself (the official clients put it there)."""

    api_key: ApiKey | None = None


class ViewPermissionsRequest(Smtp2goRequest):
    """``POST /api_keys/permissions`` takes no parameters."""


class FieldValidationError(BaseModel):
    fieldname: str
    message: str


class FieldValidationErrors(FieldValidationError):
    """SMTP2GO names one field (``fieldname``, ``message``); ``errors`` lists every one."""

    errors: list[FieldValidationError]


class ErrorData(BaseModel):
    error: str
    error_code: str
    field_validation_errors: FieldValidationErrors | None = None


class ErrorEnvelope(BaseModel):
    request_id: str
    data: ErrorData


class PermissionsEnvelope(BaseModel):
    """``data`` lists the endpoints this key may call, as SMTP2GO does."""

    request_id: str
    data: list[str]


# --- /email/... -----------------------------------------------------------------------------------


class CustomHeader(StrictModel):
    header: Annotated[str, StringConstraints(max_length=255)]  # the MIME builder checks it
    value: HeaderValue


class FileIn(StrictModel):
    """An attachment: ``fileblob`` (base64). ``url`` is in SMTP2GO's reference but not fetched."""

    filename: Filename
    # The Node client sends ``false`` when it cannot tell the type (mime-types' lookup).
    mimetype: ShortText | Literal[False] | None = None
    fileblob: str | None = None
    url: str | None = None


class InlineIn(FileIn):
    """An inline image; without ``cid`` the ``filename`` is its content id (the Node client)."""

    cid: ShortText | None = None


class SendOptions(Smtp2goRequest):
    schedule: Timestamp | None = Field(
        default=None, description="Send later: a timestamp with a zone (UTC without one)."
    )
    fastaccept: bool | None = Field(
        default=None, description="Accepted and ignored: every message is accepted first."
    )


class SendEmailRequest(SendOptions):
    sender: AddressText | None = None
    to: AddressList | None = None
    cc: AddressList | None = None
    bcc: AddressList | None = None
    subject: Subject | None = None
    text_body: str | None = None
    html_body: str | None = None
    reply_to: AddressText | None = None
    custom_headers: (
        Annotated[list[CustomHeader], at_most(50, N_("Must list at most 50 headers."))] | None
    ) = None
    attachments: (
        Annotated[list[FileIn], at_most(100, N_("Must list at most 100 attachments."))] | None
    ) = None
    inlines: (
        Annotated[list[InlineIn], at_most(100, N_("Must list at most 100 attachments."))] | None
    ) = None
    template_id: ShortText | None = None
    template_data: dict[str, Any] | str | None = None
    subaccount_id: ShortText | None = None


class SendMimeRequest(SendOptions):
    mime_email: str | None = Field(
        default=None, description="The MIME message as text, or base64-encoded."
    )


class ScheduledSearchRequest(Smtp2goRequest):
    schedule_id: ShortText | None = None
    search_subject: ShortText | None = None
    search_sender: ShortText | None = None
    search_recipient: ShortText | None = None
    limit: int | None = Field(default=None, ge=1, le=1000)
    page: int | None = Field(default=None, ge=1, le=100000)


class RemoveScheduledRequest(Smtp2goRequest):
    schedule_id: ShortText | None = None
    email_id: ShortText | None = None


class EmailSearchRequest(Smtp2goRequest):
    start_date: Timestamp | None = None
    end_date: Timestamp | None = None
    search_email_id: ShortText | None = None
    search_subject: ShortText | None = None
    search_sender: ShortText | None = None
    search_recipient: ShortText | None = None
    limit: int | None = Field(default=None, ge=1, le=1000)
    continue_token: ShortText | None = None


class SendResult(BaseModel):
    succeeded: int
    failed: int
    failures: list[str]
    email_id: str
    schedule_id: str | None = None


class SendEnvelope(BaseModel):
    request_id: str
    data: SendResult


class ScheduledEmail(BaseModel):
    schedule_id: str
    email_id: str
    schedule: str | None
    sender: str
    subject: str
    recipients: str
    created_at: str


class ScheduledEnvelope(BaseModel):
    request_id: str
    data: list[ScheduledEmail]


class ScheduledRemoved(BaseModel):
    succeeded: int
    schedule_id: str
    email_id: str


class ScheduledRemovedEnvelope(BaseModel):
    request_id: str
    data: ScheduledRemoved


class EmailFound(BaseModel):
    email_id: str
    email_ts: str
    sender: str
    subject: str
    recipients: list[str]
    status: str
    schedule: str | None
    size: int


class EmailSearchResult(BaseModel):
    emails: list[EmailFound]
    count: int
    continue_token: str | None


class EmailSearchEnvelope(BaseModel):
    request_id: str
    data: EmailSearchResult
