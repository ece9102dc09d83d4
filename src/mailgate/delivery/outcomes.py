"""Recording what a delivery attempt did: recipient states, the message's state, events.

:func:`plan` works out, without I/O, every write one attempt needs; :func:`write` applies
the plans of many attempts with one statement per kind of write (the worker group-commits
outcomes as the API group-commits accepted mail).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from mailgate.delivery.queue import PENDING, DeliveryJob
from mailgate.delivery.retry_policy import RetryPolicy
from mailgate.delivery.smtp_pool import RecipientResult
from mailgate.domain import EventType, MessageStatus, Outcome, RecipientStatus
from mailgate.services.bounce_reports import BounceClass
from mailgate.services.suppressions import SuppressionReason, add_suppressed
from mailgate.store.bulk import Batch, insert_batch, update_batch
from mailgate.store.models import Event, Message, MessageRecipient, table_of

__all__ = [
    "THROTTLE_DELAY",
    "Attempt",
    "OutcomePlan",
    "OutcomeWrites",
    "final_status",
    "plan",
    "prepare_writes",
    "write",
]

THROTTLE_DELAY: Final = timedelta(seconds=1)  # every provider at its quota: look again soon
REPLY_MAX: Final = 1000


def final_status(statuses: Sequence[str]) -> MessageStatus:
    """The status of a message none of whose recipients is pending any more."""
    kinds = set(statuses)
    if kinds <= {RecipientStatus.DELIVERED.value}:
        return MessageStatus.DELIVERED
    if RecipientStatus.DELIVERED.value in kinds:
        return MessageStatus.PARTIAL
    if RecipientStatus.BOUNCED.value in kinds:
        return MessageStatus.BOUNCED
    if kinds <= {RecipientStatus.REJECTED.value}:
        return MessageStatus.REJECTED
    if kinds <= {RecipientStatus.CANCELLED.value}:
        return MessageStatus.CANCELLED
    return MessageStatus.FAILED


@dataclass(frozen=True)
class Attempt:
    """What sending one message did (or why it was not sent)."""

    results: tuple[RecipientResult, ...]
    provider_id: int | None  # the provider that took (or last refused) it
    throttled: bool = False  # no provider could take it now (quota or rest): not a failure
    expired: bool = False  # past its expiry: not sent, every pending recipient fails
    given_back: bool = False  # not tried: back to the queue, for another worker to claim


@dataclass
class OutcomePlan:
    """Every write for one attempt."""

    account_id: int
    message: dict[str, object]
    recipients: list[dict[str, object]] = field(default_factory=list)  # results of this try
    expired: list[dict[str, object]] = field(default_factory=list)  # status only
    events: list[dict[str, object]] = field(default_factory=list)
    bounced: list[tuple[str, str]] = field(default_factory=list)  # (address, reply)


def plan(job: DeliveryJob, attempt: Attempt, *, now: datetime, retry: RetryPolicy) -> OutcomePlan:
    def event(kind: EventType, recipient: str, code: int | None, detail: str | None) -> None:
        outcome.events.append(
            {
                "account_id": job.account_id,
                "message_id": job.message_id,
                "type": kind.value,
                "recipient": recipient,
                "provider_id": attempt.provider_id,
                "smtp_code": code,
                "detail": detail,
                # a 5xx answered during delivery is permanent (asynchronous DSNs may be soft)
                "bounce_class": BounceClass.HARD.value if kind is EventType.BOUNCE else None,
                "created_at": now,
            }
        )

    outcome = OutcomePlan(
        account_id=job.account_id,
        message={
            "b_id": job.message_id,
            "b_status": None,  # None: unchanged
            "b_due_at": None,
            "b_last_provider_id": attempt.provider_id,
            "b_attempts": -1 if attempt.given_back else 0,  # its lease counted a try
            "b_now": now,
        },
    )
    if attempt.given_back:
        return outcome
    statuses = dict.fromkeys(job.recipients, RecipientStatus.QUEUED.value)
    soft: list[RecipientResult] = []
    for result in attempt.results:
        if result.recipient not in statuses:
            continue
        reply = result.reply[:REPLY_MAX]
        if result.outcome is Outcome.DELIVERED:
            status: str | None = RecipientStatus.DELIVERED.value
            event(EventType.DELIVERED, result.recipient, result.code, reply)
        elif result.outcome is Outcome.HARD:
            status = RecipientStatus.BOUNCED.value
            event(EventType.BOUNCE, result.recipient, result.code, reply)
            outcome.bounced.append((result.recipient, result.reply[:500]))
        else:
            status = None  # decided below, with the retry schedule
            soft.append(result)
        if status is not None:
            statuses[result.recipient] = status
        outcome.recipients.append(
            {
                "b_message_id": job.message_id,
                "b_address": result.recipient,
                "b_status": status,
                "b_attempts": 0 if attempt.throttled else 1,
                "b_code": result.code,
                "b_reply": reply,
                "b_now": now,
            }
        )

    if attempt.throttled:
        outcome.message["b_due_at"] = now + THROTTLE_DELAY
        return outcome  # statuses stay queued or deferred: nothing was tried

    if soft or attempt.expired:
        retry_at = (
            None
            if attempt.expired
            else retry.next_attempt(failures=job.attempts, now=now, expires_at=job.expires_at)
        )
        status = (RecipientStatus.FAILED if retry_at is None else RecipientStatus.DEFERRED).value
        kind = EventType.FAILED if retry_at is None else EventType.DEFERRED
        by_address = {row["b_address"]: row for row in outcome.recipients}
        for result in soft:
            by_address[result.recipient]["b_status"] = status
            statuses[result.recipient] = status
            event(kind, result.recipient, result.code, result.reply[:REPLY_MAX])
        if attempt.expired:
            for address in job.recipients:
                statuses[address] = status
                outcome.expired.append(
                    {
                        "b_message_id": job.message_id,
                        "b_address": address,
                        "b_status": status,
                        "b_now": now,
                    }
                )
                # the last reply is in the row; the event repeats it (see ``write``)
                event(kind, address, None, None)
        if retry_at is not None:
            outcome.message["b_due_at"] = retry_at

    if any(s in PENDING for s in statuses.values()):
        outcome.message["b_status"] = MessageStatus.DEFERRED.value
    else:
        outcome.message["b_status"] = final_status([*job.settled, *statuses.values()]).value
    return outcome


_m = table_of(Message).c
_r = table_of(MessageRecipient).c
_UPDATE_MESSAGE: Final = (
    update(table_of(Message))
    .where(_m.id == bindparam("b_id"))
    .values(
        status=func.coalesce(bindparam("b_status", type_=_m.status.type), _m.status),
        due_at=func.coalesce(bindparam("b_due_at", type_=_m.due_at.type), _m.due_at),
        last_provider_id=func.coalesce(
            bindparam("b_last_provider_id", type_=_m.last_provider_id.type), _m.last_provider_id
        ),
        attempts=_m.attempts + bindparam("b_attempts"),
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("b_now"),
    )
)
_UPDATE_RECIPIENT: Final = (
    update(table_of(MessageRecipient))
    .where(_r.message_id == bindparam("b_message_id"), _r.address == bindparam("b_address"))
    .values(
        status=func.coalesce(bindparam("b_status", type_=_r.status.type), _r.status),
        attempts=_r.attempts + bindparam("b_attempts"),
        last_code=bindparam("b_code"),
        last_reply=bindparam("b_reply"),
        updated_at=bindparam("b_now"),
    )
)
_EXPIRE_RECIPIENT: Final = (
    update(table_of(MessageRecipient))
    .where(_r.message_id == bindparam("b_message_id"), _r.address == bindparam("b_address"))
    .values(status=bindparam("b_status"), updated_at=bindparam("b_now"))
)


@dataclass(frozen=True)
class OutcomeWrites:
    """The statements :func:`write` runs for some plans, every row ready for the driver
    (:func:`prepare_writes`)."""

    batches: tuple[Batch, ...]


def prepare_writes(dialect: Dialect, plans: Sequence[OutcomePlan]) -> OutcomeWrites | None:
    """The rows of ``plans`` made ready before their transaction; None when one of them
    needs a read first (expired mail: its events repeat the last replies in the table)."""
    if any(p.expired for p in plans):
        return None
    return OutcomeWrites(_batches(dialect, plans))


def write(
    session: Session,
    plans: Sequence[OutcomePlan],
    *,
    now: datetime,
    prepared: OutcomeWrites | None = None,
) -> None:
    """Apply ``plans`` in the caller's transaction (see :meth:`Database.write`), with the
    rows ``prepared`` for them if given."""
    if not plans:
        return
    if prepared is None:
        if any(p.expired for p in plans):  # their failed events repeat the last replies
            _fill_last_replies(session, plans)
        prepared = OutcomeWrites(_batches(session.get_bind().dialect, plans))
    for batch in prepared.batches:
        batch.run(session)
    for p in plans:
        for address, reply in p.bounced:
            add_suppressed(session, p.account_id, address, SuppressionReason.HARD_BOUNCE, reply)


def _batches(dialect: Dialect, plans: Sequence[OutcomePlan]) -> tuple[Batch, ...]:
    return (
        update_batch(dialect, _EXPIRE_RECIPIENT, [row for p in plans for row in p.expired]),
        update_batch(dialect, _UPDATE_RECIPIENT, [row for p in plans for row in p.recipients]),
        update_batch(dialect, _UPDATE_MESSAGE, [p.message for p in plans]),
        insert_batch(dialect, table_of(Event), [row for p in plans for row in p.events]),
    )


def _fill_last_replies(session: Session, plans: Sequence[OutcomePlan]) -> None:
    wanted = {(row["b_message_id"], row["b_address"]) for p in plans for row in p.expired}
    message_ids = {message_id for message_id, _ in wanted}
    rows = session.execute(
        select(_r.message_id, _r.address, _r.last_code, _r.last_reply).where(
            _r.message_id.in_(message_ids)
        )
    )
    last = {(m, a): (code, reply) for m, a, code, reply in rows}
    for p in plans:
        for event in p.events:
            key = (event["message_id"], event["recipient"])
            if key in wanted and event["detail"] is None:
                event["smtp_code"], event["detail"] = last.get(key, (None, None))
