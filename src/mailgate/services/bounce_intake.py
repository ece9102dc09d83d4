"""Recording what a received bounce or complaint report says about one of our messages.

The relay listener hands every message addressed to the bounce domain to :func:`take_report`
and answers 250 once it returns (it has committed by then). The report is tied to its
message by, in order: a VERP address among the SMTP recipients; a VERP address in the
returned copy's Return-Path; the returned copy's Message-ID, when exactly one message has it.

What is written, in one transaction:

- hard bounce: a ``bounce`` event of class ``hard``, the recipient ``bounced`` (with the
  remote reply), the message's final status when no recipient is pending any more, and the
  address suppressed for the account (``hard_bounce``);
- soft bounce: a ``bounce`` event of class ``soft``, nothing else;
- complaint (RFC 5965, any feedback type but ``not-spam``/``auth-failure``): a ``spam`` event
  and a suppression (``complaint``).

Only recipients of the message that were sent to count: an address the report names that is
not one of them is ignored, so a forged report cannot suppress an account's other addresses.
A report that names nobody applies to the message's only sent recipient, if it has one.

Idempotency: an event already stored for the same (message, recipient, type, bounce class)
means that part of the report was taken before, and it is skipped whole: a DSN received
twice records once. The message row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite
transactions are ``BEGIN IMMEDIATE``, one writer at a time), so two processes taking the same
report at once cannot both pass that check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.delivery.outcomes import final_status
from mailgate.delivery.queue import PENDING
from mailgate.domain import EventType, RecipientStatus
from mailgate.services.bounce_reports import (
    BounceClass,
    BouncedRecipient,
    Complaint,
    Report,
    ReportKind,
    parse_report,
)
from mailgate.services.suppressions import SuppressionReason, suppress
from mailgate.services.verp import Verp
from mailgate.store.models import Event, Message, MessageRecipient, utcnow

__all__ = ["IntakeResult", "MatchedBy", "Recorded", "take_report"]

DETAIL_MAX: Final = 1000
SUPPRESSION_DETAIL_MAX: Final = 500
NEVER_SENT: Final = frozenset({RecipientStatus.REJECTED.value, RecipientStatus.CANCELLED.value})


class MatchedBy(StrEnum):
    """How a report was tied to its message."""

    VERP = "verp"  # an SMTP recipient of the report
    RETURN_PATH = "return_path"  # the returned copy's Return-Path (or Postfix's sender field)
    MESSAGE_ID = "message_id"  # the returned copy's Message-ID header


class Recorded(StrEnum):
    HARD_BOUNCE = "hard"
    SOFT_BOUNCE = "soft"
    COMPLAINT = "complaint"


@dataclass(frozen=True)
class IntakeResult:
    """What taking one report did. ``message_id`` is the row id (None: no message found)."""

    report: ReportKind
    message_id: int | None = None
    matched_by: MatchedBy | None = None
    recorded: tuple[tuple[str, Recorded], ...] = ()  # (recipient, what): new events only


async def take_report(
    *, session: AsyncSession, raw: bytes, recipients: Sequence[str], verp: Verp
) -> IntakeResult:
    """Parse ``raw`` (received for ``recipients``) and record what it says, committing once
    at the end. Bad mail never raises; database errors do (the caller answers 451)."""
    report = parse_report(raw)
    found = await _find_message(session, report, recipients, verp)
    if found is None:
        await session.rollback()  # only reads happened: end the transaction
        return IntakeResult(report=report.kind)
    message_id, matched_by = found
    recorded: list[tuple[str, Recorded]] = []
    if report.kind is not ReportKind.UNKNOWN:
        message = await _lock_message(session, message_id)
        rows = await _recipients(session, message_id)
        if report.kind is ReportKind.BOUNCE:
            recorded = await _take_bounces(session, message, rows, report.recipients)
        elif report.complaint is not None:
            recorded = await _take_complaint(session, message, rows, report.complaint)
    await session.commit()
    return IntakeResult(
        report=report.kind,
        message_id=message_id,
        matched_by=matched_by,
        recorded=tuple(recorded),
    )


# -- finding the message ---------------------------------------------------------------------


async def _find_message(
    session: AsyncSession, report: Report, recipients: Sequence[str], verp: Verp
) -> tuple[int, MatchedBy] | None:
    for address in recipients:
        found = await _existing(session, verp.message_for(address))
        if found is not None:
            return found, MatchedBy.VERP
    if report.original_return_path:
        found = await _existing(session, verp.message_for(report.original_return_path))
        if found is not None:
            return found, MatchedBy.RETURN_PATH
    if report.original_message_id:
        query = (
            select(Message.id)
            .where(Message.message_id_header == report.original_message_id)
            .limit(2)
        )
        ids = list((await session.execute(query)).scalars())
        if len(ids) == 1:  # a Message-ID two messages share names neither for sure
            return ids[0], MatchedBy.MESSAGE_ID
    return None


async def _existing(session: AsyncSession, message_id: int | None) -> int | None:
    """The id when that message still exists (a valid VERP address may outlive its row)."""
    if message_id is None:
        return None
    query = select(Message.id).where(Message.id == message_id)
    found: int | None = (await session.execute(query)).scalar_one_or_none()
    return found


async def _lock_message(session: AsyncSession, message_id: int) -> Message:
    query = select(Message).where(Message.id == message_id).with_for_update()
    return (await session.execute(query)).scalar_one()


async def _recipients(session: AsyncSession, message_id: int) -> list[MessageRecipient]:
    query = (
        select(MessageRecipient)
        .where(MessageRecipient.message_id == message_id)
        .order_by(MessageRecipient.id)
    )
    return list((await session.execute(query)).scalars())


def _recipient_row(rows: Sequence[MessageRecipient], *named: str | None) -> MessageRecipient | None:
    """The sent recipient the report means: the first named address that is one (case
    aside), or, when the report names nobody, the message's only sent recipient."""
    sent = [row for row in rows if row.status not in NEVER_SENT]
    addresses = [address.lower() for address in named if address]
    if not addresses:
        return sent[0] if len(sent) == 1 else None
    by_address = {row.address.lower(): row for row in sent}
    return next((by_address[a] for a in addresses if a in by_address), None)


