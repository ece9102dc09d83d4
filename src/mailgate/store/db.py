"""Engine and session factory, the one-hop write transactions, and Alembic migrations run
from code."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

__all__ = ["Database", "alembic_config", "migrate"]

MIGRATIONS = Path(__file__).parent / "migrations"

P = TypeVar("P")
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


DURABLE: Final = "mailgate_durable"  # execution option: False for Database.write(durable=False)
READING: Final = "mailgate_reading"  # execution option: a writer's transaction that only reads


def _sqlite_begin(connection: Any) -> None:
    options = connection.get_execution_options()
    if options.get(READING):  # deferred, as a reader's (see _sqlite_begin_read)
        _driver_execute(connection, "BEGIN")
        return
    # The commit's synchronous setting can only change between transactions: here, as the
    # next one begins, when it differs from the connection's (FULL, from _sqlite_pragmas).
    durable = options.get(DURABLE, True)
    info = connection.connection.info  # the DBAPI connection's own, whatever the pool does
    if info.get(DURABLE, True) != durable:
        _driver_execute(connection, f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        info[DURABLE] = durable
    _driver_execute(connection, "BEGIN IMMEDIATE")


def _driver_execute(connection: Any, statement: str) -> None:
    """``statement`` straight to the driver: ``exec_driver_sql`` builds an execution context
    and a result for it, which costs more than the statement (twice per transaction)."""
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def _sqlite_read_only(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")  # a write here is a bug: fail, do not wait
    cursor.close()


def _sqlite_begin_read(connection: Any) -> None:
    # Deferred: in WAL mode a reader sees the last commit and neither waits for the writer
    # nor makes it wait.
    _driver_execute(connection, "BEGIN")


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


def _create_read_engine(url: str) -> AsyncEngine:
    """Connections of their own for :meth:`Database.reading` on a SQLite file."""
    engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=2, max_overflow=2)
    event.listen(engine.sync_engine, "connect", _sqlite_read_only)
    event.listen(engine.sync_engine, "begin", _sqlite_begin_read)
    return engine


class Database:
    """One engine and its session factory for the life of a process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writers = _WriterLock(url)
        file = _sqlite_file(url)
        self._writer = _SqliteThread(file, writes=True) if file is not None else None
        self._reader = _SqliteThread(file, writes=False) if file is not None else None
        self._read_engine = _create_read_engine(url) if file is not None else None
        self._readers = (
            async_sessionmaker(self._read_engine, expire_on_commit=False)
            if self._read_engine is not None
            else self.sessions
        )

    @property
    def dialect(self) -> Dialect:
        """The dialect :meth:`write`'s transactions run in (for statements made ready before)."""
        return self._writer.dialect if self._writer is not None else self.engine.dialect

    def session(self) -> AsyncSession:
        return self.sessions()

    def reading(self) -> AsyncSession:
        """A session that only reads, for lookups on hot paths (API keys, a worker's
        providers). On SQLite it has connections of its own whose transactions begin
        deferred: ``session()``'s begin ``IMMEDIATE``, taking the write lock, so a lookup
        there waits behind every writer (in SQLite's busy handler, which sleeps) and holds
        them up in turn. A write in it fails at once. Elsewhere it is a plain session."""
        return self._readers()

    async def read(self, query: Callable[[Session], R]) -> R:
        """Run ``query(session)``, a synchronous function that only reads, and return what
        it returned: :meth:`write`'s counterpart for :meth:`reading`. On SQLite it runs in
        one hop on this process's reader thread (a connection of its own, a deferred
        transaction), off the event loop; elsewhere in a session of the engine's pool."""
        if self._reader is not None:
            return await self._reader.run(query)
        async with self.reading() as session:
            return await session.run_sync(query)

    async def write(self, transaction: Callable[[Session], R], *, durable: bool = True) -> R:
        """Run ``transaction(session)``, a synchronous function, as one transaction (committed
        when it returns, rolled back when it raises) and return what it returned.

        On SQLite the whole transaction runs in one hop on this process's writer thread,
        inside the writer lock: the lock is held for the SQL and the commit alone, never
        while the event loop attends to other work between statements (which, under load,
        made a transaction of a few statements hold the lock for many milliseconds). Elsewhere
        it runs in a session of the engine's pool (``AsyncSession.run_sync``).

        ``durable=False``: the commit is not waited onto the disk (SQLite ``synchronous=
        NORMAL``, PostgreSQL ``synchronous_commit=off``). It survives the process ending, and
        the database stays consistent, but an OS crash or power loss may undo it, with every
        commit after it, up to the next durable one. For records of work that is simply done
        again when lost: a delivery's outcome or lease (the message may then be sent twice,
        as after any crash mid-delivery; never lost). Accepting mail is always durable."""
        if self._writer is not None:
            return await self._writer.run(transaction, durable=durable)
        async with self.session() as session, session.begin():
            if not durable:
                await session.execute(text("SET LOCAL synchronous_commit = off"))
            return await session.run_sync(transaction)

    async def prepare_and_write(
        self,
        prepare: Callable[[Session], P],
        transaction: Callable[[Session, P], R],
        *,
        durable: bool = True,
    ) -> tuple[P, R]:
        """``prepare(session)``, which only reads (and may work out every row to write from
        what it read), then :meth:`write` of ``transaction(session, prepared)``; both
        results. On SQLite both run in one hop on the writer thread, ``prepare`` in a
        deferred transaction of its own: the write lock, which every process on the data
        directory shares, is taken after it, for the writes alone. Elsewhere both run in one
        transaction (there is no such lock to spare)."""
        if self._writer is not None:
            return await self._writer.run_prepared(prepare, transaction, durable=durable)

        def both(session: Session) -> tuple[P, R]:
            prepared = prepare(session)
            return prepared, transaction(session, prepared)

        return await self.write(both, durable=durable)

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
        if self._read_engine is not None:
            await self._read_engine.dispose()
        for thread in (self._writer, self._reader):
            if thread is not None:
                await asyncio.to_thread(thread.close)


