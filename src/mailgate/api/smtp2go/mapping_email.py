"""SMTP2GO ``/email/...`` bodies <-> domain: drafts, MIME, results, scheduled and found mail."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

from mailgate.api.fields import iso
from mailgate.api.messages_common import (
    decode_base64,
    encode_text,
    guess_mimetype,
    mailbox_of_header,
    parse_instant,
    parse_mailbox,
    parse_mailbox_list,
    schedule,
)
from mailgate.api.smtp2go.schemas import FileIn, InlineIn, SendEmailRequest, SendMimeRequest
from mailgate.config import Settings
from mailgate.domain import Attachment, Mailbox, MessageDraft, MessageStatus
from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_
from mailgate.services.messages import (
    Accepted,
    Submission,
    submission_from_draft,
    submission_from_raw,
)
from mailgate.services.template_rendering import RenderedTemplate
from mailgate.services.templates import fill_from_template
from mailgate.store.models import Message, MessageRecipient

__all__ = [
    "STATUS_WORDS",
    "draft",
    "found_out",
    "mime_bytes",
    "mime_submission",
    "request_fields",
    "scheduled_out",
    "send_result",
    "submission",
]

# MIME builder field -> SMTP2GO request field, for the fields that are not per item.
_SEND_NAMES: Final = {"text": "text_body", "html": "html_body", "message": ""}
_ADDRESS_FIELD: Final = re.compile(r"^(from|(?:to|cc|bcc)\.\d+|reply_to\.\d+)\.(address|name)$")
MIME_NAMES: Final = {"mime": "mime_email", "message": "mime_email"}

# Mailgate's message status in the words of SMTP2GO's activity (``processed``, ...).
STATUS_WORDS: Final = {
    MessageStatus.SCHEDULED: "scheduled",
    MessageStatus.QUEUED: "processed",
    MessageStatus.DEFERRED: "soft-bounced",
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.PARTIAL: "delivered",
    MessageStatus.BOUNCED: "hard-bounced",
    MessageStatus.FAILED: "hard-bounced",
    MessageStatus.REJECTED: "rejected",
    MessageStatus.CANCELLED: "cancelled",
}

_BASE64_TEXT: Final = re.compile(r"^[A-Za-z0-9+/\s]+={0,2}\s*$")


def _required(issues: list[Issue], name: str) -> None:
    issues.append(Issue(name, N_("This field is required."), "required"))


def _mailboxes(values: Sequence[str] | None, name: str, issues: list[Issue]) -> list[Mailbox]:
    boxes: list[Mailbox] = []
    for index, value in enumerate(values or ()):
        try:
            boxes.append(parse_mailbox(value, f"{name}.{index}"))
        except Invalid as exc:
            issues.extend(exc.issues)
    return boxes


def _file(item: FileIn, name: str, issues: list[Issue]) -> bytes | None:
    if item.fileblob is not None:
        try:
            return decode_base64(item.fileblob, f"{name}.fileblob")
        except Invalid as exc:
            issues.extend(exc.issues)
            return None
    if item.url is not None:
        issues.append(
            Issue(
                f"{name}.url",
                N_("Files by URL are not supported: send the content as fileblob."),
                "unsupported",
            )
        )
    else:
        _required(issues, f"{name}.fileblob")
    return None


def _attachments(body: SendEmailRequest, issues: list[Issue]) -> list[Attachment]:
    found: list[Attachment] = []
    files: list[tuple[str, Sequence[FileIn]]] = [
        ("attachments", body.attachments or ()),
        ("inlines", body.inlines or ()),
    ]
    for group, items in files:
        for index, item in enumerate(items):
            content = _file(item, f"{group}.{index}", issues)
            if content is None:
                continue
            content_id = None
            if isinstance(item, InlineIn):  # the Node client sends no cid: the name is the id
                content_id = item.cid or item.filename
            found.append(
                Attachment(
                    filename=item.filename,
                    content=content,
                    mimetype=item.mimetype or guess_mimetype(item.filename),
                    content_id=content_id,
                )
            )
    return found


def draft(body: SendEmailRequest, template: RenderedTemplate | None = None) -> MessageDraft:
    """A ``/email/send`` body as a domain draft; every problem found is reported at once.
    The rendered ``template`` fills the subject and bodies the request leaves out."""
    issues: list[Issue] = []
    subject, html, text = fill_from_template(body.subject, body.html_body, body.text_body, template)
    if body.subaccount_id is not None:
        issues.append(Issue("subaccount_id", N_("Subaccounts are not supported."), "unsupported"))
    sender: Mailbox | None = None
    if body.sender is None:
        _required(issues, "sender")
    else:
        try:
            sender = parse_mailbox(body.sender, "sender")
        except Invalid as exc:
            issues.extend(exc.issues)
    to = _mailboxes(body.to, "to", issues)
    cc = _mailboxes(body.cc, "cc", issues)
    bcc = _mailboxes(body.bcc, "bcc", issues)
    if not (body.to or body.cc or body.bcc):
        _required(issues, "to")
    reply_to: list[Mailbox] = []
    if body.reply_to is not None:
        try:
            reply_to.append(parse_mailbox(body.reply_to, "reply_to"))
        except Invalid as exc:
            issues.extend(exc.issues)
    if text is None and html is None:
        issues.append(Issue("text_body", N_("Give text_body, html_body or both."), "required"))
    headers: list[tuple[str, str]] = []
    for index, header in enumerate(body.custom_headers or ()):
        if header.header.lower() == "reply-to":  # SMTP2GO's own example of a custom header
            try:
                reply_to += parse_mailbox_list(header.value, f"custom_headers.{index}.value")
            except Invalid as exc:
                issues.extend(exc.issues)
        else:
            headers.append((header.header, header.value))
    attachments = _attachments(body, issues)
    if issues or sender is None:
        raise Invalid(issues)
    return MessageDraft(
        sender=sender,
        to=tuple(to),
        cc=tuple(cc),
        bcc=tuple(bcc),
        reply_to=tuple(reply_to),
        subject=subject or "",
        text=text,
        html=html,
        headers=tuple(headers),
        attachments=tuple(attachments),
    )


def request_fields(body: SendEmailRequest) -> Callable[[str], str]:
    """How the MIME builder's field names read in this request's words."""
    names: dict[str, str] = dict(_SEND_NAMES)
    for index, header in enumerate(body.custom_headers or ()):
        names.setdefault(f"headers.{header.header}", f"custom_headers.{index}")
    files = [("attachments", j, f) for j, f in enumerate(body.attachments or ())]
    files += [("inlines", j, f) for j, f in enumerate(body.inlines or ())]
    for combined, (group, j, item) in enumerate(files):  # the draft lists them together
        names[f"attachments.{combined}.filename"] = f"{group}.{j}.filename"
        names[f"attachments.{combined}.mimetype"] = f"{group}.{j}.mimetype"
        cid = "cid" if isinstance(item, InlineIn) and item.cid else "filename"
        names[f"attachments.{combined}.content_id"] = f"{group}.{j}.{cid}"

    def rename(name: str) -> str:
        match = _ADDRESS_FIELD.match(name)
        if match is not None:  # "Name <a@b>" is one string here
            where = match.group(1)
            return "sender" if where == "from" else where.replace("reply_to.0", "reply_to")
        return names.get(name, name)

    return rename


def _schedule(value: str | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    return schedule(parse_instant(value, "schedule"), "schedule", now)


def submission(
    body: SendEmailRequest,
    *,
    settings: Settings,
    now: datetime,
    template: RenderedTemplate | None = None,
) -> Submission:
    send_at = _schedule(body.schedule, now)
    built = draft(body, template)
    try:
        return submission_from_draft(built, settings=settings, send_at=send_at)
    except Invalid as exc:
        raise exc.renamed(request_fields(body)) from exc


def mime_bytes(mime_email: str) -> bytes:
    """The message as text (the document), or base64-encoded (SMTP2GO's reference): a MIME
    message always has a ``:`` in its headers, which base64 never has."""
    if _BASE64_TEXT.match(mime_email):
        return decode_base64(mime_email, "mime_email")
    return encode_text(mime_email, "mime_email")


def mime_submission(body: SendMimeRequest, *, settings: Settings, now: datetime) -> Submission:
    if body.mime_email is None or not body.mime_email.strip():
        raise Invalid.field("mime_email", N_("This field is required."), "required")
    send_at = _schedule(body.schedule, now)
    raw = mime_bytes(body.mime_email)
    try:
        return submission_from_raw(raw, settings=settings, send_at=send_at)
    except Invalid as exc:
        raise exc.renamed(MIME_NAMES) from exc


def send_result(accepted: Accepted) -> dict[str, Any]:
    """``succeeded`` counts the recipients queued; ``failures`` names the ones refused."""
    result: dict[str, Any] = {
        "succeeded": len(accepted.accepted),
        "failed": len(accepted.rejected),
        "failures": list(accepted.rejected),
        "email_id": accepted.message.public_id,
    }
    if accepted.message.status == MessageStatus.SCHEDULED.value:
        result["schedule_id"] = accepted.message.public_id
    return result


def _sender(message: Message) -> str:
    return mailbox_of_header(message.from_header).address


def scheduled_out(message: Message, recipients: Sequence[MessageRecipient]) -> dict[str, Any]:
    return {
        "schedule_id": message.public_id,
        "email_id": message.public_id,
        "schedule": iso(message.send_at),
        "sender": _sender(message),
        "subject": message.subject,
        "recipients": ", ".join(r.address for r in recipients),
        "created_at": iso(message.created_at),
    }


def found_out(message: Message, recipients: Sequence[MessageRecipient]) -> dict[str, Any]:
    return {
        "email_id": message.public_id,
        "email_ts": iso(message.created_at),
        "sender": _sender(message),
        "subject": message.subject,
        "recipients": [r.address for r in recipients],
        "status": STATUS_WORDS.get(MessageStatus(message.status), message.status),
        "schedule": iso(message.send_at),
        "size": message.size,
    }
