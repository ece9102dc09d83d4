"""The queue is the messages table: claim due rows with a lease, load them as jobs.

On PostgreSQL the claim takes rows ``FOR UPDATE SKIP LOCKED``, so any number of workers on
any number of hosts share one queue without sending a message twice at the same time; on
SQLite the single writer lock makes the same statement atomic. A worker that dies keeps its
rows only until the lease expires: then another claims them (at-least-once delivery).

Mail accepted by a process that runs a worker skips the claim: it is inserted already
leased to that worker and handed over in memory (:class:`Lease`), so the common path costs
no queue query at all, and a crash still leaves it in the table for the next claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Final, Protocol

import structlog
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from mailgate.delivery.personalize import Engagement
from mailgate.domain import RecipientStatus
from mailgate.store.db import Database
from mailgate.store.models import IN_QUEUE, Message, MessageContent, MessageRecipient

__all__ = [
    "PENDING",
    "DeliveryJob",
    "Handoff",
    "Lease",
    "claim_due",
    "engagement_of",
    "give_back",
    "load_jobs",
    "release_leases",
]

log = structlog.get_logger(__name__)

PENDING = (RecipientStatus.QUEUED.value, RecipientStatus.DEFERRED.value)


@dataclass(frozen=True)
class DeliveryJob:
    """A leased message: everything sending and recording need, no ORM objects."""

    message_id: int
    account_id: int
    explicit_provider_id: int | None
    envelope_from: str
    recipients: tuple[str, ...]  # pending: queued or deferred, in the order given
    settled: tuple[str, ...]  # statuses of the other recipients (delivered, rejected, ...)
    raw: bytes
    smtputf8: bool
    attempts: int  # including this one
    expires_at: datetime
    lease_expires_at: datetime
    # tracking, List-Unsubscribe: a copy per recipient
    engagement: Engagement = field(default_factory=Engagement)


class _EngagementRow(Protocol):
    @property
    def track_opens(self) -> bool: ...
    @property
    def track_clicks(self) -> bool: ...
    @property
    def list_unsubscribe(self) -> bool: ...


def engagement_of(row: _EngagementRow) -> Engagement:
    """A message's engagement, from its row (or a row of a select naming those columns)."""
    return Engagement(bool(row.track_opens), bool(row.track_clicks), bool(row.list_unsubscribe))


@dataclass(frozen=True)
class Lease:
    """Mail accepted now may be leased at once to ``owner`` (up to ``limit`` messages)."""

    owner: str
    seconds: float
    limit: int


class Handoff(Protocol):
    """A worker that takes freshly accepted mail without a claim: this process's, or the
    delivering process's (:class:`mailgate.delivery.coordination.DelivererHandoff`)."""

    def lease(self) -> Lease | None: ...

    def adopt(self, jobs: Sequence[DeliveryJob]) -> Sequence[DeliveryJob]:
        """Take over ``jobs``; return those it could not take (their leases are to be given
        back: see :func:`release_leases`)."""
        ...


def claim_due(
    session: Session, *, worker_id: str, limit: int, lease_seconds: float, now: datetime
) -> list[int]:
    """Lease up to ``limit`` due messages to ``worker_id`` in the caller's transaction; their
    ids, oldest due first."""
    due = (
        select(Message.id)
        .where(
            IN_QUEUE,
            Message.due_at <= now,
            or_(Message.lease_expires_at.is_(None), Message.lease_expires_at < now),
        )
        .order_by(Message.due_at, Message.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = session.execute(
        update(Message)
        .where(Message.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=Message.attempts + 1,
        )
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.scalars())


# Built once: they run for every batch handed over, and building a statement (then its cache
# key) cost more than running it.
_JOBS: Final = (
    select(
        Message.id,
        Message.account_id,
        Message.provider_id,
        Message.envelope_from,
        Message.smtputf8,
        Message.attempts,
        Message.expires_at,
        Message.lease_expires_at,
        Message.track_opens,
        Message.track_clicks,
        Message.list_unsubscribe,
        MessageContent.raw,
    )
    .join(MessageContent, MessageContent.message_id == Message.id)
    .where(
        Message.id.in_(bindparam("ids", expanding=True)),
        Message.lease_owner == bindparam("owner"),
        IN_QUEUE,
    )
    .order_by(Message.id)
)
_RECIPIENTS: Final = (
    select(MessageRecipient.message_id, MessageRecipient.address, MessageRecipient.status)
    .where(MessageRecipient.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(MessageRecipient.id)
)


def load_jobs(session: Session, *, worker_id: str, message_ids: Sequence[int]) -> list[DeliveryJob]:
    """The jobs for messages leased to ``worker_id`` (two queries for any number)."""
    if not message_ids:
        return []
    rows = session.execute(_JOBS, {"ids": list(message_ids), "owner": worker_id}).all()
    pending: dict[int, list[str]] = {row.id: [] for row in rows}
    settled: dict[int, list[str]] = {row.id: [] for row in rows}
    recipients = session.execute(_RECIPIENTS, {"ids": list(pending)})
    for message_id, address, status in recipients:
        if status in PENDING:
            pending[message_id].append(address)
        else:
            settled[message_id].append(status)
    return [
        DeliveryJob(
            message_id=row.id,
            account_id=row.account_id,
            explicit_provider_id=row.provider_id,
            envelope_from=row.envelope_from,
            recipients=tuple(pending[row.id]),
            settled=tuple(settled[row.id]),
            raw=row.raw,
            smtputf8=row.smtputf8,
            attempts=row.attempts,
            expires_at=row.expires_at,
            lease_expires_at=row.lease_expires_at,
            engagement=engagement_of(row),
        )
        for row in rows
    ]


def release_leases(
    session: Session, *, owner: str, message_ids: Sequence[int] | None = None
) -> None:
    """Give back, in the caller's transaction, the leases ``owner`` holds on these messages
    (all of them when None) without trying them: they are due again at once, and the try
    each lease counted is taken back."""
    released = (
        update(Message)
        .where(Message.lease_owner == owner, IN_QUEUE)
        .values(lease_owner=None, lease_expires_at=None, attempts=Message.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    if message_ids is not None:
        released = released.where(Message.id.in_(list(message_ids)))
    session.execute(released)


async def give_back(
    database: Database, *, owner: str, message_ids: Sequence[int] | None = None
) -> bool:
    """:func:`release_leases` in a transaction of its own (not waited onto the disk: a lost
    release only means the lease runs out). False when it failed: the leases then run out
    instead, and the mail is claimed after that."""
    try:
        await database.write(
            partial(release_leases, owner=owner, message_ids=message_ids), durable=False
        )
    except Exception as exc:
        log.warning("giving leases back failed", error=repr(exc)[:300])
        return False
    return True
