"""Experiment for ``bench/run --serve-with``: count the SQL statements ``mailgate serve`` runs.

A SQLite trace callback counts every statement by its text (literals folded); the counts are
written as JSON at exit to ``$SQL_COUNTS`` (default ``/tmp/mailgate-sql-counts.json``).
Divide by N + 1 (the preflight message) for statements per message. Usage::

    SQL_COUNTS=/tmp/sql.json bench/run -n 1000 --skip-postfix \\
        --serve-with bench/experiments/count_sql.py
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import re
import sqlite3
import threading
from typing import Any

from sqlalchemy.util import await_only

import mailgate.store.db as db

counts: collections.Counter[str] = collections.Counter()
lock = threading.Lock()
_original = db._sqlite_pragmas


def _with_trace(dbapi_connection: Any, _record: Any) -> None:
    _original(dbapi_connection, _record)

    def trace(sql: str) -> None:
        key = re.sub(r"\s+", " ", sql.strip())[:90]
        key = re.sub(r"\b\d+\b", "N", re.sub(r"'[^']*'", "?", key))
        with lock:
            counts[key] += 1

    connection = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    if isinstance(connection, sqlite3.Connection):  # the writer and reader threads
        connection.set_trace_callback(trace)
    else:  # aiosqlite
        await_only(connection.set_trace_callback(trace))


def _dump() -> None:
    path = os.environ.get("SQL_COUNTS", "/tmp/mailgate-sql-counts.json")  # noqa: S108
    with open(path, "w") as out:
        json.dump(counts.most_common(), out, indent=1)


def main() -> None:
    db._sqlite_pragmas = _with_trace
    atexit.register(_dump)
    from mailgate.cli import app

    app(["serve"])


if __name__ == "__main__":
    main()
