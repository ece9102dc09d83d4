"""Searching what happened to an account's mail: its events, with their messages.

One query service behind the native events feed (``/api/v1/events``) and SMTP2GO's activity
search (``/v3/activity/search``). Pages run newest first on the event id, so a cursor (the
last id of a page) stays valid while new events arrive; filters on the message (sender,
subject, tags, its id) are joins on indexed keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from mailgate.domain import EventType
from mailgate.store.models import Event, Message, MessageTag

__all__ = [
    "EVENT_PUBLIC_ID_PREFIX",
    "ActivityItem",
    "EventFilter",
    "EventKind",
    "EventPage",
    "count_events",
    "event_public_id",
    "search_events",
]

EVENT_PUBLIC_ID_PREFIX: Final = "evt_"


@dataclass(frozen=True)
class EventKind:
    """An event type, narrowed to hard or soft bounces when ``bounce_class`` is set."""

    type: EventType
    bounce_class: str | None = None


@dataclass(frozen=True)
class EventFilter:
    """Every field narrows the search; the text ones match anywhere, case-insensitively.
    ``any_text`` alternatives match the subject, the sender or the recipient."""

    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    kinds: tuple[EventKind, ...] = ()
    message_public_id: str | None = None
    recipient: str | None = None  # exactly (as recorded)
    recipient_contains: str | None = None
    sender_contains: str | None = None
    subject_contains: str | None = None
    tags: tuple[str, ...] = ()
    any_text: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ActivityItem:
    event: Event
    message: Message | None  # None for an event that belongs to no message


@dataclass(frozen=True)
class EventPage:
    items: list[ActivityItem]
    has_more: bool


def event_public_id(event: Event) -> str:
    return f"{EVENT_PUBLIC_ID_PREFIX}{event.id}"


def _contains(column: Any, text: str) -> ColumnElement[bool]:
    return func.lower(column).contains(text.strip().lower(), autoescape=True)


def _kind(kind: EventKind) -> ColumnElement[bool]:
    if kind.bounce_class is None:
        return Event.type == kind.type.value
    return and_(Event.type == kind.type.value, Event.bounce_class == kind.bounce_class)


def _conditions(account_id: int, filters: EventFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Event.account_id == account_id]
    if filters.since is not None:
        where.append(Event.created_at >= filters.since)
    if filters.until is not None:
        where.append(Event.created_at < filters.until)
    if filters.kinds:
        where.append(or_(*(_kind(k) for k in filters.kinds)))
    if filters.message_public_id is not None:
        wanted = select(Message.id).where(
            Message.account_id == account_id, Message.public_id == filters.message_public_id
        )
        where.append(Event.message_id == wanted.scalar_subquery())
    if filters.recipient is not None:
        where.append(Event.recipient == filters.recipient)
    if filters.recipient_contains:
        where.append(_contains(Event.recipient, filters.recipient_contains))
    if filters.sender_contains:
        where.append(_contains(Message.from_header, filters.sender_contains))
    if filters.subject_contains:
        where.append(_contains(Message.subject, filters.subject_contains))
    if filters.tags:
        tagged = select(MessageTag.message_id).where(MessageTag.tag.in_(filters.tags))
        where.append(Event.message_id.in_(tagged))
    texts = [t for t in filters.any_text if t.strip()]
    if texts:
        where.append(
            or_(
                *(
                    or_(
                        _contains(Message.subject, t),
                        _contains(Message.from_header, t),
                        _contains(Event.recipient, t),
                    )
                    for t in texts
                )
            )
        )
    return where


def _needs_message(filters: EventFilter) -> bool:
    return bool(filters.sender_contains or filters.subject_contains or filters.any_text)


async def search_events(
    *,
    session: AsyncSession,
    account_id: int,
    filters: EventFilter,
    limit: int,
    before_id: int | None = None,
) -> EventPage:
    """Events matching ``filters``, newest first, each with its message; ``before_id`` is
    the last event id of the page before."""
    query = (
        select(Event, Message)
        .outerjoin(Message, Event.message_id == Message.id)
        .where(*_conditions(account_id, filters))
    )
    if before_id is not None:
        query = query.where(Event.id < before_id)
    rows = (await session.execute(query.order_by(Event.id.desc()).limit(limit + 1))).all()
    items = [ActivityItem(event=event, message=message) for event, message in rows[:limit]]
    return EventPage(items=items, has_more=len(rows) > limit)


async def count_events(*, session: AsyncSession, account_id: int, filters: EventFilter) -> int:
    """How many events match ``filters`` in all (SMTP2GO reports it beside a capped page)."""
    query = select(func.count(Event.id)).where(*_conditions(account_id, filters))
    if _needs_message(filters):
        query = query.select_from(Event).outerjoin(Message, Event.message_id == Message.id)
    return int((await session.execute(query)).scalar_one())
