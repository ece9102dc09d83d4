"""Native webhooks <-> domain. Pure functions and lookup tables."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from mailgate.api.fields import iso
from mailgate.api.native.mapping import refuse_nulls
from mailgate.i18n import translate_stored
from mailgate.services.webhooks import WebhookChanges, next_attempt_of
from mailgate.store.models import Webhook, WebhookDelivery, utcnow

__all__ = [
    "DELIVERY_CURSOR",
    "WEBHOOK_CURSOR",
    "delivery_out",
    "to_changes",
    "webhook_out",
    "without_secret",
]

WEBHOOK_CURSOR: Final = "wh"
DELIVERY_CURSOR: Final = "whd"
REQUEST_TO_DOMAIN: Final = {"events": "event_types", "enabled": "is_enabled"}
NOT_NULLABLE: Final = frozenset({"url", "events", "enabled"})


def to_changes(body: BaseModel) -> WebhookChanges:
    """A PATCH body (only the fields sent) as domain changes; ``description: null`` clears."""
    refuse_nulls(body, NOT_NULLABLE)
    values: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if name == "description" and value is None:
            value = ""
        values[REQUEST_TO_DOMAIN.get(name, name)] = value
    return WebhookChanges(**values)


def webhook_out(row: Webhook, language: str, *, secret: str | None = None) -> dict[str, Any]:
    """A webhook as the native object; ``secret`` only when this request made one."""
    previous_until = row.previous_secret_expires_at
    if previous_until is not None and previous_until <= utcnow():
        previous_until = None
    item: dict[str, Any] = {
        "id": row.public_id,
        "url": row.url,
        "events": list(row.event_types),
        "description": row.description,
        "enabled": row.is_enabled,
        "disabled_reason": translate_stored(row.disabled_reason, language),
        "payload_format": row.flavour,
        "consecutive_failures": row.consecutive_failures,
        "failing_since": iso(row.failing_since),
        "last_success_at": iso(row.last_success_at),
        "last_failure_at": iso(row.last_failure_at),
        "secret_rotation": {"previous_secret_valid_until": iso(previous_until)},
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }
    if secret is not None:
        item["secret"] = secret
    return item


def without_secret(body: dict[str, Any]) -> dict[str, Any]:
    """What an idempotent replay answers: the secret is shown once, so never stored."""
    data = dict(body["data"])
    data["secret"] = None
    return {**body, "data": data}


def delivery_out(row: WebhookDelivery, language: str) -> dict[str, Any]:
    return {
        "id": row.public_id,
        "event_type": row.event_type,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": iso(next_attempt_of(row)),
        "last_attempt_at": iso(row.last_attempt_at),
        "last_status_code": row.last_status_code,
        "last_error": translate_stored(row.last_error, language),
        "last_duration_ms": row.last_duration_ms,
        "delivered_at": iso(row.delivered_at),
        "created_at": iso(row.created_at),
        "payload": row.payload,
    }
