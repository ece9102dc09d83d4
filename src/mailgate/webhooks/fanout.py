"""From the events table to the outbox: one delivery row per (webhook, event) it subscribes to.

The fan-out tails the events table by id (a cursor row), so the mail paths that write events
do nothing for webhooks: no query, no row, no cost when an account has none. When no webhook
is enabled anywhere, a pass only moves the cursor to the newest id.

On PostgreSQL ids are taken when rows are inserted but become visible when their transaction
commits, so a lower id can appear after a higher one was read. Ids skipped over are kept as
*gaps* (``[low, high, first_seen]``) and looked for again on every pass until
``webhook_gap_hold_seconds`` have passed (a gap still empty then was a rolled-back insert, or
a row deleted). SQLite has one writer: ids there become visible in order. Several dispatchers
may run; the cursor row is locked (``FOR UPDATE SKIP LOCKED``), so one fans out at a time and
the others skip the pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from mailgate.store.bulk import dialect_insert
from mailgate.store.models import (
    WEBHOOK_PENDING,
    Event,
    Message,
    MessageRecipient,
    Provider,
    Webhook,
    WebhookDelivery,
    WebhookFanoutCursor,
    table_of,
    time_ordered_token,
)
from mailgate.webhooks.payloads import EventFacts, build_payload

__all__ = ["CURSOR_ID", "DELIVERY_PREFIX", "Gap", "fan_out", "fill_gaps"]

CURSOR_ID: Final = 1
DELIVERY_PREFIX: Final = "whmsg_"
MAX_GAPS: Final = 1000  # ranges kept; the oldest are given up first


@dataclass(frozen=True)
class Gap:
    low: int
    high: int
    seen: float  # POSIX time it was first skipped over

    def as_json(self) -> list[Any]:
        return [self.low, self.high, self.seen]


@dataclass(frozen=True)
class _Subscriber:
    id: int
    account_id: int
    flavour: str
    event_types: frozenset[str]
    created_at: datetime


def fill_gaps(
    gaps: Sequence[Gap], last_id: int, read: Iterable[int], now: float
) -> tuple[list[Gap], int]:
    """The gaps left after reading the ids ``read`` (sorted), and the new last id.

    Ids read inside a gap split it; ids read past ``last_id`` open new gaps for the ids
    skipped before them."""
    kept = list(gaps)
    last = last_id
    for event_id in read:
        if event_id > last:
            if event_id > last + 1:
                kept.append(Gap(last + 1, event_id - 1, now))
            last = event_id
            continue
        split: list[Gap] = []
        for gap in kept:
            if gap.low <= event_id <= gap.high:
                if gap.low < event_id:
                    split.append(Gap(gap.low, event_id - 1, gap.seen))
                if event_id < gap.high:
                    split.append(Gap(event_id + 1, gap.high, gap.seen))
            else:
                split.append(gap)
        kept = split
    kept.sort(key=lambda gap: gap.low)
    return kept[-MAX_GAPS:], last


def _lock_cursor(session: Session) -> WebhookFanoutCursor | None:
    query = select(WebhookFanoutCursor).where(WebhookFanoutCursor.id == CURSOR_ID)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return (session.execute(query)).scalar_one_or_none()


def _subscribers(session: Session) -> dict[int, list[_Subscriber]]:
    rows = session.execute(
        select(
            Webhook.id,
            Webhook.account_id,
            Webhook.flavour,
            Webhook.event_types,
            Webhook.created_at,
        ).where(Webhook.is_enabled)
    )
    found: dict[int, list[_Subscriber]] = {}
    for row in rows:
        found.setdefault(row.account_id, []).append(
            _Subscriber(
                row.id, row.account_id, row.flavour, frozenset(row.event_types), row.created_at
            )
        )
    return found


def fan_out(
    session: Session, *, now: datetime, batch: int, gap_hold: timedelta, retry_for: timedelta
) -> int:
    """One pass, a transaction of ``Database.write``: read up to ``batch`` new (or late)
    events, write their outbox rows, move the cursor. Returns how many events were read
    (``batch``: call again)."""
    cursor = _lock_cursor(session)
    if cursor is None:  # another dispatcher is fanning out right now
        return 0
    subscribers = _subscribers(session)
    if not subscribers:
        newest = (session.execute(select(func.max(Event.id)))).scalar() or 0
        cursor.last_event_id = max(cursor.last_event_id, newest)
        cursor.gaps = []
        return 0
    held_since = (now - gap_hold).timestamp()
    gaps = [Gap(int(g[0]), int(g[1]), float(g[2])) for g in cursor.gaps]
    gaps = [gap for gap in gaps if gap.seen >= held_since]  # waited long enough for the rest
    wanted: list[ColumnElement[bool]] = [Event.id > cursor.last_event_id]
    wanted += [Event.id.between(gap.low, gap.high) for gap in gaps]
    events = list(
        (session.execute(select(Event).where(or_(*wanted)).order_by(Event.id).limit(batch)))
        .scalars()
        .all()
    )
    gaps, cursor.last_event_id = fill_gaps(
        gaps, cursor.last_event_id, [e.id for e in events], now.timestamp()
    )
    cursor.gaps = [gap.as_json() for gap in gaps]
    rows = _deliveries(session, events, subscribers, now=now, retry_for=retry_for)
    if rows:
        session.execute(_insert_ignoring_duplicates(session), rows)
    return len(events)


def _deliveries(
    session: Session,
    events: Sequence[Event],
    subscribers: dict[int, list[_Subscriber]],
    *,
    now: datetime,
    retry_for: timedelta,
) -> list[dict[str, Any]]:
    matches = [
        (event, hook)
        for event in events
        for hook in subscribers.get(event.account_id, ())
        if event.type in hook.event_types and event.created_at >= hook.created_at
    ]
    if not matches:
        return []
    facts = _facts(session, {event.id: event for event, _ in matches}.values())
    return [
        {
            "public_id": DELIVERY_PREFIX + time_ordered_token(),
            "webhook_id": hook.id,
            "event_id": event.id,
            "message_id": event.message_id,
            "event_type": event.type,
            "payload": build_payload(hook.flavour, facts[event.id]),
            "status": WEBHOOK_PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "retry_until": now + retry_for,
            "created_at": now,
        }
        for event, hook in matches
    ]


def _facts(session: Session, events: Iterable[Event]) -> dict[int, EventFacts]:
    """What each event's payload tells, in three queries for the whole batch."""
    events = list(events)
    message_ids = {e.message_id for e in events if e.message_id is not None}
    provider_ids = {e.provider_id for e in events if e.provider_id is not None}
    messages: dict[int, Message] = {}
    recipients: dict[int, list[str]] = {}
    if message_ids:
        found = session.execute(select(Message).where(Message.id.in_(message_ids)))
        messages = {m.id: m for m in found.scalars()}
        listed = session.execute(
            select(MessageRecipient.message_id, MessageRecipient.address)
            .where(MessageRecipient.message_id.in_(message_ids))
            .order_by(MessageRecipient.id)
        )
        for message_id, address in listed:
            recipients.setdefault(message_id, []).append(address)
    providers: dict[int, str] = {}
    if provider_ids:
        named = session.execute(
            select(Provider.id, Provider.public_id).where(Provider.id.in_(provider_ids))
        )
        providers = {row.id: row.public_id for row in named}
    facts: dict[int, EventFacts] = {}
    for event in events:
        message = messages.get(event.message_id or 0)
        facts[event.id] = EventFacts(
            type=event.type,
            created_at=event.created_at,
            recipient=event.recipient,
            smtp_code=event.smtp_code,
            detail=event.detail,
            bounce_class=event.bounce_class,
            user_agent=event.user_agent,
            client_ip=event.client_ip,
            url=event.url,
            provider=providers.get(event.provider_id or 0),
            message_id=message.public_id if message else None,
            message_id_header=message.message_id_header if message else None,
            envelope_from=message.envelope_from if message else None,
            from_header=message.from_header if message else None,
            subject=message.subject if message else None,
            sent_at=message.created_at if message else None,
            recipients=tuple(recipients.get(event.message_id or 0, ())),
            tags=tuple(message.tags) if message else (),
            metadata=dict(message.meta) if message else {},
        )
    return facts


def _insert_ignoring_duplicates(session: Session) -> Any:
    """An INSERT that leaves a (webhook, event) row already written as it is: each event is
    read once, but a second writer must never make a second delivery."""
    return dialect_insert(session, table_of(WebhookDelivery)).on_conflict_do_nothing(
        index_elements=["webhook_id", "event_id"]
    )
