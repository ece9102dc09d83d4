"""Accepting mail into the queue, and reading, searching and cancelling it.

A message is accepted only when its row, its MIME, its recipients and its first events are
committed in one transaction: whatever answers 2xx or 250 after :func:`accept` returns can
survive a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import formataddr, quote
from functools import lru_cache, partial
from typing import Any, Final

from sqlalchemy import Table, bindparam, func, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from mailgate.config import Settings
from mailgate.delivery.mime import BuiltMessage, build_message, parse_raw_message
from mailgate.delivery.queue import DeliveryJob, Handoff, Lease, engagement_of, give_back
from mailgate.domain import (
    EventType,
    Mailbox,
    MessageDraft,
    MessageStatus,
    RecipientKind,
    RecipientStatus,
)
from mailgate.errors import Conflict, Invalid, Issue, MailgateError, NotFound, PayloadTooLarge
from mailgate.i18n import N_
from mailgate.services.providers import provider_by_ref
from mailgate.services.suppressions import suppressed_among
from mailgate.services.tracking import TrackingChoice, account_defaults, resolve
from mailgate.store.bulk import Batch, insert_batch
from mailgate.store.db import Database
from mailgate.store.group_commit import GroupCommit
from mailgate.store.models import (
    QUEUED_STATUSES,
    Event,
    Message,
    MessageContent,
    MessageRecipient,
    MessageTag,
    as_loaded,
    table_of,
    time_ordered_token,
    utcnow,
)

__all__ = [
    "PUBLIC_ID_PREFIX",
    "AcceptBatcher",
    "Accepted",
    "MessageDetail",
    "MessagePage",
    "PreparedAccept",
    "Submission",
    "accept",
    "accept_groups",
    "accepted_of",
    "cancel_message",
    "get_message",
    "list_messages",
    "message_of",
    "prepare_accept",
    "recipients_of",
    "submission_from_draft",
    "submission_from_raw",
    "submission_from_smtp",
    "write_accepted",
]

PUBLIC_ID_PREFIX: Final = "msg_"
CANCELLABLE: Final = frozenset(QUEUED_STATUSES)


@dataclass(frozen=True)
class Submission:
    """One message ready to accept: its MIME and what the caller said about it."""

    built: BuiltMessage
    from_header: str
    subject: str
    recipients: tuple[tuple[str, RecipientKind], ...]
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    provider_ref: str | None = None
    send_at: datetime | None = None
    # open/click tracking and transactional-only, as the request said (None: the default)
    tracking: TrackingChoice = field(default_factory=TrackingChoice)


@lru_cache(maxsize=4096)  # most mail comes from a few senders
def _from_header(sender: Mailbox) -> str:
    """The sender as stored for display: ``formataddr`` (RFC 2047 names), or, for an address
    that is not ASCII (SMTPUTF8), the name and address as they are."""
    try:
        return formataddr((sender.name or "", sender.address))
    except UnicodeEncodeError:
        return f'"{quote(sender.name)}" <{sender.address}>' if sender.name else sender.address


def _kinds(
    to: Sequence[Mailbox], cc: Sequence[Mailbox], bcc: Sequence[Mailbox]
) -> tuple[tuple[str, RecipientKind], ...]:
    seen: set[str] = set()
    result: list[tuple[str, RecipientKind]] = []
    for kind, boxes in ((RecipientKind.TO, to), (RecipientKind.CC, cc), (RecipientKind.BCC, bcc)):
        for box in boxes:
            if box.address.lower() not in seen:
                seen.add(box.address.lower())
                result.append((box.address, kind))
    return tuple(result)


_NO_CHOICE: Final = TrackingChoice()  # the accounts' defaults


@dataclass(frozen=True)
class _Options:
    tags: tuple[str, ...]
    metadata: Mapping[str, str]
    provider_ref: str | None
    send_at: datetime | None
    tracking: TrackingChoice


def _submission(
    built: BuiltMessage,
    sender: Mailbox,
    subject: str,
    recipients: tuple[Sequence[Mailbox], Sequence[Mailbox], Sequence[Mailbox]],
    options: _Options,
) -> Submission:
    return Submission(
        built=built,
        from_header=_from_header(sender),
        subject=subject,
        recipients=_kinds(*recipients),
        tags=options.tags,
        metadata=dict(options.metadata),
        provider_ref=options.provider_ref,
        send_at=options.send_at,
        tracking=options.tracking,
    )


def submission_from_draft(
    draft: MessageDraft,
    *,
    settings: Settings,
    tags: Sequence[str] = (),
    metadata: Mapping[str, str] | None = None,
    provider_ref: str | None = None,
    send_at: datetime | None = None,
    tracking: TrackingChoice = _NO_CHOICE,
) -> Submission:
    built = build_message(draft, message_id_domain=settings.message_id_domain)
    if len(built.raw) > settings.message_max_bytes:
        raise PayloadTooLarge(
            Issue(
                "message",
                N_("The message must not exceed {limit} bytes."),
                "too_large",
                {"limit": settings.message_max_bytes},
            )
        )
    options = _Options(tuple(tags), metadata or {}, provider_ref, send_at, tracking)
    recipients = (draft.to, draft.cc, draft.bcc)
    return _submission(built, draft.sender, draft.subject, recipients, options)


def submission_from_raw(
    raw: bytes,
    *,
    settings: Settings,
    tags: Sequence[str] = (),
    metadata: Mapping[str, str] | None = None,
    provider_ref: str | None = None,
    send_at: datetime | None = None,
    tracking: TrackingChoice = _NO_CHOICE,
) -> Submission:
    built, summary = parse_raw_message(
        raw, max_bytes=settings.message_max_bytes, message_id_domain=settings.message_id_domain
    )
    options = _Options(tuple(tags), metadata or {}, provider_ref, send_at, tracking)
    recipients = (summary.to, summary.cc, summary.bcc)
    return _submission(built, summary.sender, summary.subject, recipients, options)


def submission_from_smtp(
    raw: bytes,
    *,
    settings: Settings,
    mail_from: str,
    recipients: Sequence[str],
    trace: str | None = None,
) -> Submission:
    """A message relayed over SMTP: the envelope (MAIL FROM, RCPT TO) says where it goes;
    recipients the headers do not name are Bcc. ``trace``: the relay's ``Received:`` line."""
    built, summary = parse_raw_message(
        raw,
        max_bytes=settings.message_max_bytes,
        message_id_domain=settings.message_id_domain,
        trace=trace,
        header_recipients=False,
    )
    listed: dict[str, RecipientKind] = {}
    for kind, boxes in ((RecipientKind.TO, summary.to), (RecipientKind.CC, summary.cc)):
        for box in boxes:
            listed.setdefault(box.address.lower(), kind)
    seen: set[str] = set()
    kinds: list[tuple[str, RecipientKind]] = []
    for address in recipients:
        if address.lower() not in seen:
            seen.add(address.lower())
            kinds.append((address, listed.get(address.lower(), RecipientKind.BCC)))
    envelope_from = mail_from if mail_from != "<>" else ""
    addresses = (envelope_from, *(address for address, _ in kinds))
    built = replace(
        built,
        envelope_from=envelope_from,
        recipients=tuple(address for address, _ in kinds),
        smtputf8=built.smtputf8 or not all(a.isascii() for a in addresses),
    )
    return Submission(
        built=built,
        from_header=_from_header(summary.sender),
        subject=summary.subject,
        recipients=tuple(kinds),
    )


