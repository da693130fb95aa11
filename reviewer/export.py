"""Export flagged cases: a report a safety lead reads, data a tracker ingests, masks to fix.

    python -m reviewer.export --out DIR [--db URL] [--data PATH [--split S]]
        [--status ...] [--severity ...] [--category ...] [--format html,csv,json,masks]
        [--models FILE_OR_DIR ...] [--evaluate] [--zip]

The GUI's download button calls :func:`export_report` (and :func:`zip_export`) with its own
store and inference engine, so predictions it has cached are reused.

What is written into ``DIR`` (which must not exist yet):

- ``report.html``: one self-contained page (see :mod:`reviewer.report_html`): a summary
  (models with metadata and hashes, datasets and splits, date, counts of flags by severity,
  category, status and reviewer, split-level scores) and one section per flagged image.
- ``flags.csv`` and ``flags.json``: every selected flag; columns and the JSON schema are
  documented in :mod:`reviewer.report`; :func:`reviewer.report.read_flags_json` reads it back.
- ``masks/``: for each flagged image, in the Cityscapes folder layout::

      masks/gtFine/<split>/<city>/<stem>_gtFine_labelIds.png      ground truth, label ids
      masks/gtFine/<split>/<city>/<stem>_gtFine_color.png         ground truth, official colours
      masks/pred_<model>_<hash8>/<split>/<city>/<stem>_labelIds.png  a model's prediction
      masks/pred_<model>_<hash8>/<split>/<city>/<stem>_color.png

  ``<city>`` is the sample's group (the Cityscapes city, the CamVid sequence, the folder),
  ``<stem>`` the last part of the image id; ``<model>`` is the store's model name made safe for
  file names and ``<hash8>`` the first 8 hex digits of its checkpoint's sha256, so two versions
  with one name never mix. Predictions are written for the compared pairs whose two checkpoints
  were found, the ground truth whenever the image has labels. Predictions are trainIds mapped
  to Cityscapes label ids (background -> 0, unlabeled). The ground truth is the dataset's label
  in trainIds mapped the same way, so classes Cityscapes does not evaluate come out as 0.
  Uploaded images have no ground truth.

Everything is built in ``DIR.partial-<pid>`` beside ``DIR`` and renamed to ``DIR`` at the end;
on any error the partial folder is removed, so a report is either whole or absent. A partial
folder or zip left by a killed export (older than an hour, its process gone) is removed by the
next export into the same folder.

Checkpoints are found by the file hash the store recorded for each model version, among the
shipped checkpoints and ``--models``. A model whose file is not found still has complete CSV and
JSON records (with the store's cached scores, if any); its HTML section says why its
predictions are missing.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from tqdm import tqdm

from db.config import resolve_db_url
from db.engine import DatabaseAccessError, DatabaseURLError
from db.schema import SEVERITIES, STATUSES
from db.store import DatasetInfo, FlagRecord, ModelInfo, ReviewStore, StoredImage, ValidationError
from models.catalogue import SHIPPED_CHECKPOINTS, ModelCatalogue
from models.checkpoints import CheckpointError
from models.datasets import (
    DatasetError,
    SegmentationDataset,
    count_of,
    open_dataset,
    read_rgb_image,
)
from models.device import DEVICE_CHOICES, DeviceError
from models.evaluate import evaluate_split
from models.inference import InferenceEngine
from models.instances import DEFAULT_MIN_RECALL
from models.labels import (
    DEFAULT_GROUPS,
    LABEL_COLOR_BY_ID,
    GroupsError,
    ImportanceGroups,
    train_ids_to_label_ids,
)
from models.scores import IMAGE_KEYS
from models.scoring import SplitScores
from models.settings import ScoringSettings
from reviewer.report import (
    ExportedFlag,
    ImageScores,
    exported_flag,
    flags_document,
    headline_scores,
    write_flags_csv,
)
from reviewer.report_html import (
    DOCUMENT_END,
    WORST_CASES,
    ImageSection,
    PairView,
    ReportSummary,
    SplitSummary,
    TocEntry,
    document_start,
    image_section_html,
    provenance_html,
    summary_html,
)
from reviewer.views import ViewComposer

FORMATS = ("html", "csv", "json", "masks")
ProgressCallback = Callable[[int, int], None]
"""Called with (images done, images in all) after each flagged image."""
SplitKey = tuple[int, int, int]
"""(dataset id, model A id, model B id) in the store: which split scores belong to which pair."""


class ExportError(ValueError):
    """An export that cannot be made as asked; the message names the value. Nothing is written."""


@dataclass(frozen=True)
class ExportResult:
    out: Path
    files: tuple[Path, ...]
    flag_count: int
    image_count: int
    problems: tuple[str, ...] = ()
    """What the report could not show (missing checkpoints, unreadable images)."""

    @property
    def html(self) -> Path | None:
        path = self.out / "report.html"
        return path if path in self.files else None


# ----------------------------------------------------------------------------- input checks


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise ExportError(
            f"unknown format(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(FORMATS)}"
        )
    return wanted


def check_out(out: str | Path) -> Path:
    """The absolute output folder, which must not exist and whose parent must be writable."""
    out = Path(out).expanduser().absolute()
    if out.is_file():
        raise ExportError(
            f"{out} is a file; --out names a new folder for the export: choose a name that "
            "does not exist yet"
        )
    if out.exists() or out.is_symlink():
        raise ExportError(
            f"output folder {out} already exists; an export never writes into an existing "
            "folder (even an empty one): choose a new name"
        )
    parent = out.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise ExportError(f"cannot write {out}: its parent {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {out}: no permission to write into {parent}")
    return out


def open_store(url: str | None) -> ReviewStore:
    """The review store at `url` (see `resolve_db_url`); never creates a new SQLite file."""
    resolved = resolve_db_url(url)
    try:
        parsed = make_url(resolved)
    except ArgumentError as error:
        raise ExportError(f"cannot parse database URL {resolved!r}: {error}") from None
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "").expanduser()
        if not parsed.database or not path.is_file():
            where = str(path) if parsed.database else resolved
            raise ExportError(
                f"review database not found: {where} (pass --db URL or set "
                "$SEGBENCH_DB; an export never creates a new database)"
            )
    try:
        return ReviewStore.open(resolved)
    except DatabaseAccessError as error:
        raise ExportError(str(error)) from None
    except (DatabaseURLError, SQLAlchemyError) as error:
        detail = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise ExportError(f"cannot open the review database {resolved}: {detail}") from None


def _values(value: str | Collection[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def _describe_filters(filters: Mapping[str, Sequence[str] | None]) -> str:
    parts = [f"{k} in {', '.join(v)}" for k, v in filters.items() if v is not None]
    return "; ".join(parts) if parts else "no filter: the store has no flag"


def _safe(name: str) -> str:
    """A name usable as one path component on any file system."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "_"


