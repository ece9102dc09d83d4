"""Stats (issue 5): what keeps aggregates fast on millions of events.

``stats_hourly`` holds event counts per account and hour (and per provider, tag, sender),
rolled up from ``events`` after the fact by services.stats_rollup, so accepting and
delivering mail pays nothing for it; ``stats_rollup_state`` says how far the rollup got.
Events recorded before this revision are rolled up by the first passes (a backfill in
batches, each committed with the watermark, so a crash mid-way resumes where it stopped).

Revision ID: 2026_11_22_stats
Revises: 2026_11_22_activity_archive
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "2026_11_22_stats"
down_revision = "2026_11_22_activity_archive"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_hourly",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("bounce_class", sa.String(length=4), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_stats_hourly_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id",
            "hour",
            "type",
            "bounce_class",
            "provider_id",
            "tag",
            "sender",
            name=op.f("pk_stats_hourly"),
        ),
    )
    op.create_table(
        "stats_rollup_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rolled_through", sa.BigInteger(), nullable=False),
        sa.Column("pending_through", sa.BigInteger(), nullable=True),
        sa.Column("pending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_rollup_state")),
    )
    # One row, the watermark: nothing rolled up yet (the first passes backfill).
    state = sa.table(
        "stats_rollup_state",
        sa.column("id", sa.Integer()),
        sa.column("rolled_through", sa.BigInteger()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(state, [{"id": 1, "rolled_through": 0, "updated_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("stats_rollup_state")
    op.drop_table("stats_hourly")