@dataclass(frozen=True)
class Accepted:
    message: Message
    accepted: tuple[str, ...]  # recipients queued for delivery
    rejected: tuple[str, ...]  # suppressed recipients: never sent


async def accept(
    *,
    database: Database,
    account_id: int,
    submissions: Sequence[Submission],
    settings: Settings,
) -> list[Accepted]:
    """Commit every submission (all or none) and return what was queued and what refused."""

    def transaction(session: Session) -> list[Accepted]:
        [accepted], _ = accept_groups(
            session, groups=[(account_id, submissions)], settings=settings
        )
        return accepted

    return await database.write(transaction)


def _provider_ids(
    session: Session, account_id: int, submissions: Sequence[Submission]
) -> dict[str, int]:
    providers: dict[str, int] = {}
    for index, submission in enumerate(submissions):
        ref = submission.provider_ref
        if ref is not None and ref not in providers:
            try:
                found = provider_by_ref(session, account_id=account_id, ref=ref)
            except NotFound as exc:
                prefix = f"{index}." if len(submissions) > 1 else ""
                raise Invalid.field(
                    f"{prefix}provider_id", N_("No provider with id {id}."), id=ref[:64]
                ) from exc
            providers[ref] = found.id
    return providers


def accept_groups(
    session: Session,
    *,
    groups: Sequence[tuple[int, Sequence[Submission]]],
    settings: Settings,
    lease: Lease | None = None,
) -> tuple[list[list[Accepted]], list[DeliveryJob]]:
    """Write the submissions of several callers (account id, submissions) in the caller's
    transaction (see :meth:`Database.write`): one statement per table for all of them, so
    one commit (one fsync) answers them all. The answers to each caller, in order, and the
    jobs of the mail leased (see :func:`prepare_accept`).

    :class:`AcceptBatcher` does the same with the reads and the making of the rows in a
    transaction of their own, before the writes (:meth:`Database.prepare_and_write`)."""
    prepared = prepare_accept(session, groups=groups, settings=settings, lease=lease)
    return accepted_of(prepared, write_accepted(session, prepared))


