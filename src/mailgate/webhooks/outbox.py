"""The outbox (``webhook_deliveries``): claim due rows with a lease, record what a POST did.

Claims work as the message queue's do (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's
single writer elsewhere), so several dispatchers share the outbox. A row is due when its
time has come, its webhook is enabled, and no earlier event of the same message is still
pending for the same webhook: a message's events reach a receiver in order, each one only
after the one before succeeded or was given up.

A failed POST is retried on ``webhook_retry_schedule`` until ``retry_until`` (the event's
time + ``webhook_retry_hours``), then given up. A webhook failing for
``webhook_disable_after_hours`` without a success, at least ``webhook_disable_after_failures``
times in a row, is disabled with the reason, and its pending rows are given up (a replay
sends one again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from mailgate.i18n import N_, stored_message, translate_stored
from mailgate.store.models import WEBHOOK_PENDING, Webhook, WebhookDelivery

__all__ = [
    "DELIVERED",
    "FAILED",
    "Attempted",
    "DisablePolicy",
    "OutboxJob",
    "claim",
    "record",
]

DELIVERED: Final = "delivered"
FAILED: Final = "failed"  # given up: retries ran out, or the webhook was disabled
DISABLED_REASON: Final = N_(
    "Disabled after {failures} failed deliveries in a row since {since}; the last one: {error}"
)
GIVEN_UP_DISABLED: Final = N_("Not sent: the webhook was disabled.")


@dataclass(frozen=True)
class OutboxJob:
    """A leased delivery and what sending it needs (secrets still encrypted)."""

    delivery_id: int
    public_id: str
    webhook_id: int
    url: str
    payload: dict[str, Any]
    attempts: int  # including this one
    secret_encrypted: bytes
    previous_secret_encrypted: bytes | None
    previous_secret_expires_at: datetime | None


@dataclass(frozen=True)
class Attempted:
    """What one POST did. ``error`` is a stored message (see i18n.stored_message)."""

    job: OutboxJob
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class DisablePolicy:
    after: timedelta
    failures: int


def claim(
    session: Session, *, owner: str, limit: int, lease_seconds: float, now: datetime
) -> list[OutboxJob]:
    """Lease up to ``limit`` due deliveries to ``owner`` and load them (a transaction of
    ``Database.write``)."""
    earlier = aliased(WebhookDelivery)
    waiting_for_earlier = exists().where(
        earlier.webhook_id == WebhookDelivery.webhook_id,
        earlier.message_id == WebhookDelivery.message_id,
        earlier.status == WEBHOOK_PENDING,
        earlier.event_id < WebhookDelivery.event_id,
    )
    due = (
        select(WebhookDelivery.id)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.status == WEBHOOK_PENDING,
            WebhookDelivery.next_attempt_at <= now,
            or_(
                WebhookDelivery.lease_expires_at.is_(None),
                WebhookDelivery.lease_expires_at < now,
            ),
            Webhook.is_enabled,
            ~waiting_for_earlier,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=WebhookDelivery)
    claimed = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=WebhookDelivery.attempts + 1,
        )
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    )
    ids = sorted(claimed.scalars())
    jobs: list[OutboxJob] = []
    if ids:
        rows = session.execute(
            select(
                WebhookDelivery.id,
                WebhookDelivery.public_id,
                WebhookDelivery.payload,
                WebhookDelivery.attempts,
                Webhook.id.label("webhook_id"),
                Webhook.url,
                Webhook.secret_encrypted,
                Webhook.previous_secret_encrypted,
                Webhook.previous_secret_expires_at,
            )
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.id.in_(ids), WebhookDelivery.lease_owner == owner)
            .order_by(WebhookDelivery.id)
        )
        jobs = [
            OutboxJob(
                delivery_id=row.id,
                public_id=row.public_id,
                webhook_id=row.webhook_id,
                url=row.url,
                payload=row.payload,
                attempts=row.attempts,
                secret_encrypted=row.secret_encrypted,
                previous_secret_encrypted=row.previous_secret_encrypted,
                previous_secret_expires_at=row.previous_secret_expires_at,
            )
            for row in rows
        ]
    return jobs


def next_attempt(schedule: Sequence[float], attempts: int, now: datetime) -> datetime:
    """When to try again after the ``attempts``-th failure (the schedule's last step repeats)."""
    delay = schedule[min(attempts, len(schedule)) - 1] if schedule else 60.0
    return now + timedelta(seconds=delay)


def record(
    session: Session,
    attempted: Attempted,
    *,
    owner: str,
    now: datetime,
    schedule: Sequence[float],
    disable: DisablePolicy,
) -> bool:
    """Write what a POST did to its row and its webhook (a transaction of ``Database.write``).
    Returns whether the webhook was disabled by it. A row whose lease was lost (to another
    dispatcher) is left alone."""
    job = attempted.job
    row = (
        session.execute(
            select(WebhookDelivery).where(
                WebhookDelivery.id == job.delivery_id, WebhookDelivery.lease_owner == owner
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return False
    row.lease_owner = None
    row.lease_expires_at = None
    row.last_status_code = attempted.status_code
    row.last_error = attempted.error
    row.last_duration_ms = attempted.duration_ms
    row.last_attempt_at = now
    hook = update(Webhook).where(Webhook.id == job.webhook_id)
    if attempted.ok:
        row.status = DELIVERED
        row.delivered_at = now
        session.execute(
            hook.values(
                consecutive_failures=0,
                failing_since=None,
                last_success_at=now,
                updated_at=Webhook.updated_at,  # settings did not change
            )
        )
        return False
    retry_at = next_attempt(schedule, row.attempts, now)
    if retry_at > row.retry_until:
        row.status = FAILED
    else:
        row.next_attempt_at = retry_at
    session.execute(
        hook.values(
            consecutive_failures=Webhook.consecutive_failures + 1,
            failing_since=func.coalesce(Webhook.failing_since, now),
            last_failure_at=now,
            updated_at=Webhook.updated_at,
        )
    )
    return _disable_if_failing(session, attempted, now=now, policy=disable)


def _disable_if_failing(
    session: Session, attempted: Attempted, *, now: datetime, policy: DisablePolicy
) -> bool:
    hook = (
        session.execute(select(Webhook).where(Webhook.id == attempted.job.webhook_id))
    ).scalar_one()
    if not (
        hook.is_enabled
        and hook.failing_since is not None
        and hook.consecutive_failures >= policy.failures
        and hook.failing_since <= now - policy.after
    ):
        return False
    hook.is_enabled = False
    hook.disabled_reason = stored_message(
        DISABLED_REASON,
        {
            "failures": hook.consecutive_failures,
            "since": hook.failing_since.replace(microsecond=0).isoformat(),
            "error": translate_stored(attempted.error, "en") or "",
        },
    )
    give_up_pending(session, hook.id, now=now)
    return True


def give_up_pending(session: Session, webhook_id: int, *, now: datetime) -> None:
    """Mark a disabled webhook's pending rows given up (they stay in its log, replayable)."""
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status == WEBHOOK_PENDING)
        .values(
            status=FAILED,
            last_error=stored_message(GIVEN_UP_DISABLED, {}),
            lease_owner=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