# ----------------------------------------------------------------------------- sources


@dataclass
class _Sources:
    """Where the export reads images and checkpoints from."""

    datasets: dict[int, DatasetInfo]
    models: dict[int, ModelInfo]
    opened: dict[int, ViewComposer]
    checkpoints: dict[str, Path]
    """Checkpoint file sha256 -> path."""
    searched: tuple[Path, ...]
    settings: str
    """Fingerprint of the scoring settings: only scores cached under them are reported."""

    def missing_model(self, model: ModelInfo) -> str | None:
        if model.file_hash in self.checkpoints:
            return None
        where = ", ".join(str(p) for p in self.searched) or "no folder"
        return (
            f"no checkpoint file of model {model.name!r} (sha256 {model.file_hash[:12]}…) "
            f"among {where}; pass --models FILE_OR_DIR"
        )


def _checkpoint_files(model_sources: Sequence[str | Path]) -> tuple[dict[str, Path], tuple]:
    sources = [Path(p).expanduser() for p in model_sources]
    try:
        catalogue = ModelCatalogue.discover(sources)
    except FileNotFoundError as error:
        raise ExportError(str(error)) from None
    found = {file_sha256(model.path): model.path for model in catalogue.models.values()}
    return found, (SHIPPED_CHECKPOINTS, *sources)


