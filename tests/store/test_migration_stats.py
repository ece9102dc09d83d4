"""The stats revision: ``stats_hourly`` and ``stats_rollup_state`` match the models on SQLite
and PostgreSQL; events recorded before it are rolled up by the first passes (the backfill);
it goes down and up again with the events intact."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from migration_support import all_differences, on_connection, run
from sqlalchemy import inspect

from mailgate.services.stats_rollup import roll_up
from mailgate.store.db import Database, alembic_config, migrate

BEFORE = "2026_11_22_activity_archive"
TABLES = {"stats_hourly", "stats_rollup_state"}


def differences(url: str) -> list[Any]:
    return [d for d in all_differences(url) if TABLES & set(_names(d))]


def _names(diff: Any) -> list[str]:
    found: list[str] = []
    for part in diff if isinstance(diff, list) else [diff]:
        for item in part if isinstance(part, tuple) else (part,):
            table = getattr(item, "table", None)
            found.append(str(getattr(table, "name", None) or getattr(item, "name", None) or item))
    return found


def tables(url: str) -> set[str]:
    return set(on_connection(url, lambda c: inspect(c).get_table_names()))


def roll_everything_up(url: str) -> None:
    async def go() -> None:
        database = Database(url)
        try:
            for _ in range(3):  # PostgreSQL settles what an earlier pass saw
                await roll_up(database)
        finally:
            await database.dispose()

    asyncio.run(go())


def test_the_tables_match_the_models(fresh_database_url: str) -> None:
    assert tables(fresh_database_url) >= TABLES
    assert differences(fresh_database_url) == []
    assert run(fresh_database_url, "SELECT id, rolled_through FROM stats_rollup_state") == [(1, 0)]


def test_old_events_are_backfilled_and_down_and_up_keeps_them(fresh_database_url: str) -> None:
    url = fresh_database_url
    command.downgrade(alembic_config(url), BEFORE)
    assert not TABLES & tables(url)
    run(
        url,
        "INSERT INTO accounts (name, email, is_root, created_at) "
        "VALUES ('a', 'a@example.com', false, CURRENT_TIMESTAMP)",
    )
    account = run(url, "SELECT id FROM accounts")[0][0]
    for kind in ("processed", "delivered", "delivered", "open"):
        run(
            url,
            "INSERT INTO events (account_id, type, created_at) "
            "VALUES (:account, :kind, '2026-05-01 10:20:00')",
            account=account,
            kind=kind,
        )

    migrate(url)
    assert differences(url) == []
    roll_everything_up(url)
    rows = run(
        url,
        "SELECT type, events FROM stats_hourly WHERE tag = '' AND sender = '' ORDER BY type",
    )
    assert [tuple(r) for r in rows] == [("delivered", 2), ("open", 1), ("processed", 1)]
    assert run(url, "SELECT rolled_through FROM stats_rollup_state") == [(4,)]

    command.downgrade(alembic_config(url), BEFORE)
    assert not TABLES & tables(url)
    assert run(url, "SELECT count(*) FROM events") == [(4,)]
    migrate(url)
    assert differences(url) == []
