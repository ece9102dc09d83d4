"""Stats (issue 5): what keeps aggregates fast on millions of events.

Revision ID: 2026_11_22_stats
Revises: 2026_11_22_activity_archive
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "2026_11_22_stats"
down_revision = "2026_11_22_activity_archive"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
