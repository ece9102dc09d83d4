"""Native message shapes <-> domain: drafts from request bodies, message objects out."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from mailgate.api import fields
from mailgate.api.fields import iso
from mailgate.api.messages_common import (
    decode_base64,
    guess_mimetype,
    mailbox_of_header,
    parse_instant,
    schedule,
)
from mailgate.api.native.schemas_messages import MailboxIn, MessageCreate, MessageOptions
from mailgate.config import Settings
from mailgate.domain import (
    Attachment,
    Mailbox,
    MessageDraft,
    MessageStatus,
    RecipientKind,
    RecipientStatus,
)
from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_, translate_stored
from mailgate.services.messages import (
    Accepted,
    Submission,
    submission_from_draft,
    submission_from_raw,
)
from mailgate.services.template_rendering import RenderedTemplate
from mailgate.services.templates import fill_from_template
from mailgate.services.tracking import TrackingChoice
from mailgate.store.models import Event, Message, MessageRecipient

__all__ = [
    "accepted_out",
    "decode_cursor",
    "decode_raw",
    "encode_cursor",
    "message_out",
    "raw_submission",
    "request_field",
    "status_filter",
    "submission",
]

# MIME builder field -> native request field (``to.0.address`` -> ``to.0.email``, ...).
_RENAMES: Final = (
    (re.compile(r"^(from|(?:to|cc|bcc)\.\d+)\.address$"), r"\1.email"),
    (re.compile(r"^reply_to\.0\.address$"), "reply_to.email"),
    (re.compile(r"^reply_to\.0\.name$"), "reply_to.name"),
    (re.compile(r"^(attachments\.\d+)\.mimetype$"), r"\1.content_type"),
    (re.compile(r"^message$"), ""),
)
_RAW_RENAMES: Final = {"mime": "raw", "message": "raw"}


def request_field(name: str) -> str:
    """A field named by the MIME builder or the service, in the request's words."""
    for pattern, replacement in _RENAMES:
        name = pattern.sub(replacement, name)
    return name


def _mailbox(box: MailboxIn | None) -> Mailbox | None:
    return None if box is None else Mailbox(address=box.email, name=box.name or None)


def _mailboxes(boxes: Sequence[MailboxIn] | None) -> tuple[Mailbox, ...]:
    return tuple(Mailbox(address=b.email, name=b.name or None) for b in boxes or ())


def draft(body: MessageCreate, template: RenderedTemplate | None = None) -> MessageDraft:
    """The request as a domain draft: attachments decoded, the required parts there, and
    what it leaves out of subject, html and text filled from its rendered ``template``."""
    issues: list[Issue] = []
    subject, html, text = fill_from_template(body.subject, body.html, body.text, template)
    if not (body.to or body.cc or body.bcc):
        issues.append(Issue("to", N_("At least one recipient is required."), "required"))
    if text is None and html is None:
        issues.append(Issue("text", N_("Give text, html or both."), "required"))
    if subject is None:
        issues.append(Issue("subject", N_("This field is required."), "required"))
    if body.template_data is not None and body.template_id is None:
        issues.append(Issue("template_data", N_("Give template_id with template_data.")))
    attachments: list[Attachment] = []
    for index, item in enumerate(body.attachments or ()):
        try:
            content = decode_base64(item.content, f"attachments.{index}.content")
        except Invalid as exc:
            issues.extend(exc.issues)
            continue
        attachments.append(
            Attachment(
                filename=item.filename,
                content=content,
                mimetype=item.content_type or guess_mimetype(item.filename),
                content_id=item.content_id,
            )
        )
    if issues:
        raise Invalid(issues)
    reply_to = _mailbox(body.reply_to)
    return MessageDraft(
        sender=Mailbox(address=body.from_.email, name=body.from_.name or None),
        to=_mailboxes(body.to),
        cc=_mailboxes(body.cc),
        bcc=_mailboxes(body.bcc),
        reply_to=() if reply_to is None else (reply_to,),
        subject=subject or "",
        text=text,
        html=html,
        headers=tuple((body.headers or {}).items()),
        attachments=tuple(attachments),
    )


def decode_raw(raw: str) -> bytes:
    return decode_base64(raw, "raw")


def _send_at(options: MessageOptions, now: datetime) -> datetime | None:
    if options.send_at is None:
        return None
    instant = parse_instant(options.send_at, "send_at", require_zone=True)
    return schedule(instant, "send_at", now)


def _provider_ref(options: MessageOptions) -> str | None:
    return None if options.provider_id is None else str(options.provider_id)


def _tracking(options: MessageOptions) -> TrackingChoice:
    return TrackingChoice(options.track_opens, options.track_clicks, options.transactional)


