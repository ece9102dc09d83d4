"""SMTP2GO webhooks <-> domain: its event names, its webhook object. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from mailgate.api.smtp2go.schemas_webhooks import WebhookLookup, WebhookRequest
from mailgate.domain import EventType
from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_, translate_stored
from mailgate.services.webhooks import WebhookChanges
from mailgate.store.models import Webhook
from mailgate.webhooks.payloads import SMTP2GO_EVENTS

__all__ = [
    "check_options",
    "event_types",
    "reference",
    "required_reference",
    "to_changes",
    "webhook_out",
]

FROM_SMTP2GO: Final = {name: kind.value for kind, name in SMTP2GO_EVENTS.items()}
UNSUPPORTED_OPTIONS: Final = ("sms_events", "usernames", "headers")


def event_types(names: Sequence[str] | None) -> list[str]:
    """SMTP2GO event names as domain event types; none given: every email event."""
    if names is None:
        return list(FROM_SMTP2GO.values())
    unknown = [name for name in names if name not in FROM_SMTP2GO]
    if unknown:
        raise Invalid.field(
            "events",
            N_("Unknown event type {value}; known: {known}."),
            value=", ".join(n[:40] for n in unknown),
            known=", ".join(FROM_SMTP2GO),
        )
    return [FROM_SMTP2GO[name] for name in names]


def reference(body: WebhookLookup) -> int | str | None:
    """The webhook named by ``id`` (or ``webhook_id``), if any."""
    return body.id if body.id is not None else body.webhook_id


def required_reference(body: WebhookLookup) -> int | str:
    ref = reference(body)
    if ref is None:
        raise Invalid.field("id", N_("This field is required."), "required")
    return ref


def check_options(body: WebhookRequest) -> None:
    """SMTP SMS events, per-sender filters and extra headers are not offered: refused when
    given, rather than silently ignored."""
    issues = [
        Issue(name, N_("Mailgate does not offer this option; leave it empty."), "unsupported")
        for name in UNSUPPORTED_OPTIONS
        if getattr(body, name)
    ]
    if issues:
        raise Invalid(issues)


def to_changes(body: WebhookRequest) -> WebhookChanges:
    return WebhookChanges(
        url=body.url,
        event_types=None if body.events is None else event_types(body.events),
        description=body.description,
        is_enabled=body.enabled,
    )


def webhook_out(row: Webhook, language: str, *, secret: str | None = None) -> dict[str, Any]:
    names = [SMTP2GO_EVENTS.get(EventType(kind), kind) for kind in row.event_types]
    item: dict[str, Any] = {
        "id": row.id,
        "webhook_id": row.public_id,
        "url": row.url,
        "events": names,
        "sms_events": [],
        "usernames": [],
        "headers": [],
        "output_format": "json",
        "description": row.description,
        "enabled": row.is_enabled,
        "disabled_reason": translate_stored(row.disabled_reason, language),
    }
    if secret is not None:
        item["secret"] = secret
    return item
