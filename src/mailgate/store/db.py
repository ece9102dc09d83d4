"""Engine and session factory, the one-hop write transactions, and Alembic migrations run
from code."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

__all__ = ["Database", "alembic_config", "migrate"]

MIGRATIONS = Path(__file__).parent / "migrations"

R = TypeVar("R")


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


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None: another backend, or in memory)."""
    parsed = make_url(url)
    database = parsed.database if parsed.get_backend_name() == "sqlite" else None
    return Path(database) if database and database != ":memory:" else None


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        file = _sqlite_file(url)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
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
        file = _sqlite_file(url)
        self._writer = _SqliteWriter(file) if file is not None else None

    def session(self) -> AsyncSession:
        return self.sessions()

    async def write(self, transaction: Callable[[Session], R]) -> R:
        """Run ``transaction(session)``, a synchronous function, as one transaction (committed
        when it returns, rolled back when it raises) and return what it returned.

        On SQLite the whole transaction runs in one hop on this process's writer thread,
        inside the writer lock: the lock is held for the SQL and the commit alone, never
        while the event loop attends to other work between statements (which, under load,
        made a transaction of a few statements hold the lock for many milliseconds). Elsewhere
        it runs in a session of the engine's pool (``AsyncSession.run_sync``)."""
        if self._writer is not None:
            return await self._writer.run(transaction)
        async with self.session() as session, session.begin():
            return await session.run_sync(transaction)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session for a write path written with async sessions (webhook outbox, stats
        rollup, tracking hits; the hottest paths use :meth:`write`). On SQLite such writers
        take turns through a lock file first: processes sharing the file then hand the write
        lock over the moment it is free, where SQLite's own busy handler would sleep and poll
        (1, 2, 5, 10 ... 100 ms). Elsewhere it is a plain session."""
        async with self._writers, self.session() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)


class _SqliteWriter:
    """A thread with its own connection to the SQLite file that runs whole write
    transactions, one at a time, each between taking and giving back the lock file that
    :class:`_WriterLock` takes too (a lock on another open file of it: they exclude each
    other, within this process and across processes)."""

    def __init__(self, file: Path) -> None:
        self._lock_path = _lock_file(file)
        self._lock_fd: int | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._engine: Engine = create_sync_engine(
            f"sqlite:///{file}",
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=1,
            max_overflow=0,
        )
        event.listen(self._engine, "connect", _sqlite_pragmas)
        event.listen(self._engine, "begin", _sqlite_begin)

    async def run(self, transaction: Callable[[Session], R]) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._run, transaction)

    def _run(self, transaction: Callable[[Session], R]) -> R:
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                return transaction(session)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self._engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _lock_file(database: Path) -> Path:
    return database.with_name(database.name + ".writer")


class _WriterLock:
    """An asyncio lock (this process) around a lock file (all processes) on SQLite."""

    def __init__(self, url: str) -> None:
        file = _sqlite_file(url)
        self._path = _lock_file(file) if file is not None else None
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
    file = _sqlite_file(url)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)
