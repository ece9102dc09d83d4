"""SMTP2GO's words for suppressions, activity and the archive <-> domain. Pure functions
and lookup tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from mailgate.api.fields import iso
from mailgate.api.messages_common import mailbox_of_header
from mailgate.domain import EventType, RecipientKind
from mailgate.errors import Invalid
from mailgate.i18n import N_, translate_stored
from mailgate.services.activity import ActivityItem, EventKind
from mailgate.services.archive import MimeSummary
from mailgate.services.suppressions import SuppressionReason
from mailgate.store.models import Message, MessageRecipient, Suppression

# SMTP2GO's suppression types. "compliance" (blocked by SMTP2GO itself) has no Mailgate
# counterpart: asking for it alone finds nothing.
REASON_TO_TYPE: Final = {
    SuppressionReason.MANUAL: "manual",
    SuppressionReason.HARD_BOUNCE: "bounce",
    SuppressionReason.COMPLAINT: "spam",
    SuppressionReason.UNSUBSCRIBE: "unsubscribe",
}
TYPE_TO_REASON: Final[dict[str, SuppressionReason | None]] = {
    **{word: reason for reason, word in REASON_TO_TYPE.items()},
    "compliance": None,
}

# Activity event words. Bounces split by class; Mailgate's own types without an SMTP2GO word
# (deferred, failed, cancelled) keep their name.
EVENT_WORDS: Final[dict[EventKind, str]] = {
    EventKind(EventType.PROCESSED): "processed",
    EventKind(EventType.DELIVERED): "delivered",
    EventKind(EventType.BOUNCE, "soft"): "soft-bounced",
    EventKind(EventType.BOUNCE, "hard"): "hard-bounced",
    EventKind(EventType.REJECT): "rejected",
    EventKind(EventType.SPAM): "spam",
    EventKind(EventType.UNSUBSCRIBE): "unsubscribed",
    EventKind(EventType.OPEN): "opened",
    EventKind(EventType.CLICK): "clicked",
    EventKind(EventType.DEFERRED): "deferred",
    EventKind(EventType.FAILED): "failed",
    EventKind(EventType.CANCELLED): "cancelled",
}
WORD_TO_KIND: Final = {word: kind for kind, word in EVENT_WORDS.items()}
RESUBSCRIBED: Final = "resubscribed"  # SMTP2GO's; Mailgate records no such event


def suppression_types(words: Sequence[str], field: str) -> list[SuppressionReason | None]:
    chosen: list[SuppressionReason | None] = []
    for word in words:
        key = word.strip().lower()
        if key not in TYPE_TO_REASON:
            raise Invalid.field(
                field,
                N_("Must be one of: {expected}."),
                "invalid_choice",
                expected=", ".join(TYPE_TO_REASON),
            )
        chosen.append(TYPE_TO_REASON[key])
    return chosen


def suppression_result(row: Suppression) -> dict[str, Any]:
    reason = SuppressionReason(row.reason)
    complaint = reason is SuppressionReason.COMPLAINT  # the detail is the complaint then
    return {
        "block_description": "" if complaint else (row.detail or ""),
        "complaint": (row.detail or "") if complaint else "",
        "email_address": row.value,
        "reason": REASON_TO_TYPE[reason],
        "subject": None,
        "timestamp": row.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }


def event_kinds(words: Sequence[str]) -> tuple[EventKind, ...] | None:
    """The kinds asked for; None when only SMTP2GO words with no Mailgate event were."""
    kinds: list[EventKind] = []
    for word in words:
        key = word.strip().lower()
        if key == RESUBSCRIBED:
            continue
        if key not in WORD_TO_KIND:
            raise Invalid.field(
                "event_types",
                N_("Must be one of: {expected}."),
                "invalid_choice",
                expected=", ".join([*WORD_TO_KIND, RESUBSCRIBED]),
            )
        kinds.append(WORD_TO_KIND[key])
    return tuple(dict.fromkeys(kinds)) if kinds else None


def _event_word(item: ActivityItem) -> str:
    event = item.event
    kind = EventKind(EventType(event.type), event.bounce_class if event.type == "bounce" else None)
    return EVENT_WORDS.get(kind, event.type)


def _joined(recipients: Sequence[MessageRecipient], kind: RecipientKind) -> str:
    return ", ".join(r.address for r in recipients if r.kind == kind.value)


def activity_event(item: ActivityItem, recipients: Sequence[MessageRecipient]) -> dict[str, Any]:
    event, message = item.event, item.message
    code = str(event.smtp_code) if event.smtp_code else ""
    detail = translate_stored(event.detail, "en") or ""
    reply = " ".join(part for part in (code, detail) if part)
    is_reply = event.smtp_code is not None
    return {
        "date": iso(event.created_at),
        "event": _event_word(item),
        "email_id": message.public_id if message else None,
        "recipient": event.recipient,
        "recipients": [r.address for r in recipients],
        "sender": mailbox_of_header(message.from_header).address if message else None,
        "sender_full": message.from_header if message else None,
        "to": _joined(recipients, RecipientKind.TO),
        "cc": _joined(recipients, RecipientKind.CC),
        "bcc": _joined(recipients, RecipientKind.BCC),
        "subject": message.subject if message else None,
        "smtp_response": reply if is_reply else "",
        "reason": "" if is_reply else detail,
        "host": "",
        "username": "",
        "byte_size": message.size if message else None,
    }


def archived_email(
    message: Message,
    recipients: Sequence[MessageRecipient],
    summary: MimeSummary,
    url: str,
) -> dict[str, Any]:
    shown = [r for r in recipients if r.kind != RecipientKind.BCC.value] or list(recipients)
    return {
        "attachment_count": len(summary.attachments),
        "attachments": [{"filename": name} for name in summary.attachments],
        "byte_count": message.size,
        "email_id": message.public_id,
        "envelope_from": message.envelope_from,
        "headers": summary.headers,
        "recipient": shown[0].address if shown else "",
        "sender": mailbox_of_header(message.from_header).address,
        "sent": iso(message.created_at),
        "subject": message.subject,
        "to": _joined(recipients, RecipientKind.TO),
        "url": url,
        "username": "",
    }


def midnight_today(now: datetime) -> datetime:
    """SMTP2GO's default start of a search: today, 00:00 UTC."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
