"""The records of an error report and their data formats: one CSV row and one JSON object per flag.

A tracker ingests these, so both carry every field of the flag, the image it is on, the two
model versions compared (id, name, file hash) and that image's scores of both models.

JSON (``flags.json``), schema ``segnet-review-bench/flags-export`` version 1::

    {
      "schema": "segnet-review-bench/flags-export",
      "version": 1,
      "generated": "2024-05-01T12:00:00+00:00",        # UTC, ISO 8601
      "filters": {"status": [...] | null, "severity": [...] | null, "category": [...] | null},
      "models": [{"id", "name", "file_hash", "metadata"}],   # every model a flag refers to
      "datasets": [{"id", "name", "root", "layout", "split"}],
      "flags": [FLAG, ...]                              # newest first
    }

    FLAG = {
      "flag_id": int, "image_id": int, "image_key": str (the dataset sample id),
      "image_path": str, "dataset_id": int, "dataset": str, "split": str,
      "target": "ground_truth" | "model_a" | "model_b" | "both_models",
      "severity": "critical" | "major" | "minor",
      "category": str, "status": "open" | "confirmed" | "dismissed" | "resolved",
      "note": str, "region": [x0, y0, x1, y1] | null (pixels, x1 and y1 exclusive),
      "reviewer": str, "created_at": ISO 8601 UTC, "updated_at": ISO 8601 UTC,
      "model_a_id": int, "model_a": str, "model_a_hash": str (sha256 of the checkpoint file),
      "model_b_id": int, "model_b": str, "model_b_hash": str,
      "scores_a": SCORES | null, "scores_b": SCORES | null,
      "critical_pixels": {"both_right", "only_a", "only_b", "both_wrong"} (ints) | null,
      "scores_source": "computed" | "cached" | null,
      "scores_problem": str | null,                     # why scores are missing, when they are
      "history": [{"at": ISO 8601 UTC, "reviewer": str, "action": "create" | "update",
                   "changes": {field: [old, new]}}]   # oldest first
    }

    SCORES = {"miou", "pixel_accuracy", "critical_miss_rate", "false_alarm_rate",
              "safety_error", "expected_cost"}: number | null (null = undefined on this image)
              (the per-image scores of ``models.scores.SCORES``)

``scores_source`` says where the scores come from: "computed" by running both checkpoints on
the image during the export, or "cached" from the review store's per-image cache (rows
computed under the export's scoring settings only) when a checkpoint file was not available
(then ``critical_pixels`` is null unless the pair's counts are cached too). Images without ground
truth (uploads) have no scores. :func:`read_flags_json` reads a file back into the same
:class:`ExportedFlag` records that were written.

CSV (``flags.csv``, UTF-8, one row per flag, same order): the scalar fields above under the
same names, ``region_x0 .. region_y1`` (empty when no region), ``a_<score>`` and ``b_<score>``
for each score, ``critical_<count>`` for the critical-pixel counts, ``history_events`` (number
of audit entries) and ``history`` (the history list as JSON).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from db.store import DatasetInfo, FlagEventRecord, FlagRecord, ModelInfo
from models.scores import IMAGE_KEYS
from models.spreadsheet import spreadsheet_safe
from reviewer.review_queue import PAIR_KEYS

SCHEMA = "segnet-review-bench/flags-export"
SCHEMA_VERSION = 1


class ReportFormatError(ValueError):
    """A file that is not a flags export this version can read; the message names it."""


@dataclass(frozen=True)
class HistoryEvent:
    """One audit entry of a flag: who changed which fields from what to what."""

    at: datetime
    reviewer: str
    action: str
    changes: dict[str, tuple[Any, Any]]

    @classmethod
    def from_record(cls, event: FlagEventRecord) -> HistoryEvent:
        return cls(event.at, event.reviewer, event.action, dict(event.changes))


@dataclass(frozen=True)
class ExportedFlag:
    """One flag as exported: its fields, its image, both model versions and the image's scores."""

    flag_id: int
    image_id: int
    image_key: str
    image_path: str
    dataset_id: int
    dataset: str
    split: str
    target: str
    severity: str
    category: str
    status: str
    note: str
    region: tuple[int, int, int, int] | None
    reviewer: str
    created_at: datetime
    updated_at: datetime
    model_a_id: int
    model_a: str
    model_a_hash: str
    model_b_id: int
    model_b: str
    model_b_hash: str
    scores_a: dict[str, float | None] | None
    scores_b: dict[str, float | None] | None
    critical_pixels: dict[str, int] | None
    scores_source: str | None
    scores_problem: str | None
    history: tuple[HistoryEvent, ...]


@dataclass(frozen=True)
class ImageScores:
    """The scores of one image for a pair of models, and where they come from."""

    scores_a: dict[str, float | None] | None = None
    scores_b: dict[str, float | None] | None = None
    critical_pixels: dict[str, int] | None = None
    source: str | None = None
    problem: str | None = None


def headline_scores(scores: Mapping[str, float | None]) -> dict[str, float | None]:
    """The per-image scores of the table out of an image's scores (every score, in the
    order of the table, None where a row cached before a score was added lacks it)."""
    return {key: scores.get(key) for key in IMAGE_KEYS}


