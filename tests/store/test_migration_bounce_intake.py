"""The bounce intake revision: events gain ``bounce_class`` (bounces recorded before it are
hard ones), messages an index on their Message-ID header; it matches the models on SQLite and
PostgreSQL and goes down and up again with the data intact."""

from __future__ import annotations

from typing import Any

from alembic import command
from migration_support import all_differences, on_connection, run
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from mailgate.store.db import alembic_config, migrate

BEFORE = "2026_11_21_smtp_users"
TABLES = {"events", "messages"}
INDEX = "ix_messages_message_id_header"


def differences(url: str) -> list[Any]:
    return [d for d in all_differences(url) if _table_of(d) in TABLES]


def _table_of(diff: Any) -> str | None:
    for part in diff if isinstance(diff, list) else [diff]:
        for item in part if isinstance(part, tuple) else ():
            table = getattr(item, "table", None)
            if table is not None and getattr(table, "name", None):
                return str(table.name)
            if isinstance(item, str) and item in TABLES:
                return item
            if getattr(item, "name", None) in TABLES:
                return str(item.name)
    return None


def schema(url: str) -> tuple[set[str], set[str]]:
    """The columns of events and the index names of messages."""

    def look(connection: Connection) -> tuple[set[str], set[str]]:
        inspector = inspect(connection)
        columns = {c["name"] for c in inspector.get_columns("events")}
        indexes = {str(i["name"]) for i in inspector.get_indexes("messages")}
        return columns, indexes

    result: tuple[set[str], set[str]] = on_connection(url, look)
    return result


def test_the_tables_match_the_models(fresh_database_url: str) -> None:
    assert differences(fresh_database_url) == []
    columns, indexes = schema(fresh_database_url)
    assert "bounce_class" in columns
    assert INDEX in indexes


def test_down_and_up_again_and_old_bounces_become_hard(fresh_database_url: str) -> None:
    url = fresh_database_url
    command.downgrade(alembic_config(url), BEFORE)
    columns, indexes = schema(url)
    assert "bounce_class" not in columns
    assert INDEX not in indexes
    run(
        url,
        "INSERT INTO accounts (name, email, is_root, created_at) "
        "VALUES ('a', 'a@example.com', false, CURRENT_TIMESTAMP)",
    )
    account = run(url, "SELECT id FROM accounts")[0][0]
    run(
        url,
        "INSERT INTO messages (public_id, account_id, status, envelope_from, from_header, "
        "subject, message_id_header, smtputf8, size, tags, metadata, attempts, due_at, "
        "expires_at, created_at, updated_at) VALUES ('msg_1', :account, 'bounced', "
        "'a@example.com', 'a@example.com', 's', '<m1@example.com>', false, 10, '[]', '{}', 1, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        account=account,
    )
    message = run(url, "SELECT id FROM messages")[0][0]
    for kind in ("processed", "bounce", "delivered"):
        run(
            url,
            "INSERT INTO events (account_id, message_id, type, recipient, created_at) "
            "VALUES (:account, :message, :kind, 'x@example.net', CURRENT_TIMESTAMP)",
            account=account,
            message=message,
            kind=kind,
        )

    migrate(url)

    classes = run(url, "SELECT type, bounce_class FROM events ORDER BY id")
    assert [tuple(row) for row in classes] == [
        ("processed", None),
        ("bounce", "hard"),
        ("delivered", None),
    ]
    assert differences(url) == []
    found = run(
        url, "SELECT id FROM messages WHERE message_id_header = :header", header="<m1@example.com>"
    )
    assert [tuple(row) for row in found] == [(message,)]

    command.downgrade(alembic_config(url), BEFORE)
    columns, indexes = schema(url)
    assert "bounce_class" not in columns
    assert INDEX not in indexes
    assert run(url, "SELECT count(*) FROM events") == [(3,)]  # rows kept, one column fewer

    migrate(url)
    assert differences(url) == []
    assert [tuple(r) for r in run(url, "SELECT bounce_class FROM events ORDER BY id")] == [
        (None,),
        ("hard",),
        (None,),
    ]
