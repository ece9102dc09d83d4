"""The activity/archive revision: messages gain ``purged_at`` and the purge's partial index,
events and suppressions their listing indexes, full-access keys the new permissions; it
matches the models on SQLite and PostgreSQL and goes down and up again with the data intact."""

from __future__ import annotations

import json
from typing import Any

from alembic import command
from migration_support import all_differences, on_connection, run
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from mailgate.store.db import alembic_config, migrate

BEFORE = "2026_11_22_tracking"
INDEXES = {
    "messages": {"ix_messages_unpurged"},
    "events": {"ix_events_account_id", "ix_events_account_recipient"},
    "suppressions": {"ix_suppressions_account_id"},
}
MINE = {"purged_at", *(name for names in INDEXES.values() for name in names)}
ISSUE_4_KEY = [
    "providers:read",
    "providers:write",
    "keys:read",
    "messages:send",
    "messages:read",
    "smtp_users:read",
    "smtp_users:write",
    "ip_auth:read",
    "ip_auth:write",
]
ADDED = ["suppressions:read", "suppressions:write", "events:read"]


def my_differences(url: str) -> list[Any]:
    """What autogenerate would change about this revision's columns and indexes."""

    return [d for d in all_differences(url) if any(name in repr(d) for name in MINE)]


def schema(url: str) -> tuple[set[str], dict[str, set[str]]]:
    """The columns of messages, and the index names of each table this revision touches."""

    def look(connection: Connection) -> tuple[set[str], dict[str, set[str]]]:
        inspector = inspect(connection)
        columns = {c["name"] for c in inspector.get_columns("messages")}
        indexes = {t: {str(i["name"]) for i in inspector.get_indexes(t)} for t in INDEXES}
        return columns, indexes

    result: tuple[set[str], dict[str, set[str]]] = on_connection(url, look)
    return result


def permissions(url: str) -> dict[str, list[str]]:
    rows = run(url, "SELECT name, permissions FROM api_keys ORDER BY id")
    return {name: held if isinstance(held, list) else json.loads(held) for name, held in rows}


def test_the_schema_matches_the_models(fresh_database_url: str) -> None:
    assert my_differences(fresh_database_url) == []
    columns, indexes = schema(fresh_database_url)
    assert "purged_at" in columns
    for table, names in INDEXES.items():
        assert names <= indexes[table], table


def test_down_and_up_again_keeps_rows_and_grants_full_access_keys(fresh_database_url: str) -> None:
    url = fresh_database_url
    command.downgrade(alembic_config(url), BEFORE)
    columns, indexes = schema(url)
    assert "purged_at" not in columns
    assert all(not (names & indexes[table]) for table, names in INDEXES.items())

    run(
        url,
        "INSERT INTO accounts (name, email, is_root, created_at) "
        "VALUES ('a', 'a@example.com', false, CURRENT_TIMESTAMP)",
    )
    account = run(url, "SELECT id FROM accounts")[0][0]
    for name, held in (("full", ISSUE_4_KEY), ("limited", ["messages:read"])):
        run(
            url,
            "INSERT INTO api_keys (account_id, name, prefix, key_hash, permissions, created_at) "
            "VALUES (:account, :name, :prefix, :hash, :held, CURRENT_TIMESTAMP)",
            account=account,
            name=name,
            prefix=f"mg_{name}",
            hash=b"x" * 32,
            held=json.dumps(held),
        )
    run(
        url,
        "INSERT INTO messages (public_id, account_id, status, envelope_from, from_header, "
        "subject, message_id_header, smtputf8, size, tags, metadata, attempts, due_at, "
        "expires_at, created_at, updated_at) VALUES ('msg_1', :account, 'delivered', "
        "'a@example.com', 'a@example.com', 's', '<m1@example.com>', false, 10, '[]', '{}', 1, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        account=account,
    )
    run(
        url,
        "INSERT INTO suppressions (account_id, value, kind, reason, created_at) "
        "VALUES (:account, 'x@example.net', 'email', 'manual', CURRENT_TIMESTAMP)",
        account=account,
    )

    migrate(url)
    assert my_differences(url) == []
    assert run(url, "SELECT public_id, purged_at FROM messages") == [("msg_1", None)]
    granted = permissions(url)
    assert granted["full"] == ISSUE_4_KEY + ADDED
    assert granted["limited"] == ["messages:read"]

    command.downgrade(alembic_config(url), BEFORE)
    assert permissions(url)["full"] == ISSUE_4_KEY
    assert run(url, "SELECT count(*) FROM messages") == [(1,)]
    assert run(url, "SELECT value FROM suppressions") == [("x@example.net",)]
    migrate(url)
    assert my_differences(url) == []
    columns, _ = schema(url)
    assert "purged_at" in columns
