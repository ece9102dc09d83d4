"""Tracking and unsubscribe (issue 5): open/click/unsubscribe events and their toggles.

Revision ID: 2026_11_22_tracking
Revises: 2026_11_22_webhooks
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "2026_11_22_tracking"
down_revision = "2026_11_22_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
