"""Native ``/api/v1/messages`` request and response models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from mailgate.api.fields import EmailAddress, HeaderText, StrictModel
from mailgate.api.messages_common import (
    MAX_RECIPIENTS_PER_FIELD,
    Filename,
    HeaderValue,
    MetaValue,
    Subject,
    Tag,
    at_most,
    check_meta_keys,
)
from mailgate.api.native.schemas import Meta, Pagination
from mailgate.i18n import N_

MAX_BATCH: int = 500

ProviderRef = Annotated[str, StringConstraints(min_length=1, max_length=64)] | int
Instant = Annotated[str, StringConstraints(min_length=1, max_length=64)]
TemplateRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class MailboxIn(StrictModel):
    email: EmailAddress
    name: HeaderText | None = None


Recipients = Annotated[
    list[MailboxIn],
    at_most(MAX_RECIPIENTS_PER_FIELD, N_("Must list at most 100 addresses.")),
]


class AttachmentIn(StrictModel):
    filename: Filename
    content: str = Field(description="The file, base64-encoded.")
    content_type: Annotated[str, StringConstraints(max_length=255)] | None = None
    content_id: Annotated[str, StringConstraints(max_length=255)] | None = Field(
        default=None, description="Set it to make the part inline, shown as cid:<content_id>."
    )


class MessageOptions(StrictModel):
    """What the caller says about a message besides its content."""

    tags: Annotated[list[Tag], at_most(10, N_("Must list at most 10 tags."))] | None = None
    metadata: (
        Annotated[
            dict[str, MetaValue],
            at_most(50, N_("Must have at most 50 keys.")),
            AfterValidator(check_meta_keys),
        ]
        | None
    ) = None
    provider_id: ProviderRef | None = Field(
        default=None, description="Send through this provider (dprov_... or numeric id)."
    )
    send_at: Instant | None = Field(
        default=None, description="ISO 8601 with a time zone; past means now; at most 30 days."
    )
    track_opens: bool | None = Field(
        default=None, description="Add an open pixel to the HTML; null: the account's default."
    )
    track_clicks: bool | None = Field(
        default=None, description="Send HTML links through a click redirect; null: default."
    )
    transactional: bool | None = Field(
        default=None,
        description="Transactional-only: no List-Unsubscribe headers; null: the account's "
        "default (see /api/v1/tracking).",
    )


class MessageCreate(MessageOptions):
    from_: MailboxIn = Field(alias="from")
    to: Recipients | None = None
    cc: Recipients | None = None
    bcc: Recipients | None = None
    reply_to: MailboxIn | None = None
    subject: Subject | None = Field(default=None, description="Required without template_id.")
    text: str | None = None
    html: str | None = None
    headers: (
        Annotated[dict[str, HeaderValue], at_most(50, N_("Must have at most 50 keys."))] | None
    ) = Field(default=None, description="Header name -> value; the MIME builder checks names.")
    attachments: (
        Annotated[list[AttachmentIn], at_most(100, N_("Must list at most 100 attachments."))] | None
    ) = None
    template_id: TemplateRef | None = Field(
        default=None,
        description="Render this template (/api/v1/templates) with template_data; it fills "
        "the subject, html and text the request leaves out.",
    )
    template_data: dict[str, Any] | None = Field(
        default=None, description="The template's variables; missing ones render empty."
    )


class MessageBatchCreate(StrictModel):
    messages: Annotated[
        list[MessageCreate],
        Field(min_length=1),
        at_most(MAX_BATCH, N_("Must list at most 500 messages.")),
    ]


class RawMessageCreate(MessageOptions):
    raw: str = Field(description="The whole MIME message, base64-encoded.")


# --- responses ----------------------------------------------------------------------------------


class MailboxOut(BaseModel):
    email: str
    name: str | None


class RecipientOut(BaseModel):
    email: str
    type: Literal["to", "cc", "bcc"]
    status: str
    attempts: int
    last_code: int | None
    last_reply: str | None
    updated_at: str | None


class EventOut(BaseModel):
    type: str
    recipient: str | None
    smtp_code: int | None
    detail: str | None
    provider_id: str | None
    created_at: str


class MessageListItem(BaseModel):
    id: str
    status: str
    from_: MailboxOut = Field(alias="from")
    subject: str
    message_id: str
    tags: list[str]
    metadata: dict[str, str]
    provider_id: str | None
    last_provider_id: str | None
    attempts: int
    size: int
    send_at: str | None
    created_at: str
    updated_at: str
    content_purged_at: str | None = Field(
        default=None, description="When the retention period removed the MIME, if it has."
    )


class MessageItem(MessageListItem):
    recipients: list[RecipientOut]
    rejected: list[str]


class MessageDetailItem(MessageItem):
    events: list[EventOut]


class MessageEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: MessageDetailItem


class MessageCreatedEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: MessageItem


class MessageBatchEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: list[MessageItem]


class MessageListEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: list[MessageListItem]
    pagination: Pagination
