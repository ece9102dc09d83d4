"""Native events <-> domain. Pure functions and lookup tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from mailgate.api import fields
from mailgate.api.fields import iso
from mailgate.domain import EventType
from mailgate.i18n import translate_stored
from mailgate.services.activity import ActivityItem, EventKind, event_public_id

CURSOR: Final = "ev"


def kinds_filter(values: Sequence[str]) -> tuple[EventKind, ...]:
    """``type=delivered&type=bounce`` or ``type=delivered,bounce``."""
    return tuple(EventKind(t) for t in fields.parse_choices(EventType, values, "type"))


def event_out(
    item: ActivityItem, providers: Mapping[int, str], language: str = "en"
) -> dict[str, Any]:
    event = item.event
    return {
        "id": event_public_id(event),
        "type": event.type,
        "message_id": item.message.public_id if item.message is not None else None,
        "recipient": event.recipient,
        "provider_id": providers.get(event.provider_id) if event.provider_id else None,
        "smtp_code": event.smtp_code,
        "detail": translate_stored(event.detail, language),
        "bounce_class": event.bounce_class,
        "created_at": iso(event.created_at),
    }


def encode_cursor(last_id: int) -> str:
    return fields.encode_cursor(CURSOR, last_id)


def decode_cursor(cursor: str) -> int:
    return fields.decode_cursor(CURSOR, cursor, "cursor")
