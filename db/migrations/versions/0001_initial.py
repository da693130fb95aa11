"""Initial schema: reviewers, datasets, images, model versions, categories, flags, flag events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "reviewers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        _ts("created_at"),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("root", sa.Text, nullable=False),
        sa.Column("layout", sa.String(64), nullable=False),
        sa.Column("split", sa.String(64), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("name", "split", name="uq_datasets_name_split"),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("image_key", sa.String(255), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.UniqueConstraint("dataset_id", "image_key", name="uq_images_dataset_key"),
        sa.CheckConstraint("width > 0 AND height > 0", name="ck_images_size"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("file_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "categories",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "flags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id"), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("model_a_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("model_b_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("region_x0", sa.Integer),
        sa.Column("region_y0", sa.Integer),
        sa.Column("region_x1", sa.Integer),
        sa.Column("region_y1", sa.Integer),
        sa.Column("reviewer_id", sa.Integer, sa.ForeignKey("reviewers.id"), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "target IN ('ground_truth', 'model_a', 'model_b', 'both_models')",
            name="ck_flags_target",
        ),
        sa.CheckConstraint("severity IN ('critical', 'major', 'minor')", name="ck_flags_severity"),
        sa.CheckConstraint(
            "status IN ('open', 'confirmed', 'dismissed', 'resolved')", name="ck_flags_status"
        ),
        sa.CheckConstraint(
            "(region_x0 IS NULL AND region_y0 IS NULL AND region_x1 IS NULL AND region_y1 IS NULL)"
            " OR (region_x0 >= 0 AND region_y0 >= 0"
            " AND region_x1 > region_x0 AND region_y1 > region_y0)",
            name="ck_flags_region",
        ),
    )
    op.create_index("ix_flags_image_id", "flags", ["image_id"])
    op.create_table(
        "flag_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("flag_id", sa.Integer, sa.ForeignKey("flags.id"), nullable=False),
        sa.Column("reviewer_id", sa.Integer, sa.ForeignKey("reviewers.id"), nullable=False),
        _ts("at"),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.CheckConstraint("action IN ('create', 'update')", name="ck_events_action"),
    )
    op.create_index("ix_flag_events_flag_id", "flag_events", ["flag_id"])


def downgrade() -> None:
    for table in (
        "flag_events",
        "flags",
        "categories",
        "model_versions",
        "images",
        "datasets",
        "reviewers",
    ):
        op.drop_table(table)