@dataclass(frozen=True)
class PreparedAccept:
    """What accepting a group writes, every row ready for the driver (:func:`prepare_accept`).

    The rows of the other tables name their message by its public id until
    :func:`write_accepted` knows the ids the database gave."""

    pending: list[_Pending]
    sizes: tuple[int, ...]  # submissions per caller, in order
    now: datetime
    messages: Batch
    children: tuple[Batch, ...]  # contents, tags, recipients, events


def prepare_accept(
    session: Session,
    *,
    groups: Sequence[tuple[int, Sequence[Submission]]],
    settings: Settings,
    lease: Lease | None = None,
) -> PreparedAccept:
    """Look up what accepting the submissions depends on (suppressed recipients, the
    accounts' tracking defaults, the providers named) and make every row; writes nothing.

    With a ``lease``, up to ``lease.limit`` of the messages due now are to be inserted
    already leased to its owner and returned as jobs (:func:`accepted_of`), to be handed to
    that worker in memory once the transaction has committed.

    On SQLite it runs in a transaction of its own, before the writing one
    (:meth:`Database.prepare_and_write`): it sees what was committed before the callers'
    requests arrived, as one transaction would, and a suppression added in between counts
    as added after the mail was accepted."""
    now = utcnow()
    expiry = timedelta(hours=settings.message_expiry_hours)
    # One object for a value many rows share: the batch converts it once (store.bulk).
    expires_now = now + expiry
    until_now = now + timedelta(seconds=lease.seconds) if lease is not None else None
    wanted: dict[int, set[str]] = {}
    for account_id, submissions in groups:
        wanted.setdefault(account_id, set()).update(
            address for s in submissions for address, _ in s.recipients
        )
    suppressed = {
        account_id: frozenset(suppressed_among(session, account_id, addresses))
        for account_id, addresses in wanted.items()
    }
    engagement_defaults = account_defaults(session, wanted)
    leases_left = lease.limit if lease is not None else 0
    pending: list[_Pending] = []
    for account_id, submissions in groups:
        providers = _provider_ids(session, account_id, submissions)
        refused_here = suppressed[account_id]
        for submission in submissions:
            refused = tuple(a for a, _ in submission.recipients if a in refused_here)
            scheduled = submission.send_at is not None and submission.send_at > now
            if len(refused) == len(submission.recipients):
                status = MessageStatus.REJECTED
            else:
                status = MessageStatus.SCHEDULED if scheduled else MessageStatus.QUEUED
            due = submission.send_at if scheduled and submission.send_at else now
            owner, until = None, None
            if lease is not None and status is MessageStatus.QUEUED and leases_left > 0:
                owner, until = lease.owner, until_now
                leases_left -= 1
            engagement = resolve(submission.tracking, engagement_defaults[account_id])
            row: dict[str, Any] = {  # by attribute name (``meta``: the column ``metadata``)
                "public_id": PUBLIC_ID_PREFIX + time_ordered_token(),
                "account_id": account_id,
                "status": status.value,
                "provider_id": providers.get(submission.provider_ref or ""),
                "last_provider_id": None,
                "envelope_from": submission.built.envelope_from,
                "from_header": submission.from_header,
                "subject": submission.subject,
                "message_id_header": submission.built.message_id,
                "smtputf8": submission.built.smtputf8,
                "size": len(submission.built.raw),
                "tags": list(submission.tags),
                "meta": dict(submission.metadata),
                "attempts": 1 if owner is not None else 0,
                "send_at": submission.send_at,
                "due_at": due,
                "expires_at": expires_now if due is now else due + expiry,
                "lease_owner": owner,
                "lease_expires_at": until,
                "track_opens": engagement.track_opens,
                "track_clicks": engagement.track_clicks,
                "list_unsubscribe": engagement.list_unsubscribe,
                "created_at": now,
                "updated_at": now,
                "purged_at": None,
            }
            pending.append(_Pending(row, submission, refused))
    dialect = session.get_bind().dialect
    return PreparedAccept(
        pending=pending,
        sizes=tuple(len(submissions) for _, submissions in groups),
        now=now,
        messages=insert_batch(
            dialect,
            _MESSAGES,
            [{column: p.row[attr] for column, attr in _MESSAGE_FIELDS} for p in pending],
        ),
        children=tuple(
            insert_batch(dialect, table, rows, keyed=("message_id",))
            for table, rows in _children(pending, now)
        ),
    )


