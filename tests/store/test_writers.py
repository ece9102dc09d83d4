"""Busy writers on one SQLite file from several "processes" (Database objects: each has its
own connection and its own open lock file, as separate processes would): every read-then-write
transaction succeeds, none is lost, none fails with "database is locked"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

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

        await asyncio.gather(*(increment(d) for d in databases for _ in range(40)))
        async with databases[1].session() as session:
            assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 120
    finally:
        for database in databases:
            await database.dispose()
