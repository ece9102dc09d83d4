"""Suppressions, activity and archive (issue 5): listing indexes and body retention.

Revision ID: 2026_11_22_activity_archive
Revises: 2026_11_22_tracking
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "2026_11_22_activity_archive"
down_revision = "2026_11_22_tracking"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
