"""The bodies POSTed for an event, in a webhook's flavour.

``native`` (webhooks made through ``/api/v1``)::

    {"type": "delivered", "timestamp": "2026-05-25T02:18:00Z",
     "data": {"message_id": "msg_...", "recipient": "a@example.com", "smtp_code": 250, ...}}

``smtp2go`` (webhooks made through ``/v3``): SMTP2GO's own flat event object (``event``,
``time``, ``sendtime``, ``sender``, ``from``, ``rcpt``, ``recipients``, ``email_id``, ...).
Both are built once, when the event is fanned out, so every retry sends the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from enum import StrEnum
from typing import Any, Final

from mailgate.api.fields import iso  # the one ISO 8601 form every answer uses
from mailgate.domain import EventType
from mailgate.i18n import translate_stored

__all__ = [
    "SMTP2GO_EVENTS",
    "EventFacts",
    "Flavour",
    "build_payload",
    "native_payload",
    "ping_payload",
    "smtp2go_payload",
]


class Flavour(StrEnum):
    NATIVE = "native"
    SMTP2GO = "smtp2go"


# SMTP2GO's event names for the events it has (it has no deferred, failed or cancelled).
SMTP2GO_EVENTS: Final[Mapping[EventType, str]] = {
    EventType.PROCESSED: "processed",
    EventType.DELIVERED: "delivered",
    EventType.BOUNCE: "bounce",
    EventType.REJECT: "reject",
    EventType.SPAM: "spam",
    EventType.UNSUBSCRIBE: "unsubscribe",
    EventType.OPEN: "open",
    EventType.CLICK: "click",
}


@dataclass(frozen=True)
class EventFacts:
    """An event and what a payload tells of its message (no ORM objects)."""

    type: str
    created_at: datetime
    recipient: str | None = None
    smtp_code: int | None = None
    detail: str | None = None  # as stored (maybe a stored_message)
    bounce_class: str | None = None
    user_agent: str | None = None
    client_ip: str | None = None
    url: str | None = None
    provider: str | None = None  # public id
    message_id: str | None = None  # public id
    message_id_header: str | None = None
    envelope_from: str | None = None
    from_header: str | None = None
    subject: str | None = None
    sent_at: datetime | None = None
    recipients: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


def native_payload(facts: EventFacts) -> dict[str, Any]:
    detail = translate_stored(facts.detail, "en")
    data: dict[str, Any] = {
        "message_id": facts.message_id,
        "recipient": facts.recipient,
        "smtp_code": facts.smtp_code,
        "detail": detail,
        "bounce_class": facts.bounce_class,
        "provider_id": facts.provider,
        "from": facts.from_header,
        "subject": facts.subject,
        "message_id_header": facts.message_id_header,
        "tags": list(facts.tags),
        "metadata": dict(facts.metadata),
    }
    if facts.type in (EventType.OPEN, EventType.CLICK, EventType.UNSUBSCRIBE):
        data.update(user_agent=facts.user_agent, ip=facts.client_ip, url=facts.url)
    return {"type": facts.type, "timestamp": iso(facts.created_at), "data": data}


def smtp2go_payload(facts: EventFacts) -> dict[str, Any]:
    name = SMTP2GO_EVENTS.get(EventType(facts.type), facts.type)
    sender = parseaddr(facts.from_header or "")[1] or facts.envelope_from
    detail = translate_stored(facts.detail, "en")
    payload: dict[str, Any] = {
        "event": name,
        "time": iso(facts.created_at),
        "timestamp": int(facts.created_at.timestamp()),
        "sendtime": iso(facts.sent_at),
        "sender": facts.envelope_from,
        "from": sender,
        "from_address": sender,
        "rcpt": facts.recipient,
        "email": facts.recipient,
        "recipients": list(facts.recipients),
        "email_id": facts.message_id,
        "message-id": facts.message_id_header,
        "subject": facts.subject,
    }
    if detail:
        payload["message"] = detail
    if facts.smtp_code is not None:
        payload["context"] = f"{facts.smtp_code} {detail or ''}".strip()
    if name == "bounce":
        payload["bounce"] = facts.bounce_class or "hard"
    if name in ("open", "click", "unsubscribe"):
        payload["user-agent"] = facts.user_agent
        payload["ip"] = facts.client_ip
    if name == "click":
        payload["url"] = facts.url
        payload["link"] = facts.url
    return payload


def build_payload(flavour: str, facts: EventFacts) -> dict[str, Any]:
    if flavour == Flavour.SMTP2GO:
        return smtp2go_payload(facts)
    return native_payload(facts)


def ping_payload(flavour: str, now: datetime) -> dict[str, Any]:
    """What ``POST /webhooks/{id}/test`` sends: a made-up delivered event, marked as a test."""
    facts = EventFacts(
        type=EventType.DELIVERED.value,
        created_at=now,
        recipient="test@example.com",
        smtp_code=250,
        detail="This is a test event from Mailgate.",
        message_id="msg_test",
        envelope_from="sender@example.com",
        from_header="sender@example.com",
        subject="Mailgate webhook test",
        sent_at=now,
        recipients=("test@example.com",),
    )
    payload = build_payload(flavour, facts)
    payload["test"] = True
    return payload
