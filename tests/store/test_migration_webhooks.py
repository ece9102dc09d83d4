"""The webhooks revision: its tables match the models on SQLite and PostgreSQL, the fan-out
cursor starts at the newest event, full-access keys gain the webhook permissions, and it goes
down and up again."""

from __future__ import annotations

from typing import Any

from alembic import command
from migration_support import all_differences, on_connection, run
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from mailgate.store.db import alembic_config, migrate

BEFORE = "2026_11_22_templates"
THIS = "2026_11_22_webhooks"
TABLES = {"webhooks", "webhook_deliveries", "webhook_fanout_cursor"}
FULL_ACCESS = [
    "providers:read",
    "providers:write",
    "keys:read",
    "messages:send",
    "messages:read",
    "smtp_users:read",
    "smtp_users:write",
    "ip_auth:read",
    "ip_auth:write",
    "templates:read",
    "templates:write",
]


def differences_in(url: str, names: set[str]) -> list[Any]:
    """What autogenerate would change in the tables ``names`` (other tables are others')."""

    return [d for d in all_differences(url) if _mentions(d, names)]


def _mentions(diff: Any, names: set[str]) -> bool:
    text = repr(diff)
    return any(f"'{name}'" in text or f"table={name}" in text for name in names)


def tables(url: str) -> set[str]:
    def look(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    found: set[str] = on_connection(url, look)
    return found


def test_the_tables_match_the_models(fresh_database_url: str) -> None:
    assert tables(fresh_database_url) >= TABLES
    assert differences_in(fresh_database_url, TABLES) == []
    assert [tuple(r) for r in run(fresh_database_url, "SELECT id FROM webhook_fanout_cursor")] == [
        (1,)
    ]


def test_down_and_up_again(fresh_database_url: str) -> None:
    url = fresh_database_url
    command.downgrade(alembic_config(url), BEFORE)
    assert not tables(url) & TABLES
    run(
        url,
        "INSERT INTO accounts (name, email, is_root, created_at) "
        "VALUES ('a', 'a@example.com', false, CURRENT_TIMESTAMP)",
    )
    account = run(url, "SELECT id FROM accounts")[0][0]
    for prefix, permissions in (("full", FULL_ACCESS), ("some", ["messages:send"])):
        run(
            url,
            "INSERT INTO api_keys (account_id, name, prefix, key_hash, permissions, created_at) "
            "VALUES (:account, :name, :name, :hash, :permissions, CURRENT_TIMESTAMP)",
            account=account,
            name=prefix,
            hash=prefix.encode().ljust(32, b"\0"),
            permissions=str(permissions).replace("'", '"'),
        )
    for _ in range(3):
        run(
            url,
            "INSERT INTO events (account_id, type, created_at) "
            "VALUES (:account, 'processed', CURRENT_TIMESTAMP)",
            account=account,
        )
    newest = run(url, "SELECT max(id) FROM events")[0][0]

    migrate(url, THIS)

    assert differences_in(url, TABLES) == []
    assert [tuple(r) for r in run(url, "SELECT last_event_id FROM webhook_fanout_cursor")] == [
        (newest,)
    ]
    held = dict(run(url, "SELECT name, permissions FROM api_keys"))
    assert "webhooks:write" in held["full"] and "webhooks:read" in held["full"]
    assert "webhooks" not in held["some"]

    command.downgrade(alembic_config(url), BEFORE)
    assert not tables(url) & TABLES
    held = dict(run(url, "SELECT name, permissions FROM api_keys"))
    assert "webhooks" not in str(held["full"])
    migrate(url)
    assert differences_in(url, TABLES) == []
