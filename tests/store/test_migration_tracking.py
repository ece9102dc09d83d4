"""The tracking revision: accounts gain their engagement defaults, messages the choice they
were accepted with, events who opened or clicked what; it matches the models on SQLite and
PostgreSQL and goes down and up again with the rows intact."""

from __future__ import annotations

import json
from typing import Any

from alembic import command
from migration_support import all_differences, on_connection, run
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from mailgate.store.db import alembic_config, migrate

BEFORE = "2026_11_22_webhooks"
REVISION = "2026_11_22_tracking"
COLUMNS = {
    "accounts": {"track_opens", "track_clicks", "transactional"},
    "messages": {"track_opens", "track_clicks", "list_unsubscribe"},
    "events": {"user_agent", "client_ip", "url", "automated"},
}


def columns(url: str) -> dict[str, set[str]]:
    def look(connection: Connection) -> dict[str, set[str]]:
        inspector = inspect(connection)
        return {t: {c["name"] for c in inspector.get_columns(t)} for t in COLUMNS}

    found: dict[str, set[str]] = on_connection(url, look)
    return found


def our_differences(url: str) -> list[Any]:
    """Differences between the database and the models that touch our columns."""

    def ours(diff: Any) -> bool:
        # ("add_column", schema, table, Column) / ("remove_column", ...) or, nested in a
        # list, ("modify_type", schema, table, column name, ...)
        first = diff[0] if isinstance(diff, list) else diff
        if not isinstance(first, tuple) or len(first) < 4:
            return False
        table, column = first[2], first[3]
        name = column if isinstance(column, str) else getattr(column, "name", None)
        return table in COLUMNS and name in COLUMNS[table]

    return [d for d in all_differences(url) if ours(d)]


def test_the_columns_match_the_models(fresh_database_url: str) -> None:
    assert our_differences(fresh_database_url) == []
    found = columns(fresh_database_url)
    for table, names in COLUMNS.items():
        assert names <= found[table], table


def test_down_and_up_again_keeps_the_rows_and_fills_the_defaults(fresh_database_url: str) -> None:
    url = fresh_database_url
    command.downgrade(alembic_config(url), BEFORE)
    found = columns(url)
    for table, names in COLUMNS.items():
        assert not names & found[table], table
    assert len(our_differences(url)) == sum(map(len, COLUMNS.values()))  # the check sees them
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
        "expires_at, created_at, updated_at) VALUES ('msg_1', :account, 'queued', "
        "'a@example.com', 'a@example.com', 's', '<m1@example.com>', false, 10, '[]', '{}', 0, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        account=account,
    )
    message = run(url, "SELECT id FROM messages")[0][0]
    run(
        url,
        "INSERT INTO events (account_id, message_id, type, recipient, created_at) "
        "VALUES (:account, :message, 'processed', NULL, CURRENT_TIMESTAMP)",
        account=account,
        message=message,
    )

    issue_4 = (
        '["providers:read", "providers:write", "keys:read", "messages:send", "messages:read", '
        '"smtp_users:read", "smtp_users:write", "ip_auth:read", "ip_auth:write"]'
    )
    for prefix, permissions in (("full", issue_4), ("narrow", '["messages:send"]')):
        run(
            url,
            "INSERT INTO api_keys (account_id, name, prefix, key_hash, permissions, created_at) "
            "VALUES (:account, 'k', :prefix, :hash, :permissions, CURRENT_TIMESTAMP)",
            account=account,
            prefix=prefix,
            hash=prefix.encode().ljust(32, b"\0"),
            permissions=permissions,
        )

    def held() -> dict[str, set[str]]:
        rows = run(url, "SELECT prefix, permissions FROM api_keys")
        return {p: set(json.loads(v) if isinstance(v, str) else v) for p, v in rows}

    # Up to this revision and back only: later revisions' own downgrades are not ours to test.
    command.upgrade(alembic_config(url), REVISION)
    assert {"tracking:read", "tracking:write"} <= held()["full"]  # full access stays full
    assert held()["narrow"] == {"messages:send"}
    assert our_differences(url) == []
    # untracked; not transactional-only: List-Unsubscribe from now on, as the issue says
    assert [
        tuple(r) for r in run(url, "SELECT track_opens, track_clicks, transactional FROM accounts")
    ] == [(False, False, False)]
    assert [
        tuple(r)
        for r in run(url, "SELECT track_opens, track_clicks, list_unsubscribe FROM messages")
    ] == [(False, False, False)]
    assert [
        tuple(r) for r in run(url, "SELECT user_agent, client_ip, url, automated FROM events")
    ] == [(None, None, None, None)]
    run(
        url,
        "UPDATE events SET user_agent = 'UA', client_ip = '192.0.2.1', url = 'https://x.example/'",
    )

    command.downgrade(alembic_config(url), BEFORE)
    assert not {"tracking:read", "tracking:write"} & held()["full"]
    assert run(url, "SELECT count(*) FROM events") == [(1,)]
    assert run(url, "SELECT count(*) FROM messages") == [(1,)]
    assert run(url, "SELECT count(*) FROM accounts") == [(1,)]
    migrate(url)
    assert our_differences(url) == []
    assert run(url, "SELECT count(*) FROM events") == [(1,)]
