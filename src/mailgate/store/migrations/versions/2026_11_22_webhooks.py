"""Webhooks (issue 5): endpoints, their secrets, and the outbox of deliveries.

The fan-out cursor starts at the newest event: webhooks hear of what happens from now on.
Full-access API keys gain the webhook permissions.

Revision ID: 2026_11_22_webhooks
Revises: 2026_11_22_templates
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2026_11_22_webhooks"
down_revision = "2026_11_22_templates"
branch_labels = None
depends_on = None

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
        "templates:read",
        "templates:write",
    }
)
PERMISSIONS_ADDED = ("webhooks:read", "webhooks:write")
PENDING_ONLY = sa.text("status = 'pending'")

_api_keys = sa.table("api_keys", sa.column("id", sa.Integer()), sa.column("permissions", sa.JSON()))
_events = sa.table("events", sa.column("id", sa.Integer()))
_cursor = sa.table(
    "webhook_fanout_cursor",
    sa.column("id", sa.Integer()),
    sa.column("last_event_id", sa.Integer()),
    sa.column("gaps", sa.JSON()),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


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
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("flavour", sa.String(length=16), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("previous_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_webhooks_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
        sa.UniqueConstraint("public_id", name=op.f("uq_webhooks_public_id")),
    )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.create_index("ix_webhooks_account_id", ["account_id", "id"], unique=False)

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retry_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_duration_ms", sa.Integer(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_webhook_deliveries_event_id_events"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("public_id", name=op.f("uq_webhook_deliveries_public_id")),
        sa.UniqueConstraint(
            "webhook_id", "event_id", name=op.f("uq_webhook_deliveries_webhook_id")
        ),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_due",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=PENDING_ONLY,
            postgresql_where=PENDING_ONLY,
        )
        batch_op.create_index(
            "ix_webhook_deliveries_order",
            ["webhook_id", "message_id", "event_id"],
            unique=False,
            sqlite_where=PENDING_ONLY,
            postgresql_where=PENDING_ONLY,
        )
        batch_op.create_index("ix_webhook_deliveries_log", ["webhook_id", "id"], unique=False)

    op.create_table(
        "webhook_fanout_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("gaps", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_fanout_cursor")),
    )
    newest = op.get_bind().execute(sa.select(sa.func.max(_events.c.id))).scalar()
    op.execute(
        _cursor.insert().values(
            id=1, last_event_id=newest or 0, gaps=[], updated_at=sa.func.current_timestamp()
        )
    )
    _rewrite_permissions(grant=True)


def downgrade() -> None:
    _rewrite_permissions(grant=False)
    op.drop_table("webhook_fanout_cursor")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_log")
        batch_op.drop_index("ix_webhook_deliveries_order")
        batch_op.drop_index("ix_webhook_deliveries_due")
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_index("ix_webhooks_account_id")
    op.drop_table("webhooks")
