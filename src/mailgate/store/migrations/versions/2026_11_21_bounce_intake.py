"""Bounce intake: events say whether a bounce was hard or soft; messages are found by their
Message-ID header (a bounce whose VERP address was lost names only that).

Revision ID: 2026_11_21_bounce_intake
Revises: 2026_11_21_smtp_users
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2026_11_21_bounce_intake"
down_revision = "2026_11_21_smtp_users"
branch_labels = None
depends_on = None

_events = sa.table(
    "events",
    sa.column("type", sa.String()),
    sa.column("bounce_class", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bounce_class", sa.String(length=4), nullable=True))
    # Every bounce recorded so far came from a 5xx answered during delivery: a hard one.
    op.execute(_events.update().where(_events.c.type == "bounce").values(bounce_class="hard"))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_message_id_header"), ["message_id_header"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_message_id_header"))
    # Plain ALTER TABLE: a batch "copy and move" of ``events`` would, on SQLite with foreign
    # keys on, cascade to the tables that reference it.
    op.drop_column("events", "bounce_class")