def file_sha256(*paths: Path) -> str:
    """SHA-256 of the files' bytes, one after the other: a flag names its models by the
    checkpoint file's hash, whatever the file is called now."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _sources(
    store: ReviewStore,
    flags: Sequence[FlagRecord],
    data: str | Path | None,
    split: str | None,
    model_sources: Sequence[str | Path],
    engine: InferenceEngine | None,
    groups: ImportanceGroups,
    min_recall: float,
) -> _Sources:
    """The flagged datasets opened for view composition, and the checkpoints found."""
    datasets = {d.id: d for d in store.list_datasets()}
    dataset_ids = sorted({f.dataset_id for f in flags})
    opened = _open_datasets(dataset_ids, datasets, data, split)
    checkpoints, searched = _checkpoint_files(model_sources)
    engine = engine if engine is not None else InferenceEngine()
    catalogue = ModelCatalogue.of_files(checkpoints)  # named by file hash
    return _Sources(
        datasets=datasets,
        models={m.id: m for m in store.list_models()},
        opened={
            # each image is shown once: no view is kept
            i: ViewComposer(ds, engine, catalogue, groups, min_recall, cache_bytes=0)
            for i, ds in opened.items()
        },
        checkpoints=checkpoints,
        searched=searched,
        settings=ScoringSettings(groups, min_recall=min_recall).fingerprint,
    )


def _open_datasets(
    dataset_ids: Collection[int],
    datasets: Mapping[int, DatasetInfo],
    data: str | Path | None,
    split: str | None,
) -> dict[int, SegmentationDataset]:
    """Open each flagged dataset at its recorded root, or at ``data`` (uploads keep theirs)."""
    overridden = [i for i in dataset_ids if datasets[i].name != "uploads"]
    if (data is not None or split is not None) and len(overridden) > 1:
        names = ", ".join(f"{datasets[i].name} ({datasets[i].split})" for i in overridden)
        raise ExportError(
            f"--data/--split name one dataset but the selected flags are on several: {names}; "
            "narrow the selection or drop --data/--split"
        )
    if data is not None and not Path(data).expanduser().exists():
        raise ExportError(f"data path not found: {data}")
    opened = {}
    for dataset_id in dataset_ids:
        info = datasets[dataset_id]
        root = Path(info.root) if data is None or dataset_id not in overridden else Path(data)
        wanted = split if split is not None and dataset_id in overridden else info.split
        try:
            opened[dataset_id] = open_dataset(root, wanted)
        except DatasetError as error:
            hint = "" if data is not None else "; pass --data to point at the dataset's folder"
            raise ExportError(f"dataset {info.name!r} split {wanted!r}: {error}{hint}") from None
    return opened


# ----------------------------------------------------------------------------- per image


@dataclass(frozen=True)
class _Rendered:
    section: ImageSection
    scores: dict[tuple[int, int], ImageScores]
    """(model A id, model B id) -> the image's scores for that pair."""
    mask_dir: tuple[str, str, str] | None
    """(split, city, stem) of the image's masks."""
    ground_truth: np.ndarray | None
    """trainIds, for the ground-truth masks even when no prediction could be made."""


def _read_input(
    composer: ViewComposer, image: StoredImage
) -> tuple[np.ndarray | None, str | None, bool]:
    """(photo, problem, in the dataset): a dataset sample, or a stored file for uploads."""
    dataset = composer.dataset
    try:
        return dataset.read_image(dataset.sample(image.image_key)), None, True
    except KeyError:
        if dataset.has_labels:
            return None, f"image {image.image_key!r} is not in {dataset.describe()}", False
    except DatasetError as error:
        return None, str(error), False
    try:
        return read_rgb_image(Path(image.path)), None, False
    except DatasetError as error:
        return None, str(error), False


def _pair_view(
    composer: ViewComposer,
    sources: _Sources,
    image: StoredImage,
    photo: np.ndarray,
    in_dataset: bool,
    model_a: ModelInfo,
    model_b: ModelInfo,
) -> PairView:
    problem = sources.missing_model(model_a) or sources.missing_model(model_b)
    if problem is not None:
        return PairView(model_a, model_b, None, problem)
    try:
        if in_dataset:
            view = composer.view(image.image_key, model_a.file_hash, model_b.file_hash)
        else:
            view = composer.view_upload(photo, model_a.file_hash, model_b.file_hash)
    except (CheckpointError, DatasetError) as error:
        return PairView(model_a, model_b, None, str(error))
    return PairView(model_a, model_b, view)