def exported_flag(
    flag: FlagRecord,
    *,
    dataset: DatasetInfo,
    split: str,
    image_path: str,
    model_a: ModelInfo,
    model_b: ModelInfo,
    scores: ImageScores,
    history: Sequence[FlagEventRecord],
) -> ExportedFlag:
    region = tuple(flag.region.as_list()) if flag.region is not None else None
    return ExportedFlag(
        flag_id=flag.id,
        image_id=flag.image_id,
        image_key=flag.image_key,
        image_path=image_path,
        dataset_id=flag.dataset_id,
        dataset=dataset.name,
        split=split,
        target=flag.target,
        severity=flag.severity,
        category=flag.category,
        status=flag.status,
        note=flag.note,
        region=region,
        reviewer=flag.reviewer,
        created_at=flag.created_at,
        updated_at=flag.updated_at,
        model_a_id=model_a.id,
        model_a=model_a.name,
        model_a_hash=model_a.file_hash,
        model_b_id=model_b.id,
        model_b=model_b.name,
        model_b_hash=model_b.file_hash,
        scores_a=scores.scores_a,
        scores_b=scores.scores_b,
        critical_pixels=scores.critical_pixels,
        scores_source=scores.source,
        scores_problem=scores.problem,
        history=tuple(HistoryEvent.from_record(e) for e in history),
    )


# ----------------------------------------------------------------------------------- JSON


def _event_to_json(event: HistoryEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "reviewer": event.reviewer,
        "action": event.action,
        "changes": {k: [old, new] for k, (old, new) in event.changes.items()},
    }


def flag_to_json(flag: ExportedFlag) -> dict[str, Any]:
    """The documented JSON object of one flag."""
    data = {f.name: getattr(flag, f.name) for f in fields(flag)}
    data["region"] = list(flag.region) if flag.region is not None else None
    data["created_at"] = flag.created_at.isoformat()
    data["updated_at"] = flag.updated_at.isoformat()
    data["history"] = [_event_to_json(e) for e in flag.history]
    return data


def flag_from_json(data: Mapping[str, Any]) -> ExportedFlag:
    """The record of one JSON flag object (the inverse of :func:`flag_to_json`)."""
    names = {f.name for f in fields(ExportedFlag)}
    if set(data) != names:
        missing, extra = sorted(names - set(data)), sorted(set(data) - names)
        raise ReportFormatError(f"flag object has missing keys {missing} and unknown keys {extra}")
    values = dict(data)
    values["region"] = tuple(data["region"]) if data["region"] is not None else None
    values["created_at"] = datetime.fromisoformat(data["created_at"])
    values["updated_at"] = datetime.fromisoformat(data["updated_at"])
    values["history"] = tuple(
        HistoryEvent(
            at=datetime.fromisoformat(e["at"]),
            reviewer=e["reviewer"],
            action=e["action"],
            changes={k: (old, new) for k, (old, new) in e["changes"].items()},
        )
        for e in data["history"]
    )
    return ExportedFlag(**values)


def flags_document(
    flags: Sequence[ExportedFlag],
    *,
    generated: datetime,
    filters: Mapping[str, Sequence[str] | None],
    models: Iterable[ModelInfo],
    datasets: Iterable[DatasetInfo],
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "generated": generated.isoformat(timespec="seconds"),
        "filters": {k: list(v) if v is not None else None for k, v in filters.items()},
        "models": [asdict(m) for m in models],
        "datasets": [asdict(d) for d in datasets],
        "flags": [flag_to_json(f) for f in flags],
    }


def read_flags_json(path: str | Path) -> list[ExportedFlag]:
    """The flags of an exported ``flags.json`` (ReportFormatError naming the file if it is not)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportFormatError(f"{path}: cannot be read as JSON ({error})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ReportFormatError(f"{path}: not a flags export (schema {SCHEMA!r} expected)")
    if document.get("version") != SCHEMA_VERSION:
        raise ReportFormatError(
            f"{path}: flags export version {document.get('version')!r}; "
            f"this tool reads version {SCHEMA_VERSION}"
        )
    try:
        return [flag_from_json(item) for item in document["flags"]]
    except (KeyError, TypeError, ValueError) as error:
        raise ReportFormatError(f"{path}: malformed flag record ({error})") from None


# ----------------------------------------------------------------------------------- CSV

_CSV_SPECIAL = {"region", "scores_a", "scores_b", "critical_pixels", "history"}
_CSV_SCALARS = tuple(f.name for f in fields(ExportedFlag) if f.name not in _CSV_SPECIAL)
CSV_COLUMNS = (
    *_CSV_SCALARS,
    "region_x0",
    "region_y0",
    "region_x1",
    "region_y1",
    *(f"a_{k}" for k in IMAGE_KEYS),
    *(f"b_{k}" for k in IMAGE_KEYS),
    *(f"critical_{k}" for k in PAIR_KEYS),
    "history_events",
    "history",
)


def _scalar(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _csv_value(value: Any) -> Any:
    return "" if value is None else spreadsheet_safe(value)


def flag_to_row(flag: ExportedFlag) -> list[Any]:
    """One CSV row in the order of :data:`CSV_COLUMNS`."""
    region = flag.region or (None,) * 4
    scores_a, scores_b = flag.scores_a or {}, flag.scores_b or {}
    counts = flag.critical_pixels or {}
    row = [_scalar(getattr(flag, name)) for name in _CSV_SCALARS]
    row += list(region)
    row += [scores_a.get(k) for k in IMAGE_KEYS]
    row += [scores_b.get(k) for k in IMAGE_KEYS]
    row += [counts.get(k) for k in PAIR_KEYS]
    history = json.dumps([_event_to_json(e) for e in flag.history], ensure_ascii=False)
    row += [len(flag.history), history]
    return [_csv_value(v) for v in row]


def write_flags_csv(handle: TextIO, flags: Iterable[ExportedFlag]) -> None:
    """Header and one row per flag into a text file opened with ``newline=""``."""
    writer = csv.writer(handle)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(flag_to_row(f) for f in flags)
