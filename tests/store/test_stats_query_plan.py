"""PostgreSQL plans of the stats reads on 300,000 events (ANALYZEd): the rollup is read by
its primary key and the events past the watermark by theirs; no statement scans the events
table. The plans are printed (``pytest -s``) and asserted."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from mailgate.services import stats
from mailgate.services.stats_rollup import roll_up
from mailgate.store.db import Database

EVENTS = 300_000
FIRST = datetime(2026, 9, 1, tzinfo=UTC)  # events every 17 s from here: 59 days


class Explain(Executable, ClauseElement):
    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN " + compiler.process(element.statement, **kw)


async def fill(database: Database) -> None:
    async with database.session() as session:
        await session.execute(
            text(
                "INSERT INTO accounts (name, email, is_root, created_at) VALUES "
                "('one', 'one@example.test', false, now()), "
                "('two', 'two@example.test', false, now())"
            )
        )
        await session.execute(
            text(
                "INSERT INTO events (account_id, type, bounce_class, created_at) "
                "SELECT 1 + g % 2, "
                "(ARRAY['processed','delivered','bounce','open','click','deferred'])[1 + g % 6], "
                "CASE WHEN g % 6 = 2 THEN 'hard' END, "
                "CAST(:first AS timestamptz) + g * interval '17 seconds' "
                "FROM generate_series(1, :n) AS g"
            ),
            {"first": FIRST, "n": EVENTS},
        )
        await session.commit()
    for _ in range(3):  # the backfill (PostgreSQL settles what an earlier pass saw)
        await roll_up(database)
    async with database.session() as session:  # a few events past the watermark
        await session.execute(
            text(
                "INSERT INTO events (account_id, type, created_at) "
                "SELECT 1, 'open', CAST(:at AS timestamptz) FROM generate_series(1, 5)"
            ),
            {"at": FIRST + timedelta(days=58)},
        )
        await session.commit()
    async with database.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("ANALYZE events"))
        await connection.execute(text("ANALYZE stats_hourly"))


async def plans(database: Database) -> dict[str, str]:
    week = stats.StatsQuery(
        1, FIRST + timedelta(days=51), FIRST + timedelta(days=58, hours=1), stats.Interval.HOUR
    )
    by_provider = stats.StatsQuery(
        1, week.start, week.end, stats.Interval.DAY, stats.Dimension.PROVIDER
    )
    found: dict[str, str] = {}
    async with database.session() as session:
        watermark = int(
            (
                await session.execute(text("SELECT rolled_through FROM stats_rollup_state"))
            ).scalar_one()
        )
        assert watermark == EVENTS
        statements = {
            "rollup, by hour": stats.rollup_statement(
                week, "postgresql", each_tag=False, group=None
            ),
            "rollup, by day and provider": stats.rollup_statement(
                by_provider, "postgresql", each_tag=False, group=stats.Dimension.PROVIDER
            ),
            "events past the watermark": stats.recent_statement(
                week, "postgresql", watermark, each_tag=False, group=None
            ),
        }
        for name, statement in statements.items():
            rows = await session.execute(Explain(statement))
            found[name] = "\n".join(row[0] for row in rows)
        # and the answer is the events' own count: rolled-up rows plus the five past them
        report = await stats.event_report(session=session, query=week)
        counted = await session.execute(
            text(
                "SELECT count(*) FROM events WHERE account_id = 1 AND type = 'processed' "
                "AND created_at >= :start AND created_at < :end"
            ),
            {"start": report.start, "end": report.end},
        )
        assert report.totals["processed"] == counted.scalar_one() > 1000
        assert report.totals["open"] == 5  # account one's opens are the five only
    return found


def test_stats_reads_use_indexes_not_a_scan_of_events(fresh_database_url: str) -> None:
    if not fresh_database_url.startswith("postgresql"):
        pytest.skip("query plans are PostgreSQL's")

    async def go() -> dict[str, str]:
        database = Database(fresh_database_url)
        try:
            await fill(database)
            return await plans(database)
        finally:
            await database.dispose()

    found = asyncio.run(go())
    for name, plan in found.items():
        print(f"\n-- {name}\n{plan}")
        assert "Seq Scan on events" not in plan, plan
        assert "Seq Scan on stats_hourly" not in plan, plan
    assert "pk_stats_hourly" in found["rollup, by hour"]
    assert "pk_stats_hourly" in found["rollup, by day and provider"]
    assert "pk_events" in found["events past the watermark"]
