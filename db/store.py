"""The review store: the only way the GUI and the export read or write flags.

Every public method runs its own transaction and returns frozen dataclasses or plain dicts, never
ORM objects, so callers hold no sessions. Input is validated before anything is written: a bad
value raises `ValidationError` and the transaction is rolled back whole.

Categories live in a table. An empty database is seeded with the categories passed to
`ReviewStore.open` (default: `DEFAULT_CATEGORIES`); later opens with a list add the missing names
and never delete any, because existing flags refer to them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, Select, and_, delete, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from db.config import resolve_db_url
from db.engine import SQLITE_BEGIN, access_error, is_read_only, make_engine
from db.migrate import lock_schema, upgrade
from db.schema import (
    DEFAULT_CATEGORIES,
    SETTINGS_CHARS,
    SEVERITIES,
    STATUSES,
    TARGETS,
    Category,
    Dataset,
    Flag,
    FlagEvent,
    Image,
    ImageScore,
    ModelVersion,
    PairScore,
    Reviewer,
    utcnow,
)

MAX_NOTE_CHARS = 10_000
MAX_NAME_CHARS = 255
_BULK_CHUNK = 500  # rows per multi-row INSERT, well under SQLite's bound-parameter limit
_LOCK_RETRIES = 5

T = TypeVar("T")


class ValidationError(ValueError):
    """Bad input from the caller; the message names the offending value. Nothing was written."""


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()
"""Default of `update_flag` fields: leave the value as it is (None is a real value for region)."""


@dataclass(frozen=True, slots=True)
class Region:
    """A box in image pixels, half-open: columns x0..x1-1 and rows y0..y1-1."""

    x0: int
    y0: int
    x1: int
    y1: int

    def as_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """An image to register: `image_key` is stable across machines (e.g. the Cityscapes stem)."""

    image_key: str
    path: str
    content_hash: str
    """Hash of everything the image's scores depend on (its file and its annotation)."""
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class StoredImage:
    id: int
    dataset_id: int
    image_key: str
    path: str
    content_hash: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class ReviewerInfo:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    id: int
    name: str
    root: str
    layout: str
    split: str


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: int
    name: str
    file_hash: str
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FlagRecord:
    id: int
    image_id: int
    image_key: str
    dataset_id: int
    target: str
    model_a_id: int
    model_a: str
    model_b_id: int
    model_b: str
    severity: str
    category: str
    status: str
    note: str
    region: Region | None
    reviewer: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FlagEventRecord:
    """One audit entry; `changes` maps each field to its (old, new) pair (old is None on create)."""

    id: int
    flag_id: int
    reviewer: str
    at: datetime
    action: str
    changes: dict[str, tuple[Any, Any]]


@dataclass(frozen=True, slots=True)
class ImageFlagState:
    """An image with its flags summarised: a count per status, and the worst severity among the
    flags that are not dismissed (a dismissed flag is a judgement that nothing is wrong)."""

    image_id: int
    image_key: str
    path: str
    counts: dict[str, int] = field(default_factory=dict)
    worst_severity: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# ---------------------------------------------------------------------------- validation helpers


