"""Tracking and unsubscribe (issue 5): open/click/unsubscribe events and their toggles.

Accounts get their defaults (track opens, track clicks, transactional-only), messages the
choice resolved when they were accepted, events who opened or clicked what.

Revision ID: 2026_11_22_tracking
Revises: 2026_11_22_webhooks
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "2026_11_22_tracking"
down_revision = "2026_11_22_webhooks"
branch_labels = None
depends_on = None

# A key holding every permission of issue 4 was a full-access key (the default): it keeps
# full access by gaining this revision's permissions; downgrading takes them away again.
FULL_ACCESS_BEFORE = frozenset(
    {
        "providers:read",
        "providers:write",
        "keys:read",
        "messages:send",
        "messages:read",
        "smtp_users:read",
        "smtp_users:write",
        "ip_auth:read",
        "ip_auth:write",
    }
)
PERMISSIONS_ADDED = ("tracking:read", "tracking:write")

_api_keys = sa.table("api_keys", sa.column("id", sa.Integer()), sa.column("permissions", sa.JSON()))


def _rewrite_permissions(*, grant: bool) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(_api_keys.c.id, _api_keys.c.permissions)).all()
    for key_id, permissions in rows:
        held = list(permissions or [])
        if grant and set(held) >= FULL_ACCESS_BEFORE:
            updated = held + [p for p in PERMISSIONS_ADDED if p not in held]
        elif not grant:
            updated = [p for p in held if p not in PERMISSIONS_ADDED]
        else:
            continue
        if updated != held:
            connection.execute(
                sa.update(_api_keys).where(_api_keys.c.id == key_id).values(permissions=updated)
            )


# Plain ALTER TABLE ADD/DROP COLUMN on both databases (SQLite has both since 3.35), never a
# batch table copy: on SQLite that drops and recreates the table, and with foreign keys on,
# dropping accounts or messages would delete every row that refers to them (ON DELETE CASCADE).
def _columns() -> dict[str, list[sa.Column[Any]]]:
    def flag(name: str, *, on: bool) -> sa.Column[Any]:
        # a constant default: SQLite adds such a column in place
        return sa.Column(name, sa.Boolean(), nullable=False, server_default="1" if on else "0")

    return {
        # The rule: mail not marked transactional-only carries List-Unsubscribe.
        "accounts": [
            flag("track_opens", on=False),
            flag("track_clicks", on=False),
            flag("transactional", on=False),
        ],
        "messages": [
            flag("track_opens", on=False),
            flag("track_clicks", on=False),
            flag("list_unsubscribe", on=False),
        ],
        "events": [
            sa.Column("user_agent", sa.String(length=512), nullable=True),
            sa.Column("client_ip", sa.String(length=45), nullable=True),
            sa.Column("url", sa.Text(), nullable=True),
            sa.Column("automated", sa.Boolean(), nullable=True),
        ],
    }


def upgrade() -> None:
    for table, columns in _columns().items():
        for column in columns:
            op.add_column(table, column)
    _rewrite_permissions(grant=True)


def downgrade() -> None:
    _rewrite_permissions(grant=False)
    for table, columns in reversed(_columns().items()):
        for column in reversed(columns):
            op.drop_column(table, column.name)
