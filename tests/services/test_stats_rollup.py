"""The hourly rollup: counts equal the events they came from, a backfill stopped half-way
resumes without losing or doubling anything, and on PostgreSQL an event whose transaction
commits after a later one is not skipped. Stats read the same at every step."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.services import stats
from mailgate.services.stats_rollup import roll_up
from mailgate.store.db import Database
from mailgate.store.models import (
    Account,
    Event,
    Message,
    MessageTag,
    StatsHourly,
    StatsRollupState,
)

T = TypeVar("T")
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
KINDS = ("processed", "delivered", "bounce", "open", "click", "deferred", "spam")


def run(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def go() -> T:
        database = Database(url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(go())


async def seed(database: Database, events: int) -> int:
    """An account with two tagged messages from two senders and ``events`` events over the
    last few hours; returns the account id."""
    async with database.session() as session:
        account = Account(name="stats", email="stats@example.test")
        session.add(account)
        await session.flush()
        messages = []
        for n, sender in enumerate(("a@one.test", "b@two.test")):
            message = Message(
                public_id=f"msg_rollup_{n}",
                account_id=account.id,
                status="delivered",
                envelope_from=sender,
                from_header=sender,
                subject="s",
                message_id_header=f"<{n}@rollup.test>",
                size=100 * (n + 1),
                due_at=NOW,
                expires_at=NOW,
            )
            session.add(message)
            await session.flush()
            session.add(MessageTag(message_id=message.id, tag=f"tag{n}"))
            messages.append(message)
        for i in range(events):
            kind = KINDS[i % len(KINDS)]
            session.add(
                Event(
                    account_id=account.id,
                    message_id=messages[i % 2].id,
                    type=kind,
                    provider_id=None,
                    bounce_class=("hard", "soft")[i % 2] if kind == "bounce" else None,
                    created_at=NOW - timedelta(hours=i % 5, minutes=i % 17),
                )
            )
        await session.commit()
        return account.id


async def snapshot(database: Database, account_id: int) -> list[Any]:
    """Every way of reading the account's stats, to compare between rollup steps."""
    readings: list[Any] = []
    async with database.session() as session:
        for group in (None, stats.Dimension.TAG, stats.Dimension.PROVIDER):
            for interval in stats.Interval:
                query = stats.StatsQuery(
                    account_id, NOW - timedelta(days=1), NOW + timedelta(hours=1), interval, group
                )
                readings.append(await stats.event_report(session=session, query=query))
        readings.append(
            await stats.sender_totals(
                session=session,
                account_id=account_id,
                start=NOW - timedelta(days=1),
                end=NOW + timedelta(hours=1),
            )
        )
    return readings


async def watermark(session: AsyncSession) -> int:
    return int(
        (
            await session.execute(
                select(StatsRollupState.rolled_through).where(StatsRollupState.id == 1)
            )
        ).scalar_one()
    )


async def rolled_total(session: AsyncSession) -> int:
    query = select(func.coalesce(func.sum(StatsHourly.events), 0)).where(
        StatsHourly.tag == "", StatsHourly.sender == ""
    )
    return int((await session.execute(query)).scalar_one())


def test_a_backfill_stopped_half_way_resumes_exactly(fresh_database_url: str) -> None:
    async def work(database: Database) -> None:
        account_id = await seed(database, 40)
        before = await snapshot(database, account_id)
        totals = before[0].totals
        assert totals["processed"] == 6 and totals["bounce"] == 6
        assert totals["hard_bounce"] + totals["soft_bounce"] == 6

        await roll_up(database, batch=7, max_batches=1)  # PostgreSQL: notes what settles
        await roll_up(database, batch=7, max_batches=2)  # then stops as if it crashed
        async with database.session() as session:
            partly = await watermark(session)
            assert 0 < partly < 40
            assert await rolled_total(session) == partly
        assert await snapshot(database, account_id) == before

        for _ in range(3):
            await roll_up(database, batch=7)
        async with database.session() as session:
            assert await watermark(session) == 40
            assert await rolled_total(session) == 40
            tagged = select(func.sum(StatsHourly.events)).where(StatsHourly.tag != "")
            assert (await session.execute(tagged)).scalar_one() == 40  # one tag per message
            bytes_ = select(func.sum(StatsHourly.bytes)).where(StatsHourly.sender != "")
            assert (await session.execute(bytes_)).scalar_one() == 3 * 100 + 3 * 200
        assert await snapshot(database, account_id) == before
        assert await roll_up(database) == 0  # nothing new: nothing to do

    run(fresh_database_url, work)


def test_an_event_committed_late_is_not_skipped(fresh_database_url: str) -> None:
    if not fresh_database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: a pass holding the write lock sees every id final")

    async def work(database: Database) -> None:
        account_id = await seed(database, 0)
        async with database.session() as session:
            message_id = (await session.execute(select(Message.id).limit(1))).scalar_one()

        def event() -> Event:
            return Event(
                account_id=account_id, message_id=message_id, type="delivered", created_at=NOW
            )

        async with database.session() as slow:  # takes an id, commits last
            first = event()
            slow.add(first)
            await slow.flush()
            async with database.session() as quick:
                second = event()
                quick.add(second)
                await quick.commit()
            assert first.id < second.id
            for _ in range(3):
                await roll_up(database)
            async with database.session() as session:
                assert await watermark(session) < first.id  # not past the one in flight
            reading = await snapshot(database, account_id)
            assert reading[0].totals["delivered"] == 1
            await slow.commit()

        for _ in range(3):
            await roll_up(database)
        async with database.session() as session:
            assert await watermark(session) >= second.id
            assert await rolled_total(session) == 2
        assert (await snapshot(database, account_id))[0].totals["delivered"] == 2

    run(fresh_database_url, work)
