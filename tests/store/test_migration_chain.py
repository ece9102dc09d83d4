"""Every revision since the relay's, down and up again in one go, on a database holding mail:
no row of the core tables is lost on the way (a SQLite "copy and move" of a referenced table
with foreign keys on would cascade-delete its dependants), and head matches the models."""

from __future__ import annotations

from alembic import command
from migration_support import all_differences, run

from mailgate.store.db import alembic_config, migrate

BEFORE = "2026_11_21_smtp_users"  # the last revision before bounce intake and issue 5's
TABLES = (
    "accounts",
    "api_keys",
    "messages",
    "message_contents",
    "message_tags",
    "message_recipients",
    "events",
    "suppressions",
    "smtp_users",
)


def counts(url: str) -> dict[str, int]:
    return {table: run(url, f"SELECT count(*) FROM {table}")[0][0] for table in TABLES}  # noqa: S608


def fill(url: str) -> None:
    """One row or more in each core table, written with the schema of ``BEFORE``."""
    run(
        url,
        "INSERT INTO accounts (name, email, is_root, created_at) "
        "VALUES ('a', 'a@x.test', false, CURRENT_TIMESTAMP)",
    )
    account = run(url, "SELECT id FROM accounts")[0][0]
    run(
        url,
        "INSERT INTO api_keys (account_id, name, prefix, key_hash, permissions, created_at) "
        "VALUES (:account, 'k', 'mg_chain', :hash, '[\"messages:send\"]', CURRENT_TIMESTAMP)",
        account=account,
        hash=b"\x00" * 32,
    )
    run(
        url,
        "INSERT INTO messages (public_id, account_id, status, envelope_from, from_header, "
        "subject, message_id_header, smtputf8, size, tags, metadata, attempts, due_at, "
        "expires_at, created_at, updated_at) VALUES ('msg_1', :account, 'delivered', "
        "'a@x.test', 'a@x.test', 's', '<m1@x.test>', false, 10, '[\"t\"]', '{}', 1, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        account=account,
    )
    message = run(url, "SELECT id FROM messages")[0][0]
    run(
        url, "INSERT INTO message_contents (message_id, raw) VALUES (:m, :raw)", m=message, raw=b"x"
    )
    run(url, "INSERT INTO message_tags (message_id, tag) VALUES (:m, 't')", m=message)
    run(
        url,
        "INSERT INTO message_recipients (message_id, address, kind, status, attempts, "
        "updated_at) VALUES (:m, 'b@y.test', 'to', 'delivered', 1, CURRENT_TIMESTAMP)",
        m=message,
    )
    for kind in ("processed", "delivered"):
        run(
            url,
            "INSERT INTO events (account_id, message_id, type, recipient, created_at) "
            "VALUES (:account, :m, :kind, 'b@y.test', CURRENT_TIMESTAMP)",
            account=account,
            m=message,
            kind=kind,
        )
    run(
        url,
        "INSERT INTO suppressions (account_id, value, kind, reason, created_at) "
        "VALUES (:account, 'c@y.test', 'email', 'manual', CURRENT_TIMESTAMP)",
        account=account,
    )
    run(
        url,
        "INSERT INTO smtp_users (public_id, account_id, username, password_hash, description, "
        "is_enabled, allowed_senders, created_at, updated_at) VALUES ('smtpu_1', :account, "
        "'relay-user', 'h', '', true, '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        account=account,
    )


def test_down_and_up_through_every_new_revision_keeps_every_row(fresh_database_url: str) -> None:
    url = fresh_database_url
    command.downgrade(alembic_config(url), BEFORE)
    fill(url)
    filled = counts(url)
    assert all(filled.values()), filled

    migrate(url)
    assert counts(url) == filled
    assert all_differences(url) == []

    command.downgrade(alembic_config(url), BEFORE)
    assert counts(url) == filled

    migrate(url)
    assert counts(url) == filled
    assert all_differences(url) == []
