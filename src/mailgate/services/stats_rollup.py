"""Rolling ``events`` up into ``stats_hourly``: counts per account, hour, event type, bounce
class, provider, tag and sender, so stats over millions of events read a few rows per hour.

Nothing on the mail path writes here: a pass (every ``stats_rollup_seconds``, in every node)
adds the events past the watermark and moves the watermark in the same transaction, in
batches. A crash loses at most the batch in flight, which the next pass redoes; two nodes
take turns on the locked state row. Readers (:mod:`mailgate.services.stats`) add the events
past the watermark themselves, so stats are exact whether or not a pass has run.

Ids are handed out before their transaction commits, so on PostgreSQL an id below one
already visible may still appear. A pass therefore rolls up only to the highest id an
earlier pass saw, once no transaction of this database that began before that pass is
still running (``pg_stat_activity``; transactions elsewhere in the cluster do not hold it
up). SQLite has one writer, and a pass holds the write lock: every id it sees is final.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from functools import partial
from typing import Any, Final, cast

import structlog
from sqlalchemy import ColumnElement, Select, func, literal, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import case

from mailgate.store.bulk import dialect_insert
from mailgate.store.db import Database
from mailgate.store.models import (
    Event,
    Message,
    MessageTag,
    StatsHourly,
    StatsRollupState,
    table_of,
    utcnow,
)

__all__ = ["BATCH", "STATE_ID", "hour_of", "roll_up", "run_rollups"]

log = structlog.get_logger(__name__)

BATCH: Final = 50_000  # event ids per transaction
STATE_ID: Final = 1
_KEY: Final = ("account_id", "hour", "type", "bounce_class", "provider_id", "tag", "sender")


def hour_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """``column`` (a UTC timestamp) truncated to its hour, in the column's own storage form
    (SQLite keeps ``YYYY-MM-DD HH:MM:SS.ffffff`` text, so a prefix of it is the hour)."""
    if dialect == "postgresql":
        return func.timezone("UTC", func.date_trunc("hour", func.timezone("UTC", column)))
    return func.substr(column, 1, 13).op("||")(literal(":00:00.000000"))


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _additions(dialect: str, low: int, high: int) -> list[Select[Any]]:
    """The rows events ``low < id <= high`` add: one per (key) with its count and bytes."""
    e = table_of(Event).c
    hour = hour_of(e.created_at, dialect)
    bounce = func.coalesce(e.bounce_class, "")
    provider = func.coalesce(e.provider_id, 0)
    window = (e.id > low, e.id <= high)
    none = literal("")
    everything = (
        select(e.account_id, hour, e.type, bounce, provider, none, none, func.count(), literal(0))
        .where(*window)
        .group_by(e.account_id, hour, e.type, bounce, provider)
    )
    t = table_of(MessageTag).c
    tagged = (
        select(e.account_id, hour, e.type, bounce, provider, t.tag, none, func.count(), literal(0))
        .join_from(table_of(Event), table_of(MessageTag), t.message_id == e.message_id)
        .where(*window)
        .group_by(e.account_id, hour, e.type, bounce, provider, t.tag)
    )
    m = table_of(Message).c
    sender = func.lower(m.envelope_from)
    size = func.sum(case((e.type == "processed", m.size), else_=0))
    by_sender = (
        select(e.account_id, hour, e.type, bounce, literal(0), none, sender, func.count(), size)
        .join_from(table_of(Event), table_of(Message), m.id == e.message_id)
        .where(*window)
        .group_by(e.account_id, hour, e.type, bounce, sender)
    )
    return [everything, tagged, by_sender]


def _add(session: Session, low: int, high: int) -> None:
    dialect = _dialect(session)
    table = table_of(StatsHourly)
    for rows in _additions(dialect, low, high):
        statement = dialect_insert(session, table).from_select([*_KEY, "events", "bytes"], rows)
        statement = statement.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={
                "events": table.c.events + statement.excluded.events,
                "bytes": table.c.bytes + statement.excluded.bytes,
            },
        )
        session.execute(statement)


def _locked_state(session: Session) -> StatsRollupState:
    query = select(StatsRollupState).where(StatsRollupState.id == STATE_ID).with_for_update()
    state = (session.execute(query)).scalar_one_or_none()
    if state is None:  # the migration creates it; a database made another way may lack it
        session.execute(
            dialect_insert(session, table_of(StatsRollupState))
            .values(id=STATE_ID, rolled_through=0, updated_at=utcnow())
            .on_conflict_do_nothing()
        )
        state = (session.execute(query)).scalar_one()
    return state


def _database_clock(session: Session) -> datetime:
    return cast(datetime, (session.execute(select(func.clock_timestamp()))).scalar_one())


def _running_since(session: Session, moment: datetime) -> bool:
    """Whether a transaction of this database that began before ``moment`` and has written
    (holds an xid) is still running, other than this one."""
    query = text(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL AND xact_start <= :moment)"
    )
    return bool((session.execute(query, {"moment": moment})).scalar_one())


def _last_id(session: Session) -> int:
    return int((session.execute(select(func.coalesce(func.max(Event.id), 0)))).scalar_one())


def _settled_through(session: Session, state: StatsRollupState) -> int:
    """The highest event id below which no event can still appear."""
    if _dialect(session) != "postgresql":
        return _last_id(session)
    pending, pending_at = state.pending_through, state.pending_at
    if pending is not None and pending_at is not None:
        if _running_since(session, pending_at):
            return state.rolled_through  # a transaction from before may still add ids
        if state.rolled_through < pending:
            return pending
        pending = None  # caught up with it: watch the ids visible now instead
    if pending is None:
        state.pending_through = _last_id(session)
        state.pending_at = _database_clock(session)
    return state.rolled_through


async def roll_up(database: Database, *, batch: int = BATCH, max_batches: int | None = None) -> int:
    """Roll settled events up, ``batch`` ids per transaction; returns the events' id span
    covered. ``max_batches`` stops early (a backfill may be spread over passes)."""
    covered = 0
    done = 0
    while max_batches is None or done < max_batches:
        span = await database.write(partial(_roll_up_batch, batch=batch))
        if span is None:
            return covered
        covered += span
        done += 1
    return covered


def _roll_up_batch(session: Session, *, batch: int) -> int | None:
    """One transaction: up to ``batch`` settled event ids added; their span, or None when
    there was nothing to add."""
    state = _locked_state(session)
    target = _settled_through(session, state)
    low = state.rolled_through
    state.updated_at = utcnow()
    if target <= low:
        return None
    high = min(low + batch, target)
    _add(session, low, high)
    state.rolled_through = high
    return high - low


async def run_rollups(database: Database, *, every: float, stop: asyncio.Event) -> None:
    """Roll up every ``every`` seconds until ``stop`` is set; a failed pass is logged and
    retried on the next round (it changed nothing it did not commit)."""
    while not stop.is_set():
        try:
            await roll_up(database)
        except Exception:  # a database hiccup must not end the loop; the next pass retries
            log.exception("stats_rollup_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
