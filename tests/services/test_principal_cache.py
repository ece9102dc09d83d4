"""The API key cache: one lookup per key at a time, failures never cached, on a real database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event

from mailgate.errors import Unauthenticated
from mailgate.services import accounts
from mailgate.services.accounts import PrincipalCache
from mailgate.store.db import Database


def _count_key_lookups(database: Database) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "FROM api_keys" in statement:
            seen.append(statement)

    # lookups read through their own connections on SQLite (Database.reading)
    for engine in {database.engine.sync_engine, database.reading().get_bind()}:
        event.listen(engine, "before_cursor_execute", record)
    return seen


async def _new_key(database: Database) -> str:
    async with database.session() as session:
        account = await accounts.create_account(
            session=session, name="cache", email="cache@example.test"
        )
        _, plaintext = await accounts.create_key(session=session, account_id=account.id, name="k")
    return plaintext


def test_a_burst_of_requests_after_expiry_looks_the_key_up_once(fresh_database_url: str) -> None:
    async def scenario() -> None:
        database = Database(fresh_database_url)
        try:
            key = await _new_key(database)
            lookups = _count_key_lookups(database)
            cache = PrincipalCache(database, ttl=60)
            found = await asyncio.gather(*(cache.authenticate(key) for _ in range(30)))
            assert len(lookups) == 1
            assert {p.account_id for p in found} == {found[0].account_id}
            await asyncio.gather(*(cache.authenticate(key) for _ in range(30)))
            assert len(lookups) == 1  # cached

            wrong = key[:-4] + "zzzz"
            refused = await asyncio.gather(
                *(cache.authenticate(wrong) for _ in range(10)), return_exceptions=True
            )
            assert all(isinstance(r, Unauthenticated) for r in refused)
            assert len(lookups) == 2  # one lookup for the ten
            with pytest.raises(Unauthenticated):
                await cache.authenticate(wrong)
            assert len(lookups) == 3  # a failure is not cached

            uncached = PrincipalCache(database, ttl=0)
            for _ in range(2):
                await uncached.authenticate(key)
            assert len(lookups) == 5  # no ttl: every request in turn looks it up
        finally:
            await database.dispose()

    asyncio.run(scenario())