def submission(
    body: MessageCreate,
    *,
    settings: Settings,
    now: datetime,
    template: RenderedTemplate | None = None,
) -> Submission:
    """A create body (with its ``template`` rendered, if it names one) as a submission ready
    to accept; errors in native field names."""
    issues: list[Issue] = []
    send_at: datetime | None = None
    try:
        send_at = _send_at(body, now)
    except Invalid as exc:
        issues += exc.issues
    try:
        built = draft(body, template)
    except Invalid as exc:
        issues += exc.issues
    if issues:
        raise Invalid(issues)
    try:
        made = submission_from_draft(
            built,
            settings=settings,
            tags=body.tags or (),
            metadata=body.metadata,
            provider_ref=_provider_ref(body),
            send_at=send_at,
            tracking=_tracking(body),
        )
    except Invalid as exc:
        raise exc.renamed(request_field) from exc
    return made


def raw_submission(
    raw: bytes, options: MessageOptions, *, settings: Settings, now: datetime
) -> Submission:
    send_at = _send_at(options, now)
    try:
        made = submission_from_raw(
            raw,
            settings=settings,
            tags=options.tags or (),
            metadata=options.metadata,
            provider_ref=_provider_ref(options),
            send_at=send_at,
            tracking=_tracking(options),
        )
    except Invalid as exc:
        raise exc.renamed(_RAW_RENAMES) from exc
    return made


# --- out ----------------------------------------------------------------------------------------


def _summary(message: Message, providers: Mapping[int, str]) -> dict[str, Any]:
    sender = mailbox_of_header(message.from_header)
    return {
        "id": message.public_id,
        "status": message.status,
        "from": {"email": sender.address, "name": sender.name},
        "subject": message.subject,
        "message_id": message.message_id_header,
        "tags": list(message.tags or ()),
        "metadata": dict(message.meta or {}),
        "provider_id": providers.get(message.provider_id or 0),
        "last_provider_id": providers.get(message.last_provider_id or 0),
        "attempts": message.attempts,
        "size": message.size,
        "send_at": iso(message.send_at),
        "created_at": iso(message.created_at),
        "updated_at": iso(message.updated_at),
        # set once the retention period removed the MIME (GET .../raw is then a 410)
        "content_purged_at": iso(message.purged_at),
    }


def _recipient(row: MessageRecipient) -> dict[str, Any]:
    return {
        "email": row.address,
        "type": row.kind,
        "status": row.status,
        "attempts": row.attempts,
        "last_code": row.last_code,
        "last_reply": row.last_reply,
        "updated_at": iso(row.updated_at),
    }


def _event(event: Event, providers: Mapping[int, str], language: str) -> dict[str, Any]:
    return {
        "type": event.type,
        "recipient": event.recipient,
        "smtp_code": event.smtp_code,
        "detail": translate_stored(event.detail, language),
        "provider_id": providers.get(event.provider_id or 0),
        "created_at": iso(event.created_at),
    }


def message_out(
    message: Message,
    providers: Mapping[int, str],
    *,
    recipients: Sequence[MessageRecipient] | None = None,
    events: Sequence[Event] | None = None,
    language: str = "en",
) -> dict[str, Any]:
    """A message object; with ``recipients`` (and ``events``) when given."""
    item = _summary(message, providers)
    if recipients is not None:
        item["recipients"] = [_recipient(r) for r in recipients]
        item["rejected"] = [
            r.address for r in recipients if r.status == RecipientStatus.REJECTED.value
        ]
    if events is not None:
        item["events"] = [_event(e, providers, language) for e in events]
    return item


def accepted_out(
    accepted: Accepted, submitted: Submission, providers: Mapping[int, str]
) -> dict[str, Any]:
    """A message just accepted, without reading it back: every recipient queued or rejected."""
    item = _summary(accepted.message, providers)
    refused = set(accepted.rejected)
    at = iso(accepted.message.created_at)
    item["recipients"] = [
        {
            "email": address,
            "type": RecipientKind(kind).value,
            "status": (
                RecipientStatus.REJECTED if address in refused else RecipientStatus.QUEUED
            ).value,
            "attempts": 0,
            "last_code": None,
            "last_reply": None,
            "updated_at": at,
        }
        for address, kind in submitted.recipients
    ]
    item["rejected"] = list(accepted.rejected)
    return item


# --- list queries -------------------------------------------------------------------------------

_CURSOR_KIND: Final = "m"


def encode_cursor(last_id: int) -> str:
    return fields.encode_cursor(_CURSOR_KIND, last_id)


def decode_cursor(cursor: str) -> int:
    return fields.decode_cursor(_CURSOR_KIND, cursor, "cursor")


def status_filter(values: Sequence[str]) -> list[MessageStatus]:
    """``status=queued&status=deferred`` or ``status=queued,deferred``."""
    return fields.parse_choices(MessageStatus, values, "status")
