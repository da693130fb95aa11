"""The ORM tables at the newest migration; `db/migrations/versions` must build exactly this schema.

The vocabularies (targets, severities, statuses) are stored as short strings with CHECK
constraints rather than native enums, so adding a value later is a plain migration on both SQLite
and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TARGETS = ("ground_truth", "model_a", "model_b", "both_models")
SEVERITIES = ("critical", "major", "minor")  # worst first
STATUSES = ("open", "confirmed", "dismissed", "resolved")
DEFAULT_CATEGORIES = (
    "missed person",
    "missed vehicle",
    "missed pole/sign/light",
    "false alarm",
    "wrong ground truth",
    "boundary error",
    "other",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in and out: SQLite keeps no zone, so it stores naive UTC and we re-attach it."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only accepts aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Reviewer(Base):
    __tablename__ = "reviewers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("name", "split", name="uq_datasets_name_split"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    root: Mapped[str] = mapped_column(Text)
    layout: Mapped[str] = mapped_column(String(64))
    split: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("dataset_id", "image_key", name="uq_images_dataset_key"),
        CheckConstraint("width > 0 AND height > 0", name="ck_images_size"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    image_key: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(128))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    file_hash: Mapped[str] = mapped_column(String(128), unique=True)
    checkpoint_meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime]


class Category(Base):
    __tablename__ = "categories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    position: Mapped[int] = mapped_column(Integer)


class Flag(Base):
    __tablename__ = "flags"
    __table_args__ = (
        CheckConstraint(_in("target", TARGETS), name="ck_flags_target"),
        CheckConstraint(_in("severity", SEVERITIES), name="ck_flags_severity"),
        CheckConstraint(_in("status", STATUSES), name="ck_flags_status"),
        CheckConstraint(
            "(region_x0 IS NULL AND region_y0 IS NULL AND region_x1 IS NULL AND region_y1 IS NULL)"
            " OR (region_x0 >= 0 AND region_y0 >= 0"
            " AND region_x1 > region_x0 AND region_y1 > region_y0)",
            name="ck_flags_region",
        ),
        Index("ix_flags_status_severity", "status", "severity"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    target: Mapped[str] = mapped_column(String(16))
    model_a_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    model_b_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    severity: Mapped[str] = mapped_column(String(16))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    region_x0: Mapped[int | None] = mapped_column(Integer)
    region_y0: Mapped[int | None] = mapped_column(Integer)
    region_x1: Mapped[int | None] = mapped_column(Integer)
    region_y1: Mapped[int | None] = mapped_column(Integer)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FlagEvent(Base):
    """One row per create or change of a flag; `changes` maps field -> {"old": ..., "new": ...}."""

    __tablename__ = "flag_events"
    __table_args__ = (CheckConstraint("action IN ('create', 'update')", name="ck_events_action"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id"))
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(16))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)


SETTINGS_CHARS = 64
"""Longest settings fingerprint a score row can carry."""
LEGACY_SETTINGS = "legacy"
"""Fingerprint of the scores cached before revision 0003: their settings were not recorded,
so they match no settings of a running app (kept, never served)."""


class ImageScore(Base):
    """Cached per-image scores of one model version under one settings fingerprint
    (revision 0003; 0002 keyed them by model and image only)."""

    __tablename__ = "model_image_scores"
    model_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), primary_key=True, index=True)
    settings: Mapped[str] = mapped_column(String(SETTINGS_CHARS), primary_key=True)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[datetime]


class PairScore(Base):
    """Cached counts comparing two model versions on one image (critical pixels both got
    right, only A, only B, neither) under one settings fingerprint (revision 0003)."""

    __tablename__ = "pair_image_scores"
    model_a_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    model_b_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), primary_key=True, index=True)
    settings: Mapped[str] = mapped_column(String(SETTINGS_CHARS), primary_key=True)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[datetime]