def _scores_of(
    pair: PairView,
    store: ReviewStore,
    image: StoredImage,
    source_problem: str | None,
    settings: str,
) -> ImageScores:
    """Scores computed on the image, else the store's cached ones, else why there are none."""
    view = pair.view
    if view is not None and view.result is not None:
        scores, counts = view.result.scores, view.result.disagreement
        return ImageScores(
            dict(scores["A"].values),
            dict(scores["B"].values),
            dict(counts) if counts else None,
            "computed",
        )
    if view is not None:
        return ImageScores(problem="no ground truth for this image")
    where = {"settings": settings, "image_ids": [image.id]}
    cached = [
        store.get_scores(model.id, **where).get(image.image_key)
        for model in (pair.model_a, pair.model_b)
    ]
    if all(c is not None for c in cached):
        counts = store.get_pair_scores(pair.model_a.id, pair.model_b.id, **where)
        scores = [headline_scores(c) for c in cached]
        return ImageScores(*scores, counts.get(image.image_key), "cached")
    return ImageScores(problem=pair.problem or source_problem)


def _render_image(
    anchor: str,
    image: StoredImage,
    flags: Sequence[FlagRecord],
    store: ReviewStore,
    sources: _Sources,
) -> _Rendered:
    composer = sources.opened[image.dataset_id]
    info = sources.datasets[image.dataset_id]
    photo, problem, in_dataset = _read_input(composer, image)
    pairs_wanted = list(dict.fromkeys((f.model_a_id, f.model_b_id) for f in flags))
    pairs = []
    for a_id, b_id in pairs_wanted:
        model_a, model_b = sources.models[a_id], sources.models[b_id]
        if photo is None:
            pairs.append(PairView(model_a, model_b, None, problem))
        else:
            view_pair = _pair_view(composer, sources, image, photo, in_dataset, model_a, model_b)
            pairs.append(view_pair)
    scores = {
        (p.model_a.id, p.model_b.id): _scores_of(p, store, image, problem, sources.settings)
        for p in pairs
    }
    meta, mask_dir, ground_truth = {}, None, None
    if in_dataset:
        sample = composer.dataset.sample(image.image_key)
        meta = composer.dataset.read_meta(sample)
        mask_dir = (composer.dataset.split, sample.sequence or "images", Path(sample.id).name)
        if composer.dataset.has_labels:
            shown = [p.view for p in pairs if p.view is not None]
            ground_truth = shown[0].ground_truth if shown else composer.dataset.read_label(sample)
    elif photo is not None:
        mask_dir = (composer.dataset.split, "images", Path(image.image_key).name)
    section = ImageSection(
        anchor=anchor,
        dataset=info.name,
        split=composer.dataset.split,
        sample_id=image.image_key,
        image=photo,
        problem=problem,
        pairs=tuple(pairs),
        flags=(),
        meta=meta,
    )
    return _Rendered(section, scores, mask_dir, ground_truth)


# ----------------------------------------------------------------------------- masks


def _write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"cannot write {path}")
    return path


def _write_label_pngs(base: Path, train_ids: np.ndarray) -> list[Path]:
    """``<base>labelIds.png`` (Cityscapes label ids) and ``<base>color.png`` (their colours)."""
    label_ids = train_ids_to_label_ids(train_ids)
    color = cv2.cvtColor(LABEL_COLOR_BY_ID[label_ids], cv2.COLOR_RGB2BGR)
    return [
        _write_png(base.with_name(base.name + "labelIds.png"), label_ids),
        _write_png(base.with_name(base.name + "color.png"), color),
    ]


def prediction_folder(model: ModelInfo) -> str:
    return f"pred_{_safe(model.name)}_{model.file_hash[:8]}"