def _plain_text(value: str, what: str) -> str:
    """Text both back ends store alike: PostgreSQL refuses NUL and neither can encode a lone
    surrogate (half of a UTF-16 pair, e.g. from a badly decoded file name) as UTF-8."""
    nul = value.find("\x00")
    if nul >= 0:
        raise ValidationError(f"{what} contains a NUL character (at position {nul}); remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(value[error.start])
        raise ValidationError(
            f"{what} contains a lone surrogate U+{code:04X} (at position {error.start}), which "
            "is not text; retype that character"
        ) from None
    return value


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must be a non-empty string, got {value!r}")
    value = _plain_text(value.strip(), what)
    if len(value) > MAX_NAME_CHARS:
        raise ValidationError(f"{what} is {len(value)} characters long; at most {MAX_NAME_CHARS}")
    return value


def _choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValidationError(f"unknown {what} {value!r}; expected one of: {', '.join(allowed)}")
    return value


def _note(value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"note must be a string, got {type(value).__name__}")
    if len(value) > MAX_NOTE_CHARS:
        raise ValidationError(
            f"note is {len(value)} characters long; at most {MAX_NOTE_CHARS} are allowed"
        )
    return _plain_text(value, "note")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an integer, got {value!r}")
    return value


def _region(value: Any) -> Region | None:
    if value is None:
        return None
    if isinstance(value, Region):
        coords = value.as_list()
    elif isinstance(value, list | tuple) and len(value) == 4:
        coords = list(value)
    else:
        raise ValidationError(f"region must be (x0, y0, x1, y1) or None, got {value!r}")
    x0, y0, x1, y1 = (_int(c, "region coordinate") for c in coords)
    if not (x0 < x1 and y0 < y1):
        raise ValidationError(f"region {tuple(coords)} is empty: need x0 < x1 and y0 < y1")
    return Region(x0, y0, x1, y1)


def _region_in_image(region: Region | None, image: Image | Row[Any]) -> None:
    if region is None:
        return
    if region.x0 < 0 or region.y0 < 0 or region.x1 > image.width or region.y1 > image.height:
        raise ValidationError(
            f"region {tuple(region.as_list())} lies outside image {image.image_key!r} "
            f"({image.width}x{image.height} pixels)"
        )


def _json_value(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} is not plain JSON data: {exc}") from None


def _scores(scores: Any, image_id: int) -> dict[str, float | None]:
    """Scores as stored: an undefined score (None, or NaN) is stored as JSON null, read as None."""
    if not isinstance(scores, Mapping) or not scores:
        raise ValidationError(f"scores for image {image_id} must be a non-empty dict")
    stored: dict[str, float | None] = {}
    for key, value in scores.items():
        if not isinstance(key, str) or not key:
            raise ValidationError(f"score name {key!r} for image {image_id} must be a string")
        if value is None:
            stored[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"score {key!r} for image {image_id} is not a number: {value!r}")
        if math.isinf(value):
            raise ValidationError(f"score {key!r} for image {image_id} is infinite")
        stored[key] = None if math.isnan(value) else value
    return stored


def _counts(counts: Any, image_id: int) -> dict[str, int]:
    if not isinstance(counts, Mapping) or not counts:
        raise ValidationError(f"pair counts for image {image_id} must be a non-empty dict")
    for key, value in counts.items():
        if not isinstance(key, str) or not key:
            raise ValidationError(f"count name {key!r} for image {image_id} must be a string")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(
                f"count {key!r} for image {image_id} must be a non-negative integer: {value!r}"
            )
    return dict(counts)


def _settings(value: Any) -> str:
    """A settings fingerprint: which scoring settings a cached row was computed under."""
    if not isinstance(value, str) or not value or len(value) > SETTINGS_CHARS:
        raise ValidationError(
            f"settings fingerprint must be a string of 1 to {SETTINGS_CHARS} characters, "
            f"got {value!r}"
        )
    return value


def _values(value: str | Collection[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


# ----------------------------------------------------------------------------------- the store


class ReviewStore:
    """Flags, their audit trail and cached scores in SQLite or PostgreSQL; see the module doc."""

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine whose schema is already at head; use `ReviewStore.open` normally."""
        self._engine = engine
        self._read_engine = engine.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
        self._dialect = engine.dialect.name

    @classmethod
    def open(
        cls, url: str | None = None, *, categories: Iterable[str] | None = None
    ) -> ReviewStore:
        """Open (creating or upgrading the schema) the store at `url` (see `resolve_db_url`)."""
        wanted = [_name(c, "category") for c in categories] if categories is not None else None
        resolved = resolve_db_url(url)
        engine = make_engine(resolved)
        try:
            upgrade(engine)
            store = cls(engine)
            store._seed_categories(wanted)
        except SQLAlchemyError as error:
            engine.dispose()
            raise access_error(resolved, error) from None
        except BaseException:
            engine.dispose()
            raise
        return store

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def url(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- transactions

    def _write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one write transaction; retry if SQLite stayed locked past its timeout."""
        for attempt in range(_LOCK_RETRIES):
            try:
                with Session(self._engine, expire_on_commit=False) as session, session.begin():
                    return work(session)
            except SQLAlchemyError as exc:
                if is_read_only(exc):
                    raise access_error(self.url, exc) from None
                locked = isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)
                if not locked or attempt == _LOCK_RETRIES - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._read_engine) as session, session.begin():
            yield session

    def _insert(self, table: Any) -> Any:
        """An INSERT that supports ON CONFLICT on both back ends."""
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    # ------------------------------------------------------------------------- categories

    def _seed_categories(self, wanted: list[str] | None) -> None:
        def work(session: Session) -> None:
            lock_schema(session.connection())
            existing = session.scalars(select(Category.name).order_by(Category.position)).all()
            names = wanted if wanted is not None else ([] if existing else DEFAULT_CATEGORIES)
            missing = [n for n in dict.fromkeys(names) if n not in existing]
            for offset, name in enumerate(missing):
                session.add(Category(name=name, position=len(existing) + offset))

        self._write(work)

    def categories(self) -> list[str]:
        with self._read() as session:
            return list(session.scalars(select(Category.name).order_by(Category.position)))

    def add_category(self, name: str) -> list[str]:
        """Add a category at the end of the list (no-op if present); returns the new list."""
        self._seed_categories([_name(name, "category")])
        return self.categories()

    # ------------------------------------------------------------------------- reviewers

    def _reviewer_id(self, session: Session, name: str) -> int:
        """The reviewer's id, adding the name on first use (safe against a concurrent first use)."""
        query = select(Reviewer.id).where(Reviewer.name == name)
        found = session.scalars(query).one_or_none()
        if found is None:
            stmt = self._insert(Reviewer).values(name=name, created_at=utcnow())
            session.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
            found = session.scalars(query).one()
        return found

    def ensure_reviewer(self, name: str) -> ReviewerInfo:
        name = _name(name, "reviewer name")
        return ReviewerInfo(self._write(lambda s: self._reviewer_id(s, name)), name)

    def list_reviewers(self) -> list[ReviewerInfo]:
        with self._read() as session:
            rows = session.execute(select(Reviewer.id, Reviewer.name).order_by(Reviewer.name))
            return [ReviewerInfo(*row) for row in rows]

    # ------------------------------------------------------------------------- datasets, images

    def register_dataset(self, name: str, root: str, layout: str, split: str) -> DatasetInfo:
        """Idempotent by (name, split); a new root or layout replaces the old (the data moved)."""
        name = _name(name, "dataset name")
        split = _name(split, "split")
        layout = _name(layout, "layout")
        root = _name(str(root), "dataset root")

        def work(session: Session) -> int:
            stmt = self._insert(Dataset).values(
                name=name, root=root, layout=layout, split=split, created_at=utcnow()
            )
            session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["name", "split"], set_={"root": root, "layout": layout}
                )
            )
            return session.scalars(
                select(Dataset.id).where(Dataset.name == name, Dataset.split == split)
            ).one()

        return DatasetInfo(self._write(work), name, root, layout, split)

    def list_datasets(self) -> list[DatasetInfo]:
        with self._read() as session:
            rows = session.execute(
                select(
                    Dataset.id, Dataset.name, Dataset.root, Dataset.layout, Dataset.split
                ).order_by(Dataset.name, Dataset.split)
            )
            return [DatasetInfo(*row) for row in rows]

    def register_images(self, dataset_id: int, images: Iterable[ImageRecord]) -> dict[str, int]:
        """Add or refresh images in bulk; returns image_key -> id. Ids never change for a key.

        An image whose content hash changed (its file or annotation was replaced) loses its
        cached scores, which described the old content; its flags stay.
        """
        records = list(images)
        seen: set[str] = set()
        for rec in records:
            key = _name(rec.image_key, "image key")
            if key in seen:
                raise ValidationError(f"image key {key!r} appears twice in one registration")
            seen.add(key)
            _name(rec.path, f"path of image {key!r}")
            _name(rec.content_hash, f"content hash of image {key!r}")
            for what in ("width", "height"):
                size = _int(getattr(rec, what), f"{what} of image {key!r}")
                if size <= 0:
                    raise ValidationError(f"{what} of image {key!r} must be positive, got {size}")

        def work(session: Session) -> dict[str, int]:
            self._require(session, Dataset, dataset_id, "dataset")
            for start in range(0, len(records), _BULK_CHUNK):
                chunk = {r.image_key.strip(): r for r in records[start : start + _BULK_CHUNK]}
                changed = [
                    image_id
                    for image_id, key, content_hash in session.execute(
                        select(Image.id, Image.image_key, Image.content_hash).where(
                            Image.dataset_id == dataset_id, Image.image_key.in_(list(chunk))
                        )
                    )
                    if chunk[key].content_hash != content_hash
                ]
                if changed:
                    for table in (ImageScore, PairScore):
                        session.execute(delete(table).where(table.image_id.in_(changed)))
                rows = [
                    {
                        "dataset_id": dataset_id,
                        "image_key": r.image_key.strip(),
                        "path": r.path,
                        "content_hash": r.content_hash,
                        "width": r.width,
                        "height": r.height,
                    }
                    for r in records[start : start + _BULK_CHUNK]
                ]
                stmt = self._insert(Image).values(rows)
                session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["dataset_id", "image_key"],
                        set_={
                            c: stmt.excluded[c] for c in ("path", "content_hash", "width", "height")
                        },
                    )
                )
            rows = session.execute(
                select(Image.image_key, Image.id).where(Image.dataset_id == dataset_id)
            )
            return {key: image_id for key, image_id in rows if key in seen}

        return self._write(work)

    def get_image(self, image_id: int) -> StoredImage:
        with self._read() as session:
            image = self._require(session, Image, image_id, "image")
            return StoredImage(
                image.id,
                image.dataset_id,
                image.image_key,
                image.path,
                image.content_hash,
                image.width,
                image.height,
            )

    # ------------------------------------------------------------------------- model versions

    def register_model(self, name: str, file_hash: str, metadata: Mapping[str, Any]) -> ModelInfo:
        """Idempotent by file hash: a checkpoint seen before keeps its first name and metadata."""
        name = _name(name, "model name")
        file_hash = _name(file_hash, "model file hash")
        meta = dict(metadata)
        _json_value(meta, f"metadata of model {name!r}")

        def work(session: Session) -> ModelInfo:
            stmt = self._insert(ModelVersion).values(
                name=name, file_hash=file_hash, checkpoint_meta=meta, created_at=utcnow()
            )
            session.execute(stmt.on_conflict_do_nothing(index_elements=["file_hash"]))
            row = session.scalars(
                select(ModelVersion).where(ModelVersion.file_hash == file_hash)
            ).one()
            return ModelInfo(row.id, row.name, row.file_hash, dict(row.checkpoint_meta))

        return self._write(work)

    def list_models(self) -> list[ModelInfo]:
        with self._read() as session:
            rows = session.scalars(select(ModelVersion).order_by(ModelVersion.id))
            return [ModelInfo(m.id, m.name, m.file_hash, dict(m.checkpoint_meta)) for m in rows]

    # ------------------------------------------------------------------------- flags

    @staticmethod
    def _require(session: Session, table: type[T], row_id: int, what: str) -> T:
        _int(row_id, f"{what} id")
        row = session.get(table, row_id)
        if row is None:
            raise ValidationError(f"unknown {what} id {row_id}")
        return row

    @staticmethod
    def _category_id(session: Session, name: str) -> int:
        found = session.scalars(select(Category.id).where(Category.name == name)).one_or_none()
        if found is None:
            known = session.scalars(select(Category.name).order_by(Category.position)).all()
            raise ValidationError(f"unknown category {name!r}; expected one of: {', '.join(known)}")
        return found

    def create_flag(
        self,
        *,
        image_id: int,
        reviewer: str,
        target: str,
        model_a_id: int,
        model_b_id: int,
        severity: str,
        category: str,
        note: str = "",
        region: Region | tuple[int, int, int, int] | None = None,
        status: str = "open",
    ) -> FlagRecord:
        """Record a reviewer's judgement on one image, with its 'create' audit event."""
        reviewer = _name(reviewer, "reviewer name")
        _choice(target, TARGETS, "target")
        _choice(severity, SEVERITIES, "severity")
        _choice(status, STATUSES, "status")
        note = _note(note)
        box = _region(region)

        for what, value in (("image", image_id), ("model", model_a_id), ("model", model_b_id)):
            _int(value, f"{what} id")

        def work(session: Session) -> FlagRecord:
            # Core statements, not the unit of work: this is the GUI's hot path.
            conn = session.connection()
            image = _flag_image(conn, image_id, box)
            model_names = _model_names(conn, (model_a_id, model_b_id))
            category_id = self._category_id(session, category)
            reviewer_id = self._reviewer_id(session, reviewer)
            now = utcnow()
            fields = {
                "image_id": image_id,
                "target": target,
                "model_a_id": model_a_id,
                "model_b_id": model_b_id,
                "severity": severity,
                "status": status,
                "note": note,
            }
            flag_id = conn.execute(
                insert(Flag)
                .values(
                    **fields,
                    category_id=category_id,
                    reviewer_id=reviewer_id,
                    created_at=now,
                    updated_at=now,
                    **_region_columns(box),
                )
                .returning(Flag.id)
            ).scalar_one()
            created = fields | {"category": category, "region": _box_list(box)}
            conn.execute(
                insert(FlagEvent).values(
                    flag_id=flag_id,
                    reviewer_id=reviewer_id,
                    at=now,
                    action="create",
                    changes={k: {"old": None, "new": v} for k, v in created.items()},
                )
            )
            return FlagRecord(
                id=flag_id,
                image_key=image.image_key,
                dataset_id=image.dataset_id,
                model_a=model_names[model_a_id],
                model_b=model_names[model_b_id],
                category=category,
                region=box,
                reviewer=reviewer,
                created_at=now,
                updated_at=now,
                **fields,
            )

        return self._write(work)

    def update_flag(
        self,
        flag_id: int,
        reviewer: str,
        *,
        status: str = KEEP,
        severity: str = KEEP,
        category: str = KEEP,
        note: str = KEEP,
        target: str = KEEP,
        region: Region | tuple[int, int, int, int] | None = KEEP,
    ) -> FlagRecord:
        """Change some fields, recording who changed what from which value; no change, no event."""
        reviewer = _name(reviewer, "reviewer name")
        wanted: dict[str, Any] = {}
        if status is not KEEP:
            wanted["status"] = _choice(status, STATUSES, "status")
        if severity is not KEEP:
            wanted["severity"] = _choice(severity, SEVERITIES, "severity")
        if target is not KEEP:
            wanted["target"] = _choice(target, TARGETS, "target")
        if note is not KEEP:
            wanted["note"] = _note(note)
        box = KEEP if region is KEEP else _region(region)

        def work(session: Session) -> FlagRecord:
            _int(flag_id, "flag id")
            flag = session.scalars(
                select(Flag).where(Flag.id == flag_id).with_for_update()
            ).one_or_none()
            if flag is None:
                raise ValidationError(f"unknown flag id {flag_id}")
            # Look everything up before touching the row, so a bad value writes nothing.
            new_category_id = KEEP if category is KEEP else self._category_id(session, category)
            if box is not KEEP:
                _region_in_image(box, session.get(Image, flag.image_id))
            changes = _set_fields(flag, wanted)
            if new_category_id is not KEEP and new_category_id != flag.category_id:
                old_name = session.get(Category, flag.category_id).name
                changes["category"] = {"old": old_name, "new": category}
                flag.category_id = new_category_id
            if box is not KEEP:
                changes |= _set_region(flag, box)
            if changes:
                now = utcnow()
                flag.updated_at = now
                session.add(
                    FlagEvent(
                        flag_id=flag_id,
                        reviewer_id=self._reviewer_id(session, reviewer),
                        at=now,
                        action="update",
                        changes=changes,
                    )
                )
                session.flush()
            return self._flag_records(session, _FLAG_QUERY.where(Flag.id == flag_id))[0]

        return self._write(work)

    def get_flag(self, flag_id: int) -> FlagRecord:
        _int(flag_id, "flag id")
        with self._read() as session:
            found = self._flag_records(session, _FLAG_QUERY.where(Flag.id == flag_id))
        if not found:
            raise ValidationError(f"unknown flag id {flag_id}")
        return found[0]

    def _filtered(
        self,
        query: Select[Any],
        *,
        status: str | Collection[str] | None,
        severity: str | Collection[str] | None,
        category: str | Collection[str] | None,
        target: str | Collection[str] | None,
        reviewer: str | Collection[str] | None,
        image_id: int | None,
        dataset_id: int | Collection[int] | None,
        model_id: int | None,
    ) -> Select[Any]:
        """Apply the filters; a value outside a vocabulary is an error, not an empty result."""
        for values, allowed, what in (
            (_values(status), STATUSES, "status"),
            (_values(severity), SEVERITIES, "severity"),
            (_values(target), TARGETS, "target"),
        ):
            for value in values or ():
                _choice(value, allowed, what)
        conditions = []
        if status is not None:
            conditions.append(Flag.status.in_(_values(status)))
        if severity is not None:
            conditions.append(Flag.severity.in_(_values(severity)))
        if target is not None:
            conditions.append(Flag.target.in_(_values(target)))
        if category is not None:
            known = set(self.categories())
            for value in _values(category):
                if value not in known:
                    raise ValidationError(
                        f"unknown category {value!r}; expected one of: {', '.join(sorted(known))}"
                    )
            conditions.append(Category.name.in_(_values(category)))
        if reviewer is not None:
            conditions.append(Reviewer.name.in_(_values(reviewer)))
        if image_id is not None:
            conditions.append(Flag.image_id == _int(image_id, "image id"))
        if dataset_id is not None:
            ids = [dataset_id] if isinstance(dataset_id, int) else list(dataset_id)
            conditions.append(Image.dataset_id.in_([_int(i, "dataset id") for i in ids]))
        if model_id is not None:
            _int(model_id, "model id")
            conditions.append(or_(Flag.model_a_id == model_id, Flag.model_b_id == model_id))
        return query.where(and_(*conditions)) if conditions else query

    def list_flags(
        self,
        *,
        status: str | Collection[str] | None = None,
        severity: str | Collection[str] | None = None,
        category: str | Collection[str] | None = None,
        target: str | Collection[str] | None = None,
        reviewer: str | Collection[str] | None = None,
        image_id: int | None = None,
        dataset_id: int | Collection[int] | None = None,
        model_id: int | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[FlagRecord]:
        """Flags matching every given filter (a list means any of), newest first.

        `model_id` matches flags where that model version is either side of the comparison.
        """
        query = self._filtered(
            _FLAG_QUERY,
            status=status,
            severity=severity,
            category=category,
            target=target,
            reviewer=reviewer,
            image_id=image_id,
            dataset_id=dataset_id,
            model_id=model_id,
        )
        query = query.order_by(Flag.created_at.desc(), Flag.id.desc()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as session:
            return self._flag_records(session, query)

    def count_flags(
        self,
        *,
        status: str | Collection[str] | None = None,
        severity: str | Collection[str] | None = None,
        category: str | Collection[str] | None = None,
        target: str | Collection[str] | None = None,
        reviewer: str | Collection[str] | None = None,
        image_id: int | None = None,
        dataset_id: int | None = None,
        model_id: int | None = None,
    ) -> int:
        """How many flags `list_flags` with the same filters would return without a limit."""
        query = select(func.count(Flag.id)).select_from(Flag).join(Image).join(Category)
        query = query.join(Reviewer, Reviewer.id == Flag.reviewer_id)
        query = self._filtered(
            query,
            status=status,
            severity=severity,
            category=category,
            target=target,
            reviewer=reviewer,
            image_id=image_id,
            dataset_id=dataset_id,
            model_id=model_id,
        )
        with self._read() as session:
            return session.scalar(query) or 0

    @staticmethod
    def _flag_records(session: Session, query: Select[Any]) -> list[FlagRecord]:
        records = []
        for row in session.execute(query):
            region = None
            if row.region_x0 is not None:
                region = Region(row.region_x0, row.region_y0, row.region_x1, row.region_y1)
            records.append(
                FlagRecord(
                    id=row.id,
                    image_id=row.image_id,
                    image_key=row.image_key,
                    dataset_id=row.dataset_id,
                    target=row.target,
                    model_a_id=row.model_a_id,
                    model_a=row.model_a,
                    model_b_id=row.model_b_id,
                    model_b=row.model_b,
                    severity=row.severity,
                    category=row.category,
                    status=row.status,
                    note=row.note,
                    region=region,
                    reviewer=row.reviewer,
                    created_at=row.created_at,
                    updated_at=row.updated_at,
                )
            )
        return records

    def flag_history(self, flag_id: int) -> list[FlagEventRecord]:
        """The audit trail of one flag, oldest first."""
        _int(flag_id, "flag id")
        with self._read() as session:
            if session.get(Flag, flag_id) is None:
                raise ValidationError(f"unknown flag id {flag_id}")
            rows = session.execute(
                select(FlagEvent, Reviewer.name)
                .join(Reviewer, Reviewer.id == FlagEvent.reviewer_id)
                .where(FlagEvent.flag_id == flag_id)
                .order_by(FlagEvent.at, FlagEvent.id)
            )
            return [
                FlagEventRecord(
                    id=event.id,
                    flag_id=event.flag_id,
                    reviewer=name,
                    at=event.at,
                    action=event.action,
                    changes={k: (v["old"], v["new"]) for k, v in event.changes.items()},
                )
                for event, name in rows
            ]

    def images_with_flag_state(self, dataset_id: int) -> list[ImageFlagState]:
        """Every image of a dataset, ordered by key, with its flag counts and worst severity."""
        with self._read() as session:
            self._require(session, Dataset, dataset_id, "dataset")
            images = session.execute(
                select(Image.id, Image.image_key, Image.path)
                .where(Image.dataset_id == dataset_id)
                .order_by(Image.image_key)
            ).all()
            tallies = session.execute(
                select(Flag.image_id, Flag.status, Flag.severity, func.count())
                .join(Image)
                .where(Image.dataset_id == dataset_id)
                .group_by(Flag.image_id, Flag.status, Flag.severity)
            ).all()
        counts: dict[int, dict[str, int]] = {}
        worst: dict[int, int] = {}
        for image_id, status, severity, n in tallies:
            per_status = counts.setdefault(image_id, dict.fromkeys(STATUSES, 0))
            per_status[status] += n
            if status != "dismissed":
                rank = SEVERITIES.index(severity)
                worst[image_id] = min(rank, worst.get(image_id, rank))
        return [
            ImageFlagState(
                image_id=image_id,
                image_key=key,
                path=path,
                counts=counts.get(image_id, dict.fromkeys(STATUSES, 0)),
                worst_severity=SEVERITIES[worst[image_id]] if image_id in worst else None,
            )
            for image_id, key, path in images
        ]

    # ------------------------------------------------------------------------- cached scores
    # Every cached row carries the fingerprint of the settings it was computed under
    # (models.settings.ScoringSettings); a read asks for one fingerprint and sees only its rows.

    def put_scores(
        self, model_id: int, image_id: int, scores: Mapping[str, float | None], *, settings: str
    ) -> None:
        """Cache one image's scores for a model version, replacing any earlier ones."""
        self.put_scores_bulk(model_id, {image_id: scores}, settings=settings)

    def put_scores_bulk(
        self,
        model_id: int,
        scores_by_image: Mapping[int, Mapping[str, float | None]],
        *,
        settings: str,
    ) -> None:
        """Cache many images' scores in one transaction (a split's first evaluation)."""
        stored = {
            _int(image_id, "image id"): _scores(scores, image_id)
            for image_id, scores in scores_by_image.items()
        }
        key = {"model_id": model_id, "settings": _settings(settings)}
        self._put_rows(ImageScore, key, "scores", stored, [model_id])

    def put_pair_scores(
        self,
        model_a_id: int,
        model_b_id: int,
        counts_by_image: Mapping[int, Mapping[str, int]],
        *,
        settings: str,
    ) -> None:
        """Cache how two model versions compare on each image (critical-pixel counts)."""
        stored = {
            _int(image_id, "image id"): _counts(counts, image_id)
            for image_id, counts in counts_by_image.items()
        }
        key = {"model_a_id": model_a_id, "model_b_id": model_b_id, "settings": _settings(settings)}
        self._put_rows(PairScore, key, "counts", stored, [model_a_id, model_b_id])

    def _put_rows(
        self,
        table: type[ImageScore] | type[PairScore],
        key: dict[str, Any],
        column: str,
        by_image: dict[int, dict[str, Any]],
        model_ids: list[int],
    ) -> None:
        """Upsert one row per image of `table` under `key`, after checking every id exists."""

        def work(session: Session) -> None:
            for model_id in model_ids:
                self._require(session, ModelVersion, model_id, "model")
            ids = list(by_image)
            known: set[int] = set()
            for start in range(0, len(ids), _BULK_CHUNK):
                chunk = ids[start : start + _BULK_CHUNK]
                known.update(session.scalars(select(Image.id).where(Image.id.in_(chunk))))
            unknown = sorted(set(ids) - known)
            if unknown:
                raise ValidationError(f"unknown image id(s): {unknown[:10]}")
            now = utcnow()
            for start in range(0, len(ids), _BULK_CHUNK):
                rows = [
                    {**key, "image_id": i, column: by_image[i], "computed_at": now}
                    for i in ids[start : start + _BULK_CHUNK]
                ]
                stmt = self._insert(table).values(rows)
                session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[*key, "image_id"],
                        set_={column: stmt.excluded[column], "computed_at": now},
                    )
                )

        self._write(work)

    def get_scores(
        self,
        model_id: int,
        *,
        settings: str,
        dataset_id: int | None = None,
        image_ids: Iterable[int] | None = None,
    ) -> dict[str, dict[str, float | None]]:
        """Cached scores under `settings` by image key (None where undefined). Keys are
        unique within a dataset, so pass `dataset_id` when the model was scored on several;
        a clash without it is an error."""
        query = select(Image.image_key, ImageScore.scores).where(
            ImageScore.model_id == _int(model_id, "model id")
        )
        return self._get_rows(
            ImageScore, query, settings, dataset_id, image_ids, f"model {model_id}"
        )

    def get_pair_scores(
        self,
        model_a_id: int,
        model_b_id: int,
        *,
        settings: str,
        dataset_id: int | None = None,
        image_ids: Iterable[int] | None = None,
    ) -> dict[str, dict[str, int]]:
        """Cached pair counts under `settings` by image key, as :meth:`get_scores`."""
        query = select(Image.image_key, PairScore.counts).where(
            PairScore.model_a_id == _int(model_a_id, "model id"),
            PairScore.model_b_id == _int(model_b_id, "model id"),
        )
        pair = f"models {model_a_id} and {model_b_id}"
        return self._get_rows(PairScore, query, settings, dataset_id, image_ids, pair)

    def _get_rows(
        self,
        table: type[ImageScore] | type[PairScore],
        query: Select[Any],
        settings: str,
        dataset_id: int | None,
        image_ids: Iterable[int] | None,
        what: str,
    ) -> dict[str, dict[str, Any]]:
        query = query.join(Image, Image.id == table.image_id)
        query = query.where(table.settings == _settings(settings))
        if dataset_id is not None:
            query = query.where(Image.dataset_id == _int(dataset_id, "dataset id"))
        if image_ids is not None:
            query = query.where(table.image_id.in_(list(image_ids)))
        result: dict[str, dict[str, Any]] = {}
        with self._read() as session:
            for key, values in session.execute(query):
                if key in result:
                    raise ValidationError(
                        f"image key {key!r} has scores in several datasets for {what}; "
                        "pass dataset_id"
                    )
                result[key] = dict(values)
        return result


