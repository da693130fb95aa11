"""Flags on hard cases, their audit trail and cached scores (SQLite, PostgreSQL)."""

from db.config import resolve_db_url
from db.engine import DatabaseAccessError, DatabaseURLError
from db.migrate import SchemaVersionError
from db.schema import DEFAULT_CATEGORIES, SEVERITIES, STATUSES, TARGETS
from db.store import (
    KEEP,
    MAX_NOTE_CHARS,
    DatasetInfo,
    FlagEventRecord,
    FlagRecord,
    ImageFlagState,
    ImageRecord,
    ModelInfo,
    Region,
    ReviewerInfo,
    ReviewStore,
    StoredImage,
    ValidationError,
)

__all__ = [
    "DEFAULT_CATEGORIES",
    "KEEP",
    "MAX_NOTE_CHARS",
    "SEVERITIES",
    "STATUSES",
    "TARGETS",
    "DatabaseAccessError",
    "DatabaseURLError",
    "DatasetInfo",
    "FlagEventRecord",
    "FlagRecord",
    "ImageFlagState",
    "ImageRecord",
    "ModelInfo",
    "Region",
    "ReviewStore",
    "ReviewerInfo",
    "SchemaVersionError",
    "StoredImage",
    "ValidationError",
    "resolve_db_url",
]