def _write_masks(
    masks: Path, rendered: _Rendered, taken: dict[tuple[str, str, str], int], image_id: int
) -> list[Path]:
    if rendered.mask_dir is None:
        return []
    split, city, stem = (_safe(part) for part in rendered.mask_dir)
    if taken.setdefault((split, city, stem), image_id) != image_id:
        city = f"{city}_image{image_id}"
    files: list[Path] = []
    if rendered.ground_truth is not None:
        base = masks / "gtFine" / split / city / f"{stem}_gtFine_"
        files += _write_label_pngs(base, rendered.ground_truth)
    written: set[int] = set()
    for pair in rendered.section.pairs:
        if pair.view is None:
            continue
        for model, labels in (
            (pair.model_a, pair.view.prediction_a),
            (pair.model_b, pair.view.prediction_b),
        ):
            if model.id not in written:
                written.add(model.id)
                base = masks / prediction_folder(model) / split / city / f"{stem}_"
                files += _write_label_pngs(base, labels)
    return files


# ----------------------------------------------------------------------------- split scores


def _split_summary(
    key: SplitKey,
    store: ReviewStore,
    sources: _Sources,
    given: Mapping[SplitKey, SplitScores],
    evaluate: bool,
    groups: ImportanceGroups,
    min_recall: float,
) -> SplitSummary:
    dataset_id, a_id, b_id = key
    composer = sources.opened[dataset_id]
    model_a, model_b = sources.models[a_id], sources.models[b_id]
    common = {
        "dataset": sources.datasets[dataset_id].name,
        "split": composer.dataset.split,
        "model_a": model_a,
        "model_b": model_b,
    }
    if key in given:
        return SplitSummary(source="split evaluated before the export", scores=given[key], **common)
    if not composer.dataset.has_labels:
        return SplitSummary(source="no split-level scores: these images have no labels", **common)
    images = len(composer.dataset)
    if evaluate:
        problem = sources.missing_model(model_a) or sources.missing_model(model_b)
        if problem is not None:
            return SplitSummary(source=f"cannot evaluate the split: {problem}", **common)
        result = evaluate_split(
            composer.dataset,
            composer.engine,
            {"A": composer.model(model_a.file_hash), "B": composer.model(model_b.file_hash)},
            groups,
            min_recall=min_recall,
        )
        return SplitSummary(
            source=f"split evaluated during this export ({images} images)", scores=result, **common
        )
    cached = [
        store.get_scores(m.id, settings=sources.settings, dataset_id=dataset_id)
        for m in (model_a, model_b)
    ]
    if all(len(c) >= images for c in cached):
        means = {
            side: _mean_scores(scores.values())
            for side, scores in zip(("A", "B"), cached, strict=True)
        }
        return SplitSummary(
            source=f"means of the per-image scores cached in the review store ({images} images); "
            "per-class and per-group IoU need a split evaluation (--evaluate)",
            means=means,
            **common,
        )
    return SplitSummary(
        source="the split was not evaluated for this pair (no complete score cache): "
        "pass --evaluate to include split-level scores",
        **common,
    )


def _counts(flags: Sequence[FlagRecord]) -> dict[str, dict[str, int]]:
    """Flags by severity, category, status and reviewer (vocabularies in their own order)."""
    counts = {}
    for what in ("severity", "category", "status", "reviewer"):
        tally = Counter(getattr(f, what) for f in flags)
        order = {"severity": SEVERITIES, "status": STATUSES}.get(what, sorted(tally))
        counts[what] = {value: tally[value] for value in order if tally[value]}
    return counts


def _mean_scores(per_image: Iterable[Mapping[str, float | None]]) -> dict[str, float | None]:
    """Mean of each per-image score over the images where it is defined."""
    rows = [headline_scores(scores) for scores in per_image]
    means: dict[str, float | None] = {}
    for key in IMAGE_KEYS:
        values = [r[key] for r in rows if r[key] is not None]
        means[key] = float(np.mean(values)) if values else None
    return means


# ----------------------------------------------------------------------------- the export


