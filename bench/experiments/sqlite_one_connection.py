"""Experiment for ``bench/run --serve-with``: ``mailgate serve`` with ONE SQLite connection.

The default engine pools up to 15 SQLite connections; under load they contend for SQLite's
single write lock and sleep in its busy handler. Here the pool has one connection, so writes
queue in the pool instead. Usage::

    bench/run -n 2000 --skip-postfix --serve-with bench/experiments/sqlite_one_connection.py
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import mailgate.store.db as db

_original = db.create_engine


def create_engine(url: str) -> AsyncEngine:
    if not url.startswith("sqlite"):
        return _original(url)
    engine = create_async_engine(
        url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=120
    )
    event.listen(engine.sync_engine, "connect", db._sqlite_pragmas)
    return engine


def main() -> None:
    db.create_engine = create_engine
    from mailgate.cli import app

    app(["serve"])


if __name__ == "__main__":
    main()
