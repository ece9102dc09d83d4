"""Suppressions, activity and archive (issue 5): listing indexes and body retention.

Messages gain ``purged_at`` (set when the retention period removed their MIME), with a partial
index the purge scans; events and suppressions gain per-account indexes for their listings.

Revision ID: 2026_11_22_activity_archive
Revises: 2026_11_22_tracking
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2026_11_22_activity_archive"
down_revision = "2026_11_22_tracking"
branch_labels = None
depends_on = None

UNPURGED = sa.text("purged_at IS NULL")

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
PERMISSIONS_ADDED = ("suppressions:read", "suppressions:write", "events:read")

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


def upgrade() -> None:
    # Plain ALTER TABLE, never a batch "copy and move": on SQLite, recreating ``messages``
    # with foreign keys on would cascade-delete every event, recipient and body.
    op.add_column("messages", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_messages_unpurged",
        "messages",
        ["created_at"],
        unique=False,
        sqlite_where=UNPURGED,
        postgresql_where=UNPURGED,
    )
    op.create_index("ix_events_account_id", "events", ["account_id", "id"], unique=False)
    op.create_index(
        "ix_events_account_recipient", "events", ["account_id", "recipient", "id"], unique=False
    )
    op.create_index(
        "ix_suppressions_account_id", "suppressions", ["account_id", "id"], unique=False
    )
    _rewrite_permissions(grant=True)


def downgrade() -> None:
    _rewrite_permissions(grant=False)
    op.drop_index("ix_suppressions_account_id", table_name="suppressions")
    op.drop_index("ix_events_account_recipient", table_name="events")
    op.drop_index("ix_events_account_id", table_name="events")
    op.drop_index("ix_messages_unpurged", table_name="messages")
    op.drop_column("messages", "purged_at")