def export_report(
    out: str | Path,
    store: ReviewStore,
    *,
    formats: Iterable[str] = FORMATS,
    status: str | Collection[str] | None = None,
    severity: str | Collection[str] | None = None,
    category: str | Collection[str] | None = None,
    data: str | Path | None = None,
    split: str | None = None,
    model_sources: Sequence[str | Path] = (),
    engine: InferenceEngine | None = None,
    split_scores: Mapping[SplitKey, SplitScores] | None = None,
    evaluate: bool = False,
    groups: ImportanceGroups = DEFAULT_GROUPS,
    min_recall: float = DEFAULT_MIN_RECALL,
    progress: ProgressCallback | None = None,
) -> ExportResult:
    """Write the selected flags to a new folder ``out`` in the chosen formats.

    ``split_scores`` maps (dataset id, model A id, model B id) to that pair's evaluation of the
    split (a :class:`SplitScores` with models "A" and "B", as
    :meth:`reviewer.review_queue.ScoreCache.evaluate` returns); without it the split is evaluated
    only when ``evaluate`` is true. Raises ExportError (nothing written) for a bad folder,
    an empty selection or missing data.
    """
    wanted = check_formats(formats)
    out = check_out(out)
    filters = {"status": _values(status), "severity": _values(severity)}
    filters["category"] = _values(category)
    try:
        flags = store.list_flags(status=status, severity=severity, category=category)
    except ValidationError as error:
        raise ExportError(str(error)) from None
    if not flags:
        raise ExportError(f"no flag matches the selection ({_describe_filters(filters)})")
    sources = _sources(store, flags, data, split, model_sources, engine, groups, min_recall)
    remove_stale_partials(out.parent)
    partial = _partial(out)
    try:
        partial.mkdir()
    except OSError as error:
        raise ExportError(f"cannot create {partial}: {error.strerror}") from None
    try:
        job = _Job(
            partial,
            wanted,
            flags,
            filters,
            store,
            sources,
            split_scores or {},
            evaluate,
            groups,
            min_recall,
            progress,
        )
        job.run()
        if out.exists():
            raise ExportError(f"{out} was created by someone else during the export")
        os.rename(partial, out)
    except BaseException as error:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(error, OSError):
            raise write_error(out, error) from None
        raise
    images = len({f.image_id for f in flags})
    return ExportResult(
        out=out,
        files=tuple(out / p.relative_to(partial) for p in job.files),
        flag_count=len(flags),
        image_count=images,
        problems=tuple(job.problems),
    )