# ------------------------------------------------------------------------------- query helpers


def _region_columns(box: Region | None) -> dict[str, int | None]:
    coords = box.as_list() if box else [None] * 4
    return dict(zip(("region_x0", "region_y0", "region_x1", "region_y1"), coords, strict=True))


def _flag_region(flag: Flag) -> Region | None:
    if flag.region_x0 is None:
        return None
    return Region(flag.region_x0, flag.region_y0, flag.region_x1, flag.region_y1)


def _flag_image(conn: Connection, image_id: int, box: Region | None) -> Row[Any]:
    """The key, dataset and size of the image a new flag is on; its region must fit it."""
    image = conn.execute(
        select(Image.image_key, Image.dataset_id, Image.width, Image.height).where(
            Image.id == image_id
        )
    ).one_or_none()
    if image is None:
        raise ValidationError(f"unknown image id {image_id}")
    _region_in_image(box, image)
    return image


def _model_names(conn: Connection, model_ids: tuple[int, ...]) -> dict[int, str]:
    """Name of each of ``model_ids``; an unknown id is a ValidationError."""
    names = dict(
        conn.execute(
            select(ModelVersion.id, ModelVersion.name).where(ModelVersion.id.in_(model_ids))
        ).all()
    )
    for model_id in model_ids:
        if model_id not in names:
            raise ValidationError(f"unknown model id {model_id}")
    return names