async def _already_recorded(
    session: AsyncSession,
    message_id: int,
    recipient: str,
    kind: EventType,
    bounce_class: BounceClass | None,
) -> bool:
    query = select(Event.id).where(
        Event.message_id == message_id,
        Event.recipient == recipient,
        Event.type == kind.value,
        Event.bounce_class.is_(None)
        if bounce_class is None
        else Event.bounce_class == bounce_class.value,
    )
    return (await session.execute(query.limit(1))).first() is not None


# -- bounces ---------------------------------------------------------------------------------


async def _take_bounces(
    session: AsyncSession,
    message: Message,
    rows: Sequence[MessageRecipient],
    entries: Sequence[BouncedRecipient],
) -> list[tuple[str, Recorded]]:
    recorded: list[tuple[str, Recorded]] = []
    now = utcnow()
    for entry in entries:
        row = _recipient_row(rows, entry.address, entry.original)
        if row is None:
            continue  # not a recipient of this message: a forged or misrouted report
        hard = entry.bounce_class is BounceClass.HARD
        what = Recorded.HARD_BOUNCE if hard else Recorded.SOFT_BOUNCE
        if (row.address, what) in recorded or await _already_recorded(
            session, message.id, row.address, EventType.BOUNCE, entry.bounce_class
        ):
            continue
        detail = (entry.diagnostic or entry.status or "")[:DETAIL_MAX] or None
        session.add(
            Event(
                account_id=message.account_id,
                message_id=message.id,
                type=EventType.BOUNCE.value,
                bounce_class=entry.bounce_class.value,
                recipient=row.address,
                provider_id=message.last_provider_id,
                smtp_code=entry.smtp_code,
                detail=detail,
                created_at=now,
            )
        )
        if hard:
            row.status = RecipientStatus.BOUNCED.value
            row.last_code = entry.smtp_code
            row.last_reply = detail
            row.updated_at = now
            await suppress(
                session=session,
                account_id=message.account_id,
                address=row.address,
                reason=SuppressionReason.HARD_BOUNCE,
                detail=(detail or "")[:SUPPRESSION_DETAIL_MAX] or None,
            )
        recorded.append((row.address, what))
    if any(what is Recorded.HARD_BOUNCE for _, what in recorded):
        _settle(message, rows, now)
    return recorded


def _settle(message: Message, rows: Sequence[MessageRecipient], now: datetime) -> None:
    """A message none of whose recipients is pending any more gets its final status."""
    statuses = [row.status for row in rows]
    if statuses and not any(status in PENDING for status in statuses):
        message.status = final_status(statuses).value
        message.updated_at = now


# -- complaints ------------------------------------------------------------------------------


async def _take_complaint(
    session: AsyncSession,
    message: Message,
    rows: Sequence[MessageRecipient],
    complaint: Complaint,
) -> list[tuple[str, Recorded]]:
    if not complaint.counts_as_spam:
        return []
    recorded: list[tuple[str, Recorded]] = []
    detail = complaint.feedback_type
    if complaint.user_agent:
        detail = f"{detail} ({complaint.user_agent})"[:DETAIL_MAX]
    named: Sequence[str | None] = complaint.original_rcpt_to or (None,)
    for address in named:
        row = _recipient_row(rows, address)
        if row is None or (row.address, Recorded.COMPLAINT) in recorded:
            continue
        if await _already_recorded(session, message.id, row.address, EventType.SPAM, None):
            continue
        session.add(
            Event(
                account_id=message.account_id,
                message_id=message.id,
                type=EventType.SPAM.value,
                recipient=row.address,
                provider_id=message.last_provider_id,
                detail=detail,
                created_at=utcnow(),
            )
        )
        await suppress(
            session=session,
            account_id=message.account_id,
            address=row.address,
            reason=SuppressionReason.COMPLAINT,
            detail=f"feedback-type: {complaint.feedback_type}"[:SUPPRESSION_DETAIL_MAX],
        )
        recorded.append((row.address, Recorded.COMPLAINT))
    return recorded
