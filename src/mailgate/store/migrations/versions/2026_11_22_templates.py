"""Templates (issue 5): account templates of subject, HTML and text.

Revision ID: 2026_11_22_templates
Revises: 2026_11_21_bounce_intake
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "2026_11_22_templates"
down_revision = "2026_11_21_bounce_intake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
