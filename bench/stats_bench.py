"""Stats aggregates on many events: the same report read from the events table alone (no
rollup yet: every event of the range is counted) and from the hourly rollup, with the time
the backfill takes in between.

    .venv/bin/python bench/stats_bench.py                       # 2,000,000 events, SQLite
    .venv/bin/python bench/stats_bench.py -n 5000000 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/stats_bench  # empty DB

The events are spread over ``--days`` days (default 60) and ``--accounts`` accounts, with
every event type and a tag on every other message; the reports cover the last 30 days of
account 1, by day and by hour, plus the per-provider and per-tag groupings. Prints one JSON
object: seconds per step, and how many times faster the rollup read is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

# The statements below are built from constants of this script, never from input.
# ruff: noqa: S608
from mailgate.services import stats
from mailgate.services.stats_rollup import roll_up
from mailgate.store.db import Database, migrate

KINDS = ("processed", "delivered", "delivered", "bounce", "open", "click", "deferred", "spam")
FIRST = datetime(2026, 1, 1, tzinfo=UTC)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--events", type=int, default=2_000_000)
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--messages", type=int, default=100_000, help="events share these")
    parser.add_argument("--database-url", default="", help="an empty database; default: SQLite")
    parser.add_argument("--repeat", type=int, default=3, help="reads per report (best kept)")
    return parser.parse_args()


async def fill(database: Database, args: argparse.Namespace) -> None:
    postgres = database.engine.dialect.name == "postgresql"
    series = (
        "SELECT g FROM generate_series(1, :n) AS g"
        if postgres
        else "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n) "
        "SELECT g FROM s"
    )
    step = args.days * 86400 / args.events
    kinds = ", ".join(f"'{k}'" for k in KINDS)
    kind = (
        f"(ARRAY[{kinds}])[1 + g % {len(KINDS)}]"
        if postgres
        else f"json_extract('[{kinds.replace(chr(39), chr(34))}]', "
        f"'$[' || (g % {len(KINDS)}) || ']')"
    )
    at = (
        "CAST(:first AS timestamptz) + g * :step * interval '1 second'"
        if postgres
        else "strftime('%Y-%m-%d %H:%M:%f000', :first_text, '+' || (g * :step) || ' seconds')"
    )
    params: dict[str, Any] = {"first": FIRST, "first_text": "2026-01-01 00:00:00", "step": step}
    async with database.session() as session:
        for account in range(1, args.accounts + 1):
            await session.execute(
                text(
                    "INSERT INTO accounts (id, name, email, is_root, created_at) "
                    "VALUES (:id, 'bench', 'bench@example.test', false, CURRENT_TIMESTAMP)"
                ),
                {"id": account},
            )
        await session.execute(
            text(
                "INSERT INTO messages (public_id, account_id, status, envelope_from, from_header, "
                "subject, message_id_header, smtputf8, size, tags, metadata, attempts, due_at, "
                "expires_at, created_at, updated_at) "
                f"SELECT 'msg_bench_' || g, 1 + g % :accounts, 'delivered', "
                "'sender' || (g % 7) || '@example.test', 'x', 's', '<' || g || '@bench>', false, "
                "2000, '[]', '{}', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
                f"CURRENT_TIMESTAMP FROM ({series}) AS q"
            ),
            {"n": args.messages, "accounts": args.accounts},
        )
        await session.execute(
            text(
                "INSERT INTO message_tags (message_id, tag) SELECT id, 'tag' || (id % 5) "
                "FROM messages WHERE id % 2 = 0"
            )
        )
        await session.execute(
            text(
                "INSERT INTO events (account_id, message_id, type, bounce_class, created_at) "
                f"SELECT 1 + (g % :messages) % :accounts, 1 + g % :messages, {kind}, "
                f"CASE WHEN g % {len(KINDS)} = 3 THEN 'hard' END, {at} FROM ({series}) AS q"
            ),
            {**params, "n": args.events, "messages": args.messages, "accounts": args.accounts},
        )
        await session.commit()
    if postgres:
        async with database.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("ANALYZE"))


def reports(end: datetime) -> dict[str, stats.StatsQuery]:
    start = end - timedelta(days=30)
    return {
        "30 days by day": stats.StatsQuery(1, start, end, stats.Interval.DAY),
        "30 days by hour": stats.StatsQuery(1, start, end, stats.Interval.HOUR),
        "30 days by provider": stats.StatsQuery(
            1, start, end, stats.Interval.DAY, stats.Dimension.PROVIDER
        ),
        "30 days by tag": stats.StatsQuery(1, start, end, stats.Interval.DAY, stats.Dimension.TAG),
    }


async def best_of(repeat: int, work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = await work()
        best = min(best, time.perf_counter() - began)
    return best, result


async def read_all(
    database: Database, queries: dict[str, stats.StatsQuery], repeat: int
) -> tuple[dict[str, float], dict[str, Any]]:
    seconds: dict[str, float] = {}
    answers: dict[str, Any] = {}
    for name, query in queries.items():

        async def one(query: stats.StatsQuery = query) -> Any:
            async with database.session() as session:
                return await stats.event_report(session=session, query=query)

        seconds[name], answers[name] = await best_of(repeat, one)
    return seconds, answers


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(scratch) / 'stats.db'}"
        await asyncio.to_thread(migrate, url)
        database = Database(url)
        try:
            began = time.perf_counter()
            await fill(database, args)
            filled = time.perf_counter() - began
            queries = reports(FIRST + timedelta(days=args.days))
            raw, raw_answers = await read_all(database, queries, args.repeat)
            began = time.perf_counter()
            for _ in range(3):  # PostgreSQL rolls up what an earlier pass saw settle
                await roll_up(database)
            backfill = time.perf_counter() - began
            rolled, rolled_answers = await read_all(database, queries, args.repeat)
            assert rolled_answers == raw_answers, "the rollup changed an answer"
        finally:
            await database.dispose()
    return {
        "database": url.split(":", 1)[0],
        "events": args.events,
        "fill_seconds": round(filled, 2),
        "backfill_seconds": round(backfill, 2),
        "events_only_seconds": {k: round(v, 4) for k, v in raw.items()},
        "with_rollup_seconds": {k: round(v, 4) for k, v in rolled.items()},
        "speedup": {k: round(raw[k] / rolled[k], 1) for k in raw},
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(arguments())), indent=2))
