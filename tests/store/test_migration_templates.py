"""The templates revision: the table matches the model on SQLite and PostgreSQL, full-access
keys gain the template permissions, and it goes down and up again."""

from __future__ import annotations

import json
from typing import Any

from alembic import command
from migration_support import all_differences, on_connection, run
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from mailgate.store.db import alembic_config, migrate

BEFORE = "2026_11_21_bounce_intake"
REVISION = "2026_11_22_templates"
ISSUE_4_PERMISSIONS = [
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


def template_differences(url: str) -> list[Any]:
    return [d for d in all_differences(url) if "templates" in repr(d)]


def tables(url: str) -> set[str]:
    found: set[str] = on_connection(url, lambda c: set(inspect(c).get_table_names()))
    return found


def indexes(url: str) -> set[str]:
    def look(connection: Connection) -> set[str]:
        inspector = inspect(connection)
        named = {str(i["name"]) for i in inspector.get_indexes("templates")}
        return named | {str(u["name"]) for u in inspector.get_unique_constraints("templates")}

    found: set[str] = on_connection(url, look)
    return found


def permissions(url: str) -> dict[str, list[str]]:
    rows = run(url, "SELECT name, permissions FROM api_keys ORDER BY id")
    return {name: value if isinstance(value, list) else json.loads(value) for name, value in rows}


def test_the_table_matches_the_model(fresh_database_url: str) -> None:
    assert template_differences(fresh_database_url) == []
    assert {
        "ix_templates_account_id",
        "uq_templates_account_name",
        "uq_templates_account_public_id",
    } <= indexes(fresh_database_url)


def test_down_and_up_again_with_permissions(fresh_database_url: str) -> None:
    url = fresh_database_url
    command.downgrade(alembic_config(url), BEFORE)
    assert "templates" not in tables(url)
    run(
        url,
        "INSERT INTO accounts (name, email, is_root, created_at) "
        "VALUES ('a', 'a@example.com', false, CURRENT_TIMESTAMP)",
    )
    account = run(url, "SELECT id FROM accounts")[0][0]
    for name, held in (("full", ISSUE_4_PERMISSIONS), ("sender", ["messages:send"])):
        run(
            url,
            "INSERT INTO api_keys (account_id, name, prefix, key_hash, permissions, created_at) "
            "VALUES (:account, :name, :prefix, :hash, :permissions, CURRENT_TIMESTAMP)",
            account=account,
            name=name,
            prefix=f"mg_{name}",
            hash=name.encode().ljust(32, b"\0"),
            permissions=json.dumps(held),
        )

    command.upgrade(alembic_config(url), REVISION)
    held = permissions(url)
    assert held["full"] == [*ISSUE_4_PERMISSIONS, "templates:read", "templates:write"]
    assert held["sender"] == ["messages:send"]  # a limited key stays limited
    run(
        url,
        "INSERT INTO templates (public_id, account_id, name, subject, html_body, text_body, "
        "sample_data, tags, created_at, updated_at) VALUES ('tmpl_1', :account, 'welcome', "
        "'Hi {{ name }}', '', 'Hi', '{}', '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        account=account,
    )

    command.downgrade(alembic_config(url), BEFORE)
    assert "templates" not in tables(url)
    assert permissions(url)["full"] == ISSUE_4_PERMISSIONS

    migrate(url)
    assert "templates" in tables(url)
    assert template_differences(url) == []
    assert {"templates:read", "templates:write"} <= set(permissions(url)["full"])
