"""Cached per-image scores per model version, and an index for the status/severity filters.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_scores",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id"), primary_key=True),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_image_scores_image_id", "image_scores", ["image_id"])
    op.create_index("ix_flags_status_severity", "flags", ["status", "severity"])


def downgrade() -> None:
    op.drop_index("ix_flags_status_severity", "flags")
    op.drop_table("image_scores")