@dataclass
class _Job:
    """One export being written into its partial folder."""

    partial: Path
    wanted: tuple[str, ...]
    flags: Sequence[FlagRecord]
    filters: Mapping[str, Sequence[str] | None]
    store: ReviewStore
    sources: _Sources
    given: Mapping[SplitKey, SplitScores]
    evaluate: bool
    groups: ImportanceGroups
    min_recall: float
    progress: ProgressCallback | None

    def __post_init__(self) -> None:
        self.by_image: dict[int, list[FlagRecord]] = defaultdict(list)
        for flag in self.flags:
            self.by_image[flag.image_id].append(flag)
        self.images = {i: self.store.get_image(i) for i in self.by_image}
        self.order = sorted(
            self.by_image,
            key=lambda i: (self._dataset(i).name, self.images[i].image_key),
        )
        self.anchors = {image_id: f"image-{n + 1}" for n, image_id in enumerate(self.order)}
        used = sorted({m for f in self.flags for m in (f.model_a_id, f.model_b_id)})
        self.models = [self.sources.models[i] for i in used]
        self.problems = [p for m in self.models if (p := self.sources.missing_model(m))]
        self.files: list[Path] = []

    def _dataset(self, image_id: int) -> DatasetInfo:
        return self.sources.datasets[self.images[image_id].dataset_id]

    def run(self) -> None:
        with ExitStack() as stack:
            html = None
            if "html" in self.wanted:
                html = stack.enter_context(self._open("report.html"))
                summary = self._summary()
                html.write(document_start("Segmentation error report"))
                html.write(summary_html(summary, self._contents()))
            records = self._images(html)
            if html is not None:
                html.write(provenance_html(summary))
                html.write(DOCUMENT_END)
        ordered = [records[f.id] for f in self.flags]
        if "csv" in self.wanted:
            with self._open("flags.csv", newline="") as handle:
                write_flags_csv(handle, ordered)
        if "json" in self.wanted:
            document = flags_document(
                ordered,
                generated=datetime.now(UTC),
                filters=self.filters,
                models=self.models,
                datasets=[self.sources.datasets[i] for i in self.sources.opened],
            )
            with self._open("flags.json") as handle:
                json.dump(document, handle, indent=1, ensure_ascii=False, allow_nan=False)

    def _open(self, name: str, newline: str | None = None) -> TextIO:
        self.files.append(self.partial / name)
        return open(self.files[-1], "w", encoding="utf-8", newline=newline)

    def _summary(self) -> ReportSummary:
        keys = sorted({(f.dataset_id, f.model_a_id, f.model_b_id) for f in self.flags})
        return ReportSummary(
            generated=datetime.now(UTC),
            filters=self.filters,
            datasets=[
                {
                    "name": self.sources.datasets[i].name,
                    "layout": composer.dataset.layout,
                    "split": composer.dataset.split,
                    "root": str(composer.dataset.root),
                    "images": sum(1 for img in self.images.values() if img.dataset_id == i),
                }
                for i, composer in self.sources.opened.items()
            ],
            models=self.models,
            counts=_counts(self.flags),
            severity_status=Counter((f.severity, f.status) for f in self.flags),
            flag_count=len(self.flags),
            image_count=len(self.by_image),
            splits=[
                _split_summary(
                    key,
                    self.store,
                    self.sources,
                    self.given,
                    self.evaluate,
                    self.groups,
                    self.min_recall,
                )
                for key in keys
            ],
            groups=self.groups,
            problems=self.problems,
        )

    def _contents(self) -> list[TocEntry]:
        """The flagged images in report order; the worst (by their worst severity, then
        their number of flags) carry a thumbnail for the verdict."""
        severities = {
            i: tuple(sorted((f.severity for f in self.by_image[i]), key=SEVERITIES.index))
            for i in self.order
        }
        worst = sorted(
            self.order, key=lambda i: (SEVERITIES.index(severities[i][0]), -len(severities[i]))
        )[:WORST_CASES]
        return [
            TocEntry(
                self.anchors[i],
                self._dataset(i).name,
                self.images[i].image_key,
                severities[i],
                self._thumbnail(i) if i in worst else None,
            )
            for i in self.order
        ]

    def _thumbnail(self, image_id: int) -> np.ndarray | None:
        """The input image of a flagged image, None if it cannot be read (its section
        says why)."""
        try:
            return read_rgb_image(Path(self.images[image_id].path))
        except (DatasetError, OSError):
            return None

    def _images(self, html: TextIO | None) -> dict[int, ExportedFlag]:
        """Render, write and record every flagged image in turn (one image in memory)."""
        records: dict[int, ExportedFlag] = {}
        taken: dict[tuple[str, str, str], int] = {}
        for done, image_id in enumerate(self.order, start=1):
            image = self.images[image_id]
            flags = self.by_image[image_id]
            rendered = _render_image(self.anchors[image_id], image, flags, self.store, self.sources)
            for flag in flags:
                records[flag.id] = exported_flag(
                    flag,
                    dataset=self._dataset(image_id),
                    split=rendered.section.split,
                    image_path=image.path,
                    model_a=self.sources.models[flag.model_a_id],
                    model_b=self.sources.models[flag.model_b_id],
                    scores=rendered.scores[(flag.model_a_id, flag.model_b_id)],
                    history=self.store.flag_history(flag.id),
                )
            if rendered.section.problem is not None:
                self.problems.append(f"{image.image_key}: {rendered.section.problem}")
            if html is not None:
                section_flags = tuple(records[f.id] for f in flags)
                html.write(image_section_html(replace(rendered.section, flags=section_flags)))
            if "masks" in self.wanted:
                self.files += _write_masks(self.partial / "masks", rendered, taken, image_id)
            if self.progress is not None:
                self.progress(done, len(self.order))
        return records


def zip_export(result: ExportResult) -> Path:
    """``<out>.zip`` beside the export folder, written aside and then moved into place."""
    target = result.out.with_name(f"{result.out.name}.zip")
    if target.exists():
        raise ExportError(f"{target} already exists")
    partial = _partial(target)
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for path in result.files:
                archive.write(path, path.relative_to(result.out.parent).as_posix())
        os.replace(partial, target)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise write_error(target, error) from None
        raise
    return target


