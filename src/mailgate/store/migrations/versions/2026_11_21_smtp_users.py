"""SMTP users and IP authentication for the relay; full-access API keys gain their permissions.

Revision ID: 2026_11_21_smtp_users
Revises: 2026_11_21_messages
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2026_11_21_smtp_users"
down_revision = "2026_11_21_messages"
branch_labels = None
depends_on = None

# Every permission there was before this revision: a key holding them all was a full-access
# key (the default), so it keeps full access by gaining the new ones.
PERMISSIONS_BEFORE = frozenset(
    {"providers:read", "providers:write", "keys:read", "messages:send", "messages:read"}
)
PERMISSIONS_ADDED = ("smtp_users:read", "smtp_users:write", "ip_auth:read", "ip_auth:write")

_api_keys = sa.table("api_keys", sa.column("id", sa.Integer()), sa.column("permissions", sa.JSON()))


def _rewrite_permissions(*, grant: bool) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(_api_keys.c.id, _api_keys.c.permissions)).all()
    for key_id, permissions in rows:
        held = list(permissions or [])
        if grant and set(held) >= PERMISSIONS_BEFORE:
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
        "smtp_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("allowed_senders", sa.JSON(), nullable=False),
        sa.Column("rate_limit_max", sa.Integer(), nullable=True),
        sa.Column("rate_limit_period", sa.Integer(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(rate_limit_max IS NULL) = (rate_limit_period IS NULL)",
            name=op.f("ck_smtp_users_rate_limit_pair"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_smtp_users_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smtp_users")),
        sa.UniqueConstraint("public_id", name=op.f("uq_smtp_users_public_id")),
        sa.UniqueConstraint("username", name=op.f("uq_smtp_users_username")),
    )
    with op.batch_alter_table("smtp_users", schema=None) as batch_op:
        batch_op.create_index("ix_smtp_users_account_id", ["account_id", "id"], unique=False)

    op.create_table(
        "ip_auth_networks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("range_start", sa.String(length=32), nullable=False),
        sa.Column("range_end", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_ip_auth_networks_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_auth_networks")),
        sa.UniqueConstraint("network", name=op.f("uq_ip_auth_networks_network")),
        sa.UniqueConstraint("public_id", name=op.f("uq_ip_auth_networks_public_id")),
    )
    with op.batch_alter_table("ip_auth_networks", schema=None) as batch_op:
        batch_op.create_index("ix_ip_auth_networks_account_id", ["account_id", "id"], unique=False)
        batch_op.create_index(
            "ix_ip_auth_networks_range", ["version", "range_start", "range_end"], unique=False
        )

    _rewrite_permissions(grant=True)


def downgrade() -> None:

    _rewrite_permissions(grant=False)
    with op.batch_alter_table("ip_auth_networks", schema=None) as batch_op:
        batch_op.drop_index("ix_ip_auth_networks_range")
        batch_op.drop_index("ix_ip_auth_networks_account_id")

    op.drop_table("ip_auth_networks")
    with op.batch_alter_table("smtp_users", schema=None) as batch_op:
        batch_op.drop_index("ix_smtp_users_account_id")

    op.drop_table("smtp_users")
