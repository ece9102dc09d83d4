"""The SMTP users revision: its tables match the models on SQLite and PostgreSQL, it goes down
and up again, and full-access API keys keep full access across it."""

from __future__ import annotations

import json
from typing import Any

from alembic import command
from migration_support import all_differences, run

from mailgate.domain import Permission
from mailgate.store.db import alembic_config, migrate

TABLES = {"smtp_users", "ip_auth_networks"}
BEFORE = "2026_11_21_messages"
FULL = ["providers:read", "providers:write", "keys:read", "messages:send", "messages:read"]
ADDED = ["smtp_users:read", "smtp_users:write", "ip_auth:read", "ip_auth:write"]


def differences(url: str) -> list[Any]:
    return all_differences(url)


def _table_of(diff: Any) -> str | None:
    for part in diff if isinstance(diff, list) else [diff]:
        for item in part if isinstance(part, tuple) else ():
            name = getattr(item, "name", None)
            table = getattr(item, "table", None)
            if name in TABLES:
                return str(name)
            if table is not None and getattr(table, "name", None) in TABLES:
                return str(table.name)
            if isinstance(item, str) and item in TABLES:
                return item
    return None


def test_the_tables_match_the_models(fresh_database_url: str) -> None:
    mine = [d for d in differences(fresh_database_url) if _table_of(d)]

    assert mine == []


def test_down_and_up_again_and_full_access_keys_keep_full_access(
    fresh_database_url: str,
) -> None:
    url = fresh_database_url
    command.downgrade(alembic_config(url), BEFORE)
    tables = run(url, "SELECT 1 FROM accounts")  # the older schema is intact
    assert tables == []
    run(
        url,
        "INSERT INTO accounts (name, email, is_root, created_at) "
        "VALUES ('a', 'a@example.com', false, CURRENT_TIMESTAMP)",
    )
    account = run(url, "SELECT id FROM accounts")[0][0]
    for prefix, permissions in (("mg_full", FULL), ("mg_part", ["providers:read"])):
        run(
            url,
            "INSERT INTO api_keys (account_id, name, prefix, key_hash, permissions, created_at) "
            "VALUES (:account, :name, :prefix, :digest, :permissions, CURRENT_TIMESTAMP)",
            account=account,
            name=prefix,
            prefix=prefix,
            digest=b"\0" * 32,
            permissions=json.dumps(permissions),
        )

    migrate(url)

    held = {
        prefix: json.loads(permissions) if isinstance(permissions, str) else permissions
        for prefix, permissions in run(url, "SELECT prefix, permissions FROM api_keys")
    }
    # every later revision keeps a full-access key full: it holds each permission there is
    assert held["mg_full"][: len(FULL + ADDED)] == FULL + ADDED
    assert set(held["mg_full"]) == {p.value for p in Permission}
    assert held["mg_part"] == ["providers:read"]
    assert run(url, "SELECT count(*) FROM smtp_users") == [(0,)]
    assert run(url, "SELECT count(*) FROM ip_auth_networks") == [(0,)]

    command.downgrade(alembic_config(url), BEFORE)
    held = {
        prefix: json.loads(permissions) if isinstance(permissions, str) else permissions
        for prefix, permissions in run(url, "SELECT prefix, permissions FROM api_keys")
    }
    assert held == {"mg_full": FULL, "mg_part": ["providers:read"]}
    migrate(url)
    assert [d for d in differences(url) if _table_of(d)] == []
