"""index votes by (annotator, item): the current answer and revision lookups

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_votes_annotator_item", "votes", ["annotator_id", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_votes_annotator_item", table_name="votes")