def write_accepted(session: Session, prepared: PreparedAccept) -> dict[str, int]:
    """Insert the prepared rows in the caller's transaction; the new messages' ids by their
    public ids. Nothing here but the driver's work and the ids' lookup: on SQLite this is
    all the write lock is held for."""
    prepared.messages.run(session)
    public_ids = [p.row["public_id"] for p in prepared.pending]
    found = session.execute(_IDS_OF, {"public_ids": public_ids})
    ids: dict[str, int] = {public_id: id_ for public_id, id_ in found}
    for batch in prepared.children:
        batch.keyed("message_id", ids).run(session)
    return ids


def accepted_of(
    prepared: PreparedAccept, ids: Mapping[str, int]
) -> tuple[list[list[Accepted]], list[DeliveryJob]]:
    """The answer to each caller, in order, and the jobs of the mail leased."""
    now = prepared.now
    # Answered from, never added to a session: built without the unit of work's bookkeeping.
    accepted = [
        Accepted(
            message=as_loaded(Message, {**p.row, "id": ids[p.row["public_id"]]}),
            accepted=tuple(a for a, _ in p.submission.recipients if a not in p.refused),
            rejected=p.refused,
        )
        for p in prepared.pending
    ]
    answers: list[list[Accepted]] = []
    start = 0
    for size in prepared.sizes:
        answers.append(accepted[start : start + size])
        start += size
    jobs = [
        DeliveryJob(
            message_id=a.message.id,
            account_id=a.message.account_id,
            explicit_provider_id=a.message.provider_id,
            envelope_from=a.message.envelope_from,
            recipients=a.accepted,
            settled=(RecipientStatus.REJECTED.value,) * len(a.rejected),
            raw=p.submission.built.raw,
            smtputf8=a.message.smtputf8,
            attempts=a.message.attempts,
            expires_at=a.message.expires_at,
            lease_expires_at=a.message.lease_expires_at or now,
            engagement=engagement_of(a.message),
        )
        for p, a in zip(prepared.pending, accepted, strict=True)
        if a.message.lease_owner is not None
    ]
    return answers, jobs


@dataclass(frozen=True)
class _Pending:
    row: dict[str, Any]  # the message's values by attribute, but its id
    submission: Submission
    refused: tuple[str, ...]


_MESSAGES: Final = table_of(Message)
# (column, attribute) of every column the insert writes (``metadata`` is the attribute ``meta``)
_MESSAGE_FIELDS: Final = tuple(
    (column.key, inspect(Message).get_property_by_column(column).key)
    for column in _MESSAGES.columns
    if column.key != "id"
)


# Built once, as suppressions.suppressed_among's query is.
_IDS_OF: Final = select(_MESSAGES.c.public_id, _MESSAGES.c.id).where(
    _MESSAGES.c.public_id.in_(bindparam("public_ids", expanding=True))
)