PARTIAL_MAX_AGE_S = 3600
"""A partial export or zip this much older than now, whose process is gone, was abandoned
(a killed export); the next export in the same folder removes it."""
_PARTIAL = re.compile(r"\.partial-(\d+)$")


def _partial(target: Path) -> Path:
    """Where ``target`` is written before it is moved into place: beside it, named by the
    process, so two exports never share one and a leftover says whose it was."""
    return target.with_name(f"{target.name}.partial-{os.getpid()}")


def remove_stale_partials(folder: Path, now: float | None = None) -> list[Path]:
    """Remove the abandoned partial exports and zips in ``folder``; returns what went."""
    now = time.time() if now is None else now
    removed = []
    for entry in folder.iterdir() if folder.is_dir() else ():
        match = _PARTIAL.search(entry.name)
        if match is None or entry.is_symlink() or _running(int(match.group(1))):
            continue
        try:
            if now - entry.lstat().st_mtime < PARTIAL_MAX_AGE_S:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue  # not ours to remove (another user's, or already gone)
        removed.append(entry)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def write_error(target: Path, error: OSError) -> ExportError:
    """One line for an export stopped by the file system (a full disk, a read-only folder)."""
    where = f" ({error.filename})" if error.filename else ""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return ExportError(
            f"no space left on the disk of {target}{where}; nothing was written: free some "
            "space there or pass --out on another disk"
        )
    reason = error.strerror or str(error)
    return ExportError(f"the export to {target} failed: {reason}{where}; nothing was written")


# ----------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reviewer.export",
        description="Export flagged cases from the review database: an HTML report (one "
        "self-contained file), CSV and JSON records, and Cityscapes-layout masks of ground "
        "truth and both predictions. The folder is written aside and moved into place, so it "
        "is either complete or absent.",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="new folder to write (must not exist)"
    )
    parser.add_argument(
        "--db", help="database URL (default: $SEGBENCH_DB, else the per-user SQLite file)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="dataset folder, when it moved since the flags were made (default: the folder the "
        "database recorded)",
    )
    parser.add_argument("--split", help="dataset split (default: the split the database recorded)")
    parser.add_argument(
        "--status", nargs="+", choices=STATUSES, help="only flags with these statuses"
    )
    parser.add_argument(
        "--severity", nargs="+", choices=SEVERITIES, help="only flags with these severities"
    )
    parser.add_argument("--category", nargs="+", help="only flags in these categories")
    parser.add_argument(
        "--format",
        default=",".join(FORMATS),
        help=f"comma-separated formats to write (default: {','.join(FORMATS)})",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE_OR_DIR",
        help="checkpoint files or folders to find the flagged model versions in, by file hash "
        "(the shipped checkpoints are always searched)",
    )
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="evaluate the whole split with both models for the split-level scores when the "
        "database has no complete score cache (takes time)",
    )
    parser.add_argument("--groups", type=Path, help="importance groups TOML (default: recipe)")
    parser.add_argument(
        "--device", choices=DEVICE_CHOICES, default="auto", help="where the models run"
    )
    parser.add_argument("--zip", action="store_true", help="also write OUT.zip beside the folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        formats = check_formats(args.format.split(","))
        check_out(args.out)
        groups = ImportanceGroups.load(args.groups) if args.groups else DEFAULT_GROUPS
        with open_store(args.db) as store, tqdm(desc="exporting", unit="img") as bar:

            def advance(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            result = export_report(
                args.out,
                store,
                formats=formats,
                status=args.status,
                severity=args.severity,
                category=args.category,
                data=args.data,
                split=args.split,
                model_sources=args.models,
                engine=InferenceEngine(device=args.device),
                evaluate=args.evaluate,
                groups=groups,
                progress=advance,
            )
        archive = zip_export(result) if args.zip else None
    except (ExportError, GroupsError, DeviceError, CheckpointError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in result.problems:
        print(f"warning: {problem}", file=sys.stderr)
    flags, images = count_of(result.flag_count, "flag"), count_of(result.image_count, "image")
    print(f"exported {flags} on {images} to {result.out}")
    if archive is not None:
        print(f"wrote {archive}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
