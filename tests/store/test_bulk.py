"""store.bulk writes exactly what SQLAlchemy's own ``session.execute(statement, rows)`` does
(its column types convert the values), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from mailgate.delivery.outcomes import _UPDATE_MESSAGE
from mailgate.store.bulk import insert_batch, update_batch
from mailgate.store.db import Database
from mailgate.store.models import Account, Message, table_of

NOW = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def _message(public_id: str, account_id: int) -> dict[str, Any]:
    return {
        "public_id": public_id,
        "account_id": account_id,
        "status": "queued",
        "provider_id": None,
        "last_provider_id": None,
        "envelope_from": "s@example.com",
        "from_header": "Sé <s@example.com>",
        "subject": "Ünïcode",
        "message_id_header": "<m@example.com>",
        "smtputf8": True,
        "size": 123,
        "tags": ["a", "b"],
        "metadata": {"k": "v", "n": 1},
        "attempts": 0,
        "send_at": None,
        "due_at": NOW,
        "expires_at": NOW + timedelta(hours=72),
        "lease_owner": None,
        "lease_expires_at": None,
        "track_opens": False,
        "track_clicks": True,
        "list_unsubscribe": True,
        "purged_at": None,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _stored(session: Session, public_id: str) -> dict[str, Any]:
    row = session.execute(
        text("SELECT * FROM messages WHERE public_id = :p"), {"p": public_id}
    ).one()
    values = dict(row._mapping)
    del values["id"], values["public_id"]
    return values


async def test_bulk_writes_store_what_sqlalchemy_stores(fresh_database_url: str) -> None:
    database = Database(fresh_database_url)
    try:

        def write_both(session: Session) -> tuple[dict[str, Any], dict[str, Any]]:
            account = Account(name="a", email="a@example.com", is_root=False, created_at=NOW)
            session.add(account)
            session.flush()
            session.execute(insert(table_of(Message)), [_message("msg_core", account.id)])
            rows = [_message("msg_bulk", account.id)]
            insert_batch(database.dialect, table_of(Message), rows).run(session)
            return _stored(session, "msg_core"), _stored(session, "msg_bulk")

        core, bulk = await database.write(write_both)
        assert bulk == core

        def without_a_computed_column(session: Session) -> None:
            account_id = session.execute(select(Account.id)).scalar_one()
            row = _message("msg_partial", account_id)
            del row["created_at"]  # SQLAlchemy would call its default; bulk refuses instead
            insert_batch(database.dialect, table_of(Message), [row]).run(session)

        with pytest.raises(KeyError, match="created_at"):
            await database.write(without_a_computed_column)

        def update_both(session: Session) -> tuple[dict[str, Any], dict[str, Any]]:
            ids = {p: i for p, i in session.execute(select(Message.public_id, Message.id))}
            later = NOW + timedelta(minutes=5)

            def change(public_id: str) -> dict[str, Any]:
                return {
                    "b_id": ids[public_id],
                    "b_status": "deferred",
                    "b_due_at": later,
                    "b_last_provider_id": None,
                    "b_attempts": 1,
                    "b_now": later,
                }

            session.execute(_UPDATE_MESSAGE, [change("msg_core")])
            update_batch(database.dialect, _UPDATE_MESSAGE, [change("msg_bulk")]).run(session)
            return _stored(session, "msg_core"), _stored(session, "msg_bulk")

        core, bulk = await database.write(update_both)
        assert bulk == core
        assert bulk["status"] == "deferred" and bulk["attempts"] == 1
        assert bulk["lease_owner"] is None  # the statement's own value, not the row's

        def read_back(session: Session) -> Message:
            return session.execute(
                select(Message).where(Message.public_id == "msg_bulk")
            ).scalar_one()

        message = await database.read(read_back)
        assert message.due_at == NOW + timedelta(minutes=5)
        assert (message.tags, message.meta, message.smtputf8) == (
            ["a", "b"],
            {"k": "v", "n": 1},
            True,
        )
    finally:
        await database.dispose()
