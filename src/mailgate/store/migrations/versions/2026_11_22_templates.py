"""Templates (issue 5): account templates of subject, HTML and text.

Full-access API keys (holding every permission of issue 4) gain ``templates:read`` and
``templates:write``; downgrading takes them away again.

Revision ID: 2026_11_22_templates
Revises: 2026_11_21_bounce_intake
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2026_11_22_templates"
down_revision = "2026_11_21_bounce_intake"
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
    }
)
PERMISSIONS_ADDED = ("templates:read", "templates:write")

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
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("sample_data", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_templates_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("account_id", "public_id", name="uq_templates_account_public_id"),
        sa.UniqueConstraint("account_id", "name", name="uq_templates_account_name"),
    )
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.create_index("ix_templates_account_id", ["account_id", "id"], unique=False)
    _rewrite_permissions(grant=True)


def downgrade() -> None:
    _rewrite_permissions(grant=False)
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_index("ix_templates_account_id")
    op.drop_table("templates")
