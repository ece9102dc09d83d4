"""The listings of suppressions, events and the archive, and the retention purge's scan, are
served by an index on SQLite and PostgreSQL (sequential scans turned off on PostgreSQL, so
the plan shows an index whenever one can serve the query, even on an empty table)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from mailgate.store.db import Database

QUERIES = {
    "ix_suppressions_account_id": (
        "SELECT id FROM suppressions WHERE account_id = 1 AND id < 1000 ORDER BY id DESC LIMIT 21"
    ),
    "ix_events_account_id": (
        "SELECT id FROM events WHERE account_id = 1 AND id < 1000 ORDER BY id DESC LIMIT 21"
    ),
    "ix_events_account_recipient": (
        "SELECT id FROM events WHERE account_id = 1 AND recipient = 'a@example.com' "
        "ORDER BY id DESC LIMIT 21"
    ),
    "ix_messages_unpurged": (
        "SELECT id FROM messages WHERE purged_at IS NULL AND created_at < '2026-01-01' "
        "ORDER BY created_at LIMIT 500"
    ),
}


def plan(url: str, sql: str) -> str:
    async def go() -> str:
        database = Database(url)
        try:
            async with database.session() as session:
                if url.startswith("postgresql"):
                    await session.execute(text("SET enable_seqscan = off"))
                    rows = await session.execute(text(f"EXPLAIN {sql}"))
                    return "\n".join(str(row[0]) for row in rows)
                rows = await session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
                return "\n".join(str(row[-1]) for row in rows)
        finally:
            await database.dispose()

    return asyncio.run(go())


@pytest.mark.parametrize("index", sorted(QUERIES))
def test_the_query_uses_its_index(fresh_database_url: str, index: str) -> None:
    shown = plan(fresh_database_url, QUERIES[index])
    assert index in shown, shown
