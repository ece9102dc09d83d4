"""Webhooks: endpoints an account's events are POSTed to, their secrets and delivery logs.

A webhook's URL is checked when it is saved (http(s), no credentials, a host that resolves
to a public address unless ``MAILGATE_WEBHOOK_ALLOW_PRIVATE``) and again before each POST
(see :mod:`mailgate.webhooks`). Its signing secret (``whsec_...``) is kept encrypted and
answered once, when it is made; a rotation keeps the previous one signing for
``webhook_secret_overlap_hours``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.domain import EventType
from mailgate.errors import Conflict, Invalid, Issue, NotFound
from mailgate.i18n import N_
from mailgate.security.secrets_box import SecretBox
from mailgate.store.models import WEBHOOK_PENDING, Webhook, WebhookDelivery, utcnow
from mailgate.validation import check_no_control_chars
from mailgate.webhooks.fanout import DELIVERY_PREFIX
from mailgate.webhooks.outbox import give_up_pending
from mailgate.webhooks.payloads import Flavour, ping_payload
from mailgate.webhooks.signing import new_secret
from mailgate.webhooks.targets import TargetRefused, check_url, resolve

__all__ = [
    "MAX_WEBHOOKS",
    "PING_EVENT",
    "CreatedSecret",
    "WebhookChanges",
    "WebhookSettings",
    "create_webhook",
    "delete_webhook",
    "enable_webhook",
    "find_webhook",
    "get_delivery",
    "get_webhook",
    "is_pending",
    "list_deliveries",
    "list_webhooks",
    "next_attempt_of",
    "replay_delivery",
    "rotate_secret",
    "send_ping",
    "update_webhook",
]

PUBLIC_ID_PREFIX: Final = "whk_"
MAX_WEBHOOKS: Final = 25  # per account
MAX_DESCRIPTION: Final = 255
PING_EVENT: Final = "test"


@dataclass(frozen=True)
class WebhookSettings:
    """What the operator decides: where webhooks may point, how long secrets overlap."""

    box: SecretBox
    allow_private: bool
    secret_overlap: timedelta
    retry_for: timedelta


@dataclass(frozen=True)
class WebhookChanges:
    """Fields to set; ``None`` leaves a field as it is."""

    url: str | None = None
    event_types: Sequence[str] | None = None
    description: str | None = None
    is_enabled: bool | None = None


@dataclass(frozen=True)
class CreatedSecret:
    """A webhook and the secret just made for it (shown once)."""

    webhook: Webhook
    secret: str


async def _checked_url(url: str, allow_private: bool) -> str:
    target = check_url(url)
    try:
        await resolve(target, allow_private=allow_private)
    except TargetRefused as refused:
        raise Invalid(Issue("url", refused.reason, "refused", refused.params)) from refused
    return target.url


def _checked_events(values: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    unknown: list[str] = []
    for value in values:
        try:
            kind = EventType(value).value
        except ValueError:
            unknown.append(str(value)[:40])
            continue
        if kind not in chosen:
            chosen.append(kind)
    if unknown:
        raise Invalid.field(
            "events",
            N_("Unknown event type {value}; known: {known}."),
            value=", ".join(unknown),
            known=", ".join(e.value for e in EventType),
        )
    if not chosen:
        raise Invalid.field("events", N_("Choose at least one event type."), "required")
    return chosen


def _checked_description(description: str | None) -> str:
    text = description or ""
    try:
        check_no_control_chars(text)
    except ValueError as exc:
        raise Invalid.field("description", str(exc)) from exc
    if len(text) > MAX_DESCRIPTION:
        raise Invalid.field(
            "description",
            N_("Must be at most {max_length} characters long."),
            "too_long",
            max_length=MAX_DESCRIPTION,
        )
    return text


async def create_webhook(
    *,
    session: AsyncSession,
    account_id: int,
    url: str,
    event_types: Sequence[str],
    description: str | None,
    flavour: Flavour,
    enabled: bool = True,
    settings: WebhookSettings,
) -> CreatedSecret:
    checked_events = _checked_events(event_types)
    text = _checked_description(description)
    checked_url = await _checked_url(url, settings.allow_private)
    count = (
        await session.execute(
            select(func.count()).select_from(Webhook).where(Webhook.account_id == account_id)
        )
    ).scalar_one()
    if count >= MAX_WEBHOOKS:
        raise Conflict(N_("An account can have at most {limit} webhooks."), limit=MAX_WEBHOOKS)
    secret = new_secret()
    row = Webhook(
        public_id=PUBLIC_ID_PREFIX + secrets.token_hex(12),
        account_id=account_id,
        url=checked_url,
        event_types=checked_events,
        description=text,
        flavour=flavour.value,
        is_enabled=enabled,
        secret_encrypted=settings.box.encrypt(secret),
    )
    session.add(row)
    await session.commit()
    return CreatedSecret(row, secret)


async def update_webhook(
    *, session: AsyncSession, row: Webhook, changes: WebhookChanges, settings: WebhookSettings
) -> Webhook:
    """Apply ``changes``: all are checked before anything is written."""
    url = None if changes.url is None else await _checked_url(changes.url, settings.allow_private)
    events = None if changes.event_types is None else _checked_events(changes.event_types)
    text = None if changes.description is None else _checked_description(changes.description)
    if url is not None:
        row.url = url
    if events is not None:
        row.event_types = events
    if text is not None:
        row.description = text
    if changes.is_enabled is True and not row.is_enabled:
        _enable(row)
    elif changes.is_enabled is False and row.is_enabled:
        row.is_enabled = False
        row.disabled_reason = None  # turned off by a person: no reason to report
        await session.run_sync(give_up_pending, row.id, now=utcnow())
    await session.commit()
    return row


def _enable(row: Webhook) -> None:
    row.is_enabled = True
    row.disabled_reason = None
    row.consecutive_failures = 0
    row.failing_since = None


async def enable_webhook(*, session: AsyncSession, row: Webhook) -> Webhook:
    """Turn a webhook on again (after auto-disable): its failure count starts over. What was
    given up while it was off stays in its log, for replay."""
    _enable(row)
    await session.commit()
    return row


async def delete_webhook(*, session: AsyncSession, row: Webhook) -> None:
    await session.delete(row)
    await session.commit()


async def rotate_secret(
    *, session: AsyncSession, row: Webhook, settings: WebhookSettings
) -> CreatedSecret:
    """A new secret signs from now on; the current one goes on signing beside it for
    ``secret_overlap`` (a previous secret still valid is dropped)."""
    secret = new_secret()
    row.previous_secret_encrypted = row.secret_encrypted
    row.previous_secret_expires_at = utcnow() + settings.secret_overlap
    row.secret_encrypted = settings.box.encrypt(secret)
    await session.commit()
    return CreatedSecret(row, secret)


async def get_webhook(*, session: AsyncSession, account_id: int, ref: str) -> Webhook:
    """A webhook of this account by its public id."""
    text = ref.strip()
    query = select(Webhook).where(Webhook.account_id == account_id, Webhook.public_id == text)
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(N_("No webhook with id {id}."), id=text[:64])
    return row


async def find_webhook(*, session: AsyncSession, account_id: int, ref: int | str) -> Webhook:
    """A webhook by its number (SMTP2GO's ``id``) or its public id."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
        number = int(ref)
        query = select(Webhook).where(Webhook.account_id == account_id, Webhook.id == number)
        row = (await session.execute(query)).scalar_one_or_none()
        if row is None:
            raise NotFound(N_("No webhook with id {id}."), id=str(number)[:64])
        return row
    return await get_webhook(session=session, account_id=account_id, ref=ref)


async def list_webhooks(
    *, session: AsyncSession, account_id: int, limit: int | None, after_id: int | None = None
) -> tuple[list[Webhook], bool]:
    """Webhooks oldest first; ``after_id`` is a cursor; ``limit=None``: all."""
    query = select(Webhook).where(Webhook.account_id == account_id).order_by(Webhook.id)
    if after_id is not None:
        query = query.where(Webhook.id > after_id)
    if limit is None:
        return list((await session.execute(query)).scalars()), False
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    return rows[:limit], len(rows) > limit


async def list_deliveries(
    *,
    session: AsyncSession,
    webhook: Webhook,
    limit: int,
    before_id: int | None = None,
    status: str | None = None,
) -> tuple[list[WebhookDelivery], bool]:
    """A webhook's delivery log, newest first; ``before_id`` is a cursor."""
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id)
        .order_by(WebhookDelivery.id.desc())
    )
    if before_id is not None:
        query = query.where(WebhookDelivery.id < before_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    return rows[:limit], len(rows) > limit


async def get_delivery(*, session: AsyncSession, webhook: Webhook, ref: str) -> WebhookDelivery:
    text = ref.strip()
    query = select(WebhookDelivery).where(
        WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.public_id == text
    )
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(N_("No delivery with id {id} for this webhook."), id=text[:64])
    return row


def _ensure_enabled(webhook: Webhook) -> None:
    if not webhook.is_enabled:
        raise Conflict(N_("The webhook is disabled; enable it first."))


async def replay_delivery(
    *, session: AsyncSession, webhook: Webhook, ref: str, settings: WebhookSettings
) -> WebhookDelivery:
    """Send a delivery again now, with the same ``webhook-id`` and body, and a fresh retry
    window. Refused while it is being sent, or while the webhook is disabled."""
    _ensure_enabled(webhook)
    row = await get_delivery(session=session, webhook=webhook, ref=ref)
    now = utcnow()
    if row.lease_expires_at is not None and row.lease_expires_at > now:
        raise Conflict(N_("This delivery is being sent right now."))
    row.status = WEBHOOK_PENDING
    row.attempts = 0
    row.next_attempt_at = now
    row.retry_until = now + settings.retry_for
    row.lease_owner = None
    row.lease_expires_at = None
    await session.commit()
    return row


async def send_ping(
    *, session: AsyncSession, webhook: Webhook, settings: WebhookSettings
) -> WebhookDelivery:
    """Queue a made-up event (``"test": true``) for this webhook; it shows in its log."""
    _ensure_enabled(webhook)
    now = utcnow()
    row = WebhookDelivery(
        public_id=DELIVERY_PREFIX + secrets.token_hex(12),
        webhook_id=webhook.id,
        event_type=PING_EVENT,
        payload=ping_payload(webhook.flavour, now),
        next_attempt_at=now,
        retry_until=now + settings.retry_for,
        created_at=now,
    )
    session.add(row)
    await session.commit()
    return row


def is_pending(row: WebhookDelivery) -> bool:
    return row.status == WEBHOOK_PENDING


def next_attempt_of(row: WebhookDelivery) -> datetime | None:
    return row.next_attempt_at if is_pending(row) else None
