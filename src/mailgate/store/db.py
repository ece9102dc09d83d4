"""Engine and session factory, and Alembic migrations run from code."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

__all__ = ["Database", "alembic_config", "migrate"]

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL for concurrent readers; FULL so a commit is on disk before we answer 2xx/250.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
    # Transactions begin with BEGIN IMMEDIATE (below), not the driver's deferred BEGIN: a
    # deferred transaction that reads and then writes fails at once (SQLITE_BUSY, no retry)
    # when another process wrote in between, and several `serve` processes share the file.
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # One connection: SQLite has one writer, and connections fighting over its lock sleep
        # in its busy handler (and time out as "database is locked" under load). Sessions
        # wait their turn for the connection in the pool instead, which is fair and cheap.
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=120
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


class Database:
    """One engine and its session factory for the life of a process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writers = _WriterLock(url)

    def session(self) -> AsyncSession:
        return self.sessions()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session for a busy write path (group commits, claims). On SQLite such writers
        take turns through a lock file first: processes sharing the file then hand the write
        lock over the moment it is free, where SQLite's own busy handler would sleep and poll
        (1, 2, 5, 10 ... 100 ms). Elsewhere it is a plain session."""
        async with self._writers, self.session() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


class _WriterLock:
    """An asyncio lock (this process) around a lock file (all processes) on SQLite."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        database = parsed.database if parsed.get_backend_name() == "sqlite" else None
        self._path = Path(database + ".writer") if database and database != ":memory:" else None
        self._here = asyncio.Lock()
        self._fd: int | None = None

    async def __aenter__(self) -> None:
        if self._path is None:
            return
        await self._here.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fd = self._fd
            taking = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
            try:
                await asyncio.shield(taking)
            except asyncio.CancelledError:  # the thread still takes it: give it back then
                taking.add_done_callback(lambda _: fcntl.flock(fd, fcntl.LOCK_UN))
                raise
        except BaseException:
            self._here.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        if self._path is None or self._fd is None:
            return
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._here.release()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (synchronous; call before the loop runs
    or from a worker thread: Alembic's env runs its own event loop)."""
    if make_url(url).get_backend_name() == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)