def _children(
    pending: Sequence[_Pending], now: datetime
) -> list[tuple[Table, list[dict[str, object]]]]:
    """The rows of the other tables, each naming its message by public id."""
    contents: list[dict[str, object]] = []
    tags: list[dict[str, object]] = []
    recipients: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    for p in pending:
        row = p.row
        message_id = row["public_id"]
        contents.append({"message_id": message_id, "raw": p.submission.built.raw})
        tags += [{"message_id": message_id, "tag": tag} for tag in dict.fromkeys(row["tags"])]
        for address, kind in p.submission.recipients:
            refused = address in p.refused
            status = RecipientStatus.REJECTED if refused else RecipientStatus.QUEUED
            recipients.append(
                {
                    "message_id": message_id,
                    "address": address,
                    "kind": kind.value,
                    "status": status.value,
                    "attempts": 0,
                    "last_code": None,
                    "last_reply": None,
                    "updated_at": now,
                }
            )
            if refused:
                events.append(_event(row, EventType.REJECT, now, address, "suppressed"))
        events.append(_event(row, EventType.PROCESSED, now))
    return [
        (table_of(MessageContent), contents),
        (table_of(MessageTag), tags),
        (table_of(MessageRecipient), recipients),
        (table_of(Event), events),
    ]


def _event(
    row: Mapping[str, Any],
    kind: EventType,
    now: datetime,
    recipient: str | None = None,
    detail: str | None = None,
) -> dict[str, object]:
    return {
        "account_id": row["account_id"],
        "message_id": row["public_id"],  # the id, once known (see write_accepted)
        "type": kind.value,
        "recipient": recipient,
        "provider_id": None,
        "smtp_code": None,
        "detail": detail,
        "created_at": now,
    }


@dataclass(frozen=True)
class MessageDetail:
    message: Message
    recipients: list[MessageRecipient]
    events: list[Event]


async def message_of(session: AsyncSession, account_id: int, public_id: str) -> Message:
    """The account's message ``public_id``; NotFound when there is none."""
    query = select(Message).where(Message.account_id == account_id, Message.public_id == public_id)
    message = (await session.execute(query)).scalar_one_or_none()
    if message is None:
        raise NotFound(N_("No message with id {id}."), id=public_id[:64])
    return message


async def get_message(*, session: AsyncSession, account_id: int, public_id: str) -> MessageDetail:
    message = await message_of(session, account_id, public_id)
    recipients = (
        await session.execute(
            select(MessageRecipient)
            .where(MessageRecipient.message_id == message.id)
            .order_by(MessageRecipient.id)
        )
    ).scalars()
    events = (
        await session.execute(
            select(Event).where(Event.message_id == message.id).order_by(Event.id)
        )
    ).scalars()
    return MessageDetail(message=message, recipients=list(recipients), events=list(events))


async def recipients_of(
    *, session: AsyncSession, message_ids: Sequence[int]
) -> dict[int, list[MessageRecipient]]:
    """The recipients of each given message (one query), in the order they were given."""
    found: dict[int, list[MessageRecipient]] = {i: [] for i in message_ids}
    if not message_ids:
        return found
    rows = await session.execute(
        select(MessageRecipient)
        .where(MessageRecipient.message_id.in_(list(message_ids)))
        .order_by(MessageRecipient.id)
    )
    for row in rows.scalars():
        found[row.message_id].append(row)
    return found


@dataclass(frozen=True)
class MessagePage:
    items: list[Message]
    has_more: bool


async def list_messages(
    *,
    session: AsyncSession,
    account_id: int,
    limit: int,
    before_id: int | None = None,
    statuses: Sequence[MessageStatus] = (),
    tag: str | None = None,
    recipient: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    subject_contains: str | None = None,
    sender_contains: str | None = None,
) -> MessagePage:
    """Newest first; page with ``before_id`` (the last id of the previous page).
    ``*_contains`` match case-insensitively anywhere in the subject or the From header."""
    query = select(Message).where(Message.account_id == account_id)
    if subject_contains:
        query = query.where(
            func.lower(Message.subject).contains(subject_contains.lower(), autoescape=True)
        )
    if sender_contains:
        query = query.where(
            func.lower(Message.from_header).contains(sender_contains.lower(), autoescape=True)
        )
    if before_id is not None:
        query = query.where(Message.id < before_id)
    if statuses:
        query = query.where(Message.status.in_([s.value for s in statuses]))
    if since is not None:
        query = query.where(Message.created_at >= since)
    if until is not None:
        query = query.where(Message.created_at < until)
    if recipient is not None:
        query = query.where(
            Message.id.in_(
                select(MessageRecipient.message_id).where(MessageRecipient.address == recipient)
            )
        )
    if tag is not None:
        query = query.where(
            Message.id.in_(select(MessageTag.message_id).where(MessageTag.tag == tag))
        )
    rows = list(
        (await session.execute(query.order_by(Message.id.desc()).limit(limit + 1))).scalars()
    )
    return MessagePage(items=rows[:limit], has_more=len(rows) > limit)