class _SqliteThread:
    """A thread with its own connection to the SQLite file that runs whole transactions,
    one at a time. A writer's take and give back the lock file that :class:`_WriterLock`
    takes too (a lock on another open file of it: they exclude each other, within this
    process and across processes); a reader's begin deferred and cannot write."""

    def __init__(self, file: Path, *, writes: bool) -> None:
        self._lock_path = _lock_file(file) if writes else None
        self._lock_fd: int | None = None
        self._name = "sqlite-writer" if writes else "sqlite-reader"
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None  # started with the first transaction
        self._engine: Engine = create_sync_engine(
            f"sqlite:///{file}",
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=1,
            max_overflow=0,
        )
        event.listen(self._engine, "connect", _sqlite_pragmas if writes else _sqlite_read_only)
        event.listen(self._engine, "begin", _sqlite_begin if writes else _sqlite_begin_read)
        self._not_durable = self._engine.execution_options(**{DURABLE: False})
        self._reading = self._engine.execution_options(**{READING: True})
        self.dialect = self._engine.dialect

    async def run(self, transaction: Callable[[Session], R], *, durable: bool = True) -> R:
        return await self._submit(partial(self._run, transaction, durable))

    async def run_prepared(
        self,
        prepare: Callable[[Session], P],
        transaction: Callable[[Session, P], R],
        *,
        durable: bool = True,
    ) -> tuple[P, R]:
        """``prepare`` in a deferred transaction, then ``transaction`` (see :meth:`_run`)."""
        return await self._submit(partial(self._run_prepared, prepare, transaction, durable))

    def _submit(self, work: Callable[[], R]) -> asyncio.Future[R]:
        """``work()`` on the thread; its result (or error) on the caller's loop. A queue and
        one callback: an executor's futures, chained across, cost three times as much CPU
        per transaction."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            self._thread.start()
        self._jobs.put((loop, future, work))
        return future

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, work = job
            result, error = None, None
            try:
                result = work()
            except BaseException as exc:  # the caller's to handle
                error = exc
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, future, result, error)

    def _run_prepared(
        self,
        prepare: Callable[[Session], P],
        transaction: Callable[[Session, P], R],
        durable: bool,
    ) -> tuple[P, R]:
        with Session(self._reading, expire_on_commit=False) as session, session.begin():
            prepared = prepare(session)
        return prepared, self._run(lambda session: transaction(session, prepared), durable)

    def _run(self, transaction: Callable[[Session], R], durable: bool = True) -> R:
        if self._lock_path is not None and self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        bind = self._engine if durable else self._not_durable
        try:
            with Session(bind, expire_on_commit=False) as session, session.begin():
                return transaction(session)
        finally:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """After the transactions already asked for."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
        self._engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the caller went away; the transaction ran all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


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