def _set_fields(flag: Flag, wanted: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Set the plain columns of ``wanted`` on ``flag``; the audit changes, old and new."""
    changes = {}
    for name, new in wanted.items():
        old = getattr(flag, name)
        if old != new:
            changes[name] = {"old": old, "new": new}
            setattr(flag, name, new)
    return changes


def _set_region(flag: Flag, box: Region | None) -> dict[str, dict[str, Any]]:
    """Set the flag's region to ``box``; the audit change, if any."""
    old_box = _flag_region(flag)
    if old_box == box:
        return {}
    for column, value in _region_columns(box).items():
        setattr(flag, column, value)
    return {"region": {"old": _box_list(old_box), "new": _box_list(box)}}


def _box_list(box: Region | None) -> list[int] | None:
    return box.as_list() if box else None


def _build_flag_query() -> Select[Any]:
    """Flags joined with everything a FlagRecord shows; built once, filtered per call."""
    model_a = aliased(ModelVersion)
    model_b = aliased(ModelVersion)
    return (
        select(
            Flag.id,
            Flag.image_id,
            Image.image_key,
            Image.dataset_id,
            Flag.target,
            Flag.model_a_id,
            model_a.name.label("model_a"),
            Flag.model_b_id,
            model_b.name.label("model_b"),
            Flag.severity,
            Category.name.label("category"),
            Flag.status,
            Flag.note,
            Flag.region_x0,
            Flag.region_y0,
            Flag.region_x1,
            Flag.region_y1,
            Reviewer.name.label("reviewer"),
            Flag.created_at,
            Flag.updated_at,
        )
        .join(Image, Image.id == Flag.image_id)
        .join(Category, Category.id == Flag.category_id)
        .join(Reviewer, Reviewer.id == Flag.reviewer_id)
        .join(model_a, model_a.id == Flag.model_a_id)
        .join(model_b, model_b.id == Flag.model_b_id)
    )


_FLAG_QUERY = _build_flag_query()
