"""What the migration tests share: SQL on a database by URL, work on a raw connection, and
what autogenerate would still change between the database and the models."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CursorResult, text
from sqlalchemy.engine import Connection

from mailgate.store.db import Database
from mailgate.store.models import Base

__all__ = ["all_differences", "on_connection", "run"]


def run(url: str, sql: str, **params: Any) -> list[Any]:
    """Run one statement in its own committed transaction; the rows when it returns any."""

    async def go() -> list[Any]:
        database = Database(url)
        try:
            async with database.session() as session:
                result = await session.execute(text(sql), params)
                assert isinstance(result, CursorResult)
                rows = list(result.all()) if result.returns_rows else []
                await session.commit()
                return rows
        finally:
            await database.dispose()

    return asyncio.run(go())


def on_connection(url: str, work: Any) -> Any:
    async def go() -> Any:
        database = Database(url)
        try:
            async with database.engine.connect() as connection:
                return await connection.run_sync(work)
        finally:
            await database.dispose()

    return asyncio.run(go())


def all_differences(url: str) -> list[Any]:
    """Autogenerate's diff of the database against the models (each test keeps its own)."""

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    result: list[Any] = on_connection(url, compare)
    return result
