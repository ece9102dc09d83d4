"""Busy writers on one SQLite file from several "processes" (Database objects: each has its
own connection and its own open lock file, as separate processes would): every read-then-write
transaction succeeds, none is lost, none fails with "database is locked". And
:meth:`Database.write`, the one-hop transactions of the hot paths, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from mailgate.store.db import Database


async def test_writers_of_several_processes_take_turns(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    databases = [Database(url) for _ in range(3)]
    try:
        async with databases[0].session() as session:
            await session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
            await session.execute(text("INSERT INTO counter VALUES (0)"))
            await session.commit()

        async def increment(database: Database) -> None:
            async with database.writing() as session:
                # read, then write: a deferred transaction would fail here when another
                # connection committed in between
                n = (await session.execute(text("SELECT n FROM counter"))).scalar_one()
                await asyncio.sleep(0)  # let the others try to get in meanwhile
                await session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
                await session.commit()

        def add_one(session: Session) -> int:
            n = int(session.execute(text("SELECT n FROM counter")).scalar_one())
            session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
            return n + 1

        # both kinds of writer, in every "process" at once
        results = await asyncio.gather(
            *(increment(d) for d in databases for _ in range(40)),
            *(d.write(add_one) for d in databases for _ in range(40)),
        )
        async with databases[1].session() as session:
            assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 240
        seen = [n for n in results if n is not None]
        assert len(seen) == len(set(seen)) == 120  # no two one-hop writers read the same n
    finally:
        for database in databases:
            await database.dispose()


async def _counter(database: Database) -> None:
    async with database.session() as session:
        await session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        await session.execute(text("INSERT INTO counter VALUES (0)"))
        await session.commit()


async def _value(database: Database) -> int:
    async with database.session() as session:
        return int((await session.execute(text("SELECT n FROM counter"))).scalar_one())


async def test_write_commits_what_returns_and_rolls_back_what_raises(
    fresh_database_url: str,
) -> None:
    database = Database(fresh_database_url)
    try:
        await _counter(database)

        def set_to(n: int) -> Callable[[Session], str]:
            def transaction(session: Session) -> str:
                session.execute(text("UPDATE counter SET n = :n"), {"n": n})
                return threading.current_thread().name

            return transaction

        ran_on = await database.write(set_to(7))
        assert await _value(database) == 7

        def half_done(session: Session) -> None:
            session.execute(text("UPDATE counter SET n = 99"))
            raise LookupError("refused after the first statement")

        with pytest.raises(LookupError, match="refused after"):
            await database.write(half_done)
        assert await _value(database) == 7  # nothing of the failed transaction stayed
        # on SQLite the transaction ran on the writer thread, not on the event loop's
        on_sqlite = fresh_database_url.startswith("sqlite")
        assert (ran_on != threading.current_thread().name) is on_sqlite
        await database.write(set_to(8))  # the writer is still usable after a failure
        assert await _value(database) == 8
    finally:
        await database.dispose()


async def test_write_waits_while_a_session_writer_holds_the_lock(tmp_path: Path) -> None:
    """A one-hop transaction started while a ``writing()`` session of the same process holds
    the write lock waits its turn (the lock file, opened twice) and then succeeds."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    try:
        await _counter(database)
        order: list[str] = []

        def bump(session: Session) -> None:
            order.append("write")
            session.execute(text("UPDATE counter SET n = n + 1"))

        async with database.writing() as session:
            await session.execute(text("UPDATE counter SET n = 10"))
            waiting = asyncio.create_task(database.write(bump))
            await asyncio.sleep(0.2)
            assert not waiting.done()  # held back by the lock file, not failed
            order.append("session commit")
            await session.commit()
        await waiting
        assert order == ["session commit", "write"]
        assert await _value(database) == 11
    finally:
        await database.dispose()


async def test_a_write_not_waited_onto_the_disk_is_asked_for_per_transaction(
    tmp_path: Path,
) -> None:
    """``durable=False`` commits with synchronous=NORMAL (not fsync'd; a power cut may undo
    it), and only that transaction: the next durable one is FULL again."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    try:
        await _counter(database)

        def bump_and_tell(session: Session) -> int:
            session.execute(text("UPDATE counter SET n = n + 1"))
            return int(session.execute(text("PRAGMA synchronous")).scalar_one())

        full, normal = 2, 1
        assert await database.write(bump_and_tell) == full
        assert await database.write(bump_and_tell, durable=False) == normal
        assert await database.write(bump_and_tell, durable=False) == normal
        assert await database.write(bump_and_tell) == full
        assert await _value(database) == 4  # committed, every one
    finally:
        await database.dispose()


async def test_read_runs_off_the_event_loop_and_cannot_write(fresh_database_url: str) -> None:
    database = Database(fresh_database_url)
    try:
        await _counter(database)
        await database.write(lambda session: session.execute(text("UPDATE counter SET n = 5")))

        def read(session: Session) -> tuple[int, str]:
            n = int(session.execute(text("SELECT n FROM counter")).scalar_one())
            return n, threading.current_thread().name

        n, ran_on = await database.read(read)
        assert n == 5  # sees what was committed
        on_sqlite = fresh_database_url.startswith("sqlite")
        assert (ran_on != threading.current_thread().name) is on_sqlite
        if on_sqlite:  # a write in a read is a bug: refused at once, never waiting
            with pytest.raises(Exception, match="readonly"):
                await database.read(lambda s: s.execute(text("UPDATE counter SET n = 6")))
        async with database.reading() as session:
            assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 5
    finally:
        await database.dispose()
