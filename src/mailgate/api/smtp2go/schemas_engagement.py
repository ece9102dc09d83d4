"""SMTP2GO ``/v3`` models of the suppression list, activity search and the email archive
(SMTP2GO's field names; the seed document's ``email``/``domain`` are accepted too)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from mailgate.api.smtp2go.schemas import ShortText, Smtp2goRequest, Timestamp

Value = Annotated[str, StringConstraints(max_length=320)]
Description = Annotated[str, StringConstraints(max_length=1000)]
ShortList = Annotated[list[ShortText], Field(max_length=100)]

# --- /suppression/... ----------------------------------------------------------------------


class SuppressionAddRequest(Smtp2goRequest):
    email_address: Value | None = None
    email: Value | None = None  # the seed document's name for an address
    domain: Value | None = None  # ... and for a whole domain
    block_description: Description | None = None
    subaccount_id: ShortText | None = None


class SuppressionViewRequest(Smtp2goRequest):
    email_address: Value | None = None
    suppression_type: ShortText | None = None
    suppression_types: ShortList | None = None
    wildcard: ShortText | None = None
    recipient: ShortText | None = None
    start_date: Timestamp | None = None
    end_date: Timestamp | None = None
    sort: ShortText | None = None
    continue_token: ShortText | None = None
    subaccount_id: ShortText | None = None


class SuppressionRemoveRequest(Smtp2goRequest):
    email_address: Value | None = None
    email: Value | None = None
    domain: Value | None = None
    reasons: ShortList | None = None
    subaccount_id: ShortText | None = None


class SuppressionAdded(BaseModel):
    added: bool
    block_description: str
    email_address: str


class SuppressionAddedEnvelope(BaseModel):
    request_id: str
    data: SuppressionAdded


class SuppressionResult(BaseModel):
    block_description: str
    complaint: str
    email_address: str
    reason: str
    subject: str | None
    timestamp: str


class SuppressionView(BaseModel):
    continue_token: str | None
    results: list[SuppressionResult]
    total_results: int


class SuppressionViewEnvelope(BaseModel):
    request_id: str
    data: SuppressionView


class SuppressionRemoved(BaseModel):
    email_address: str
    reason: str
    removed: bool


class SuppressionRemovedList(BaseModel):
    suppressions: list[SuppressionRemoved]


class SuppressionRemovedEnvelope(BaseModel):
    request_id: str
    data: SuppressionRemovedList


# --- /activity/search ------------------------------------------------------------------------


class ActivitySearchRequest(Smtp2goRequest):
    start_date: Timestamp | None = None
    end_date: Timestamp | None = None
    search: ShortText | None = None
    search_email_id: ShortText | None = None
    search_subject: ShortText | None = None
    search_sender: ShortText | None = None
    search_recipient: ShortText | None = None
    search_usernames: ShortList | None = None
    subaccounts: ShortList | None = None
    tags: ShortList | None = Field(default=None, description="Mailgate: messages with any tag.")
    limit: int | None = Field(default=None, ge=1, le=1000)
    continue_token: ShortText | None = None
    only_latest: bool | None = None
    only_latest_by_sent: bool | None = None
    event_types: ShortList | None = None
    include_headers: bool | None = None
    custom_headers: ShortList | None = None
    region: ShortText | None = None


class ActivityEvent(BaseModel):
    date: str
    event: str
    email_id: str | None
    recipient: str | None
    recipients: list[str]
    sender: str | None
    sender_full: str | None
    to: str
    cc: str
    bcc: str
    subject: str | None
    smtp_response: str
    reason: str
    host: str
    username: str
    byte_size: int | None


class ActivityResult(BaseModel):
    events: list[ActivityEvent]
    total_events: int
    continue_token: str | None


class ActivityEnvelope(BaseModel):
    request_id: str
    data: ActivityResult


# --- /archive/... ------------------------------------------------------------------------------


class ArchiveSearchRequest(Smtp2goRequest):
    start_date: Timestamp | None = None
    end_date: Timestamp | None = None
    limit: int | None = Field(default=None, ge=1, le=5000)
    username: ShortText | None = None
    recipient: Value | None = None
    sender: ShortText | None = None
    envelope_from: Value | None = None
    subject: ShortText | None = None
    headers: ShortText | None = None
    continue_token: ShortText | None = None


class ArchiveViewRequest(Smtp2goRequest):
    email_id: ShortText | None = None


class ArchivedEmail(BaseModel):
    attachment_count: int
    attachments: list[dict[str, Any]]
    byte_count: int
    email_id: str
    envelope_from: str
    headers: str
    recipient: str
    sender: str
    sent: str
    subject: str
    to: str
    url: str
    username: str


class ArchivedEmailEnvelope(BaseModel):
    request_id: str
    data: ArchivedEmail


class ArchiveList(BaseModel):
    email_count: int
    emails: list[ArchivedEmail]
    continue_token: str | None


class ArchiveListEnvelope(BaseModel):
    request_id: str
    data: ArchiveList