async def cancel_message(*, session: AsyncSession, account_id: int, public_id: str) -> Message:
    """Cancel scheduled or queued mail that no worker is sending right now."""
    message = await message_of(session, account_id, public_id)
    now = utcnow()
    result = await session.execute(
        update(Message)
        .where(
            Message.id == message.id,
            Message.status.in_(list(CANCELLABLE)),
            (Message.lease_expires_at.is_(None)) | (Message.lease_expires_at < now),
        )
        .values(status=MessageStatus.CANCELLED.value, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        leased = message.lease_expires_at is not None and message.lease_expires_at >= now
        status = "sending" if leased else message.status
        await session.rollback()  # expires ``message``: read what the error says before
        raise Conflict(N_("The message cannot be cancelled: it is {status}."), status=status)
    await session.execute(
        update(MessageRecipient)
        .where(
            MessageRecipient.message_id == message.id,
            MessageRecipient.status.in_(
                [RecipientStatus.QUEUED.value, RecipientStatus.DEFERRED.value]
            ),
        )
        .values(status=RecipientStatus.CANCELLED.value, updated_at=now)
    )
    session.add(
        Event(
            account_id=account_id,
            message_id=message.id,
            type=EventType.CANCELLED.value,
            created_at=now,
        )
    )
    await session.commit()
    await session.refresh(message)
    return message


_Group = tuple[int, Sequence[Submission]]  # one caller's: account id, submissions


class AcceptBatcher:
    """Group commit of accepted mail (:class:`~mailgate.store.group_commit.GroupCommit`):
    concurrent callers share one transaction and one fsync; each is answered only once the
    transaction holding its messages has committed; one caller's bad input fails only it.

    With a ``handoff`` (the worker of this process, or the delivering process's: see
    :mod:`mailgate.delivery.coordination`), mail due now is committed already leased to that
    worker and handed to it: no claim. After each commit
    that queued mail for another worker, ``wake`` nudges the delivering process (once per
    group, not per message: each nudge is a system call here and a wake-up there)."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        max_batch: int = 200,
        handoff: Handoff | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.handoff = handoff
        self.wake: Callable[[], None] = lambda: None  # set by the node once delivery is wired
        self._group: GroupCommit[_Group, list[Accepted]] = GroupCommit(
            self._commit, max_batch=max_batch, isolate=MailgateError
        )

    async def accept(self, account_id: int, submissions: Sequence[Submission]) -> list[Accepted]:
        return await self._group.submit((account_id, submissions))

    async def _commit(self, groups: Sequence[_Group]) -> list[list[Accepted]]:
        lease = self.handoff.lease() if self.handoff is not None else None
        # The reads and the rows first: the write lock is held for the writes alone.
        prepared, ids = await self.database.prepare_and_write(
            partial(prepare_accept, groups=groups, settings=self.settings, lease=lease),
            write_accepted,
        )
        answers, jobs = accepted_of(prepared, ids)
        taken = len(jobs)
        if jobs and self.handoff is not None and lease is not None:
            refused = self.handoff.adopt(jobs)
            if refused:  # nobody heard of them: due again now, not when the leases run out
                taken -= len(refused)  # (the mail is committed: a failure here is not the callers')
                await give_back(
                    self.database, owner=lease.owner, message_ids=[j.message_id for j in refused]
                )
        if taken < sum(len(submissions) for _, submissions in groups):
            self.wake()  # mail left in the table (or scheduled): the deliverer looks now
        return answers
