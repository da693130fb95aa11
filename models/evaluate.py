"""Evaluate one or more checkpoints on a dataset split: library function and command line.

    python -m models.evaluate --data DIR --split val --models A.pt B.pt --json out.json

The JSON written by ``--json`` has the top-level keys ``dataset`` (root, layout, split,
``images`` scored, annotated classes and ``skipped``: every file left out, refused at scan or
failing to decode, as ``path`` and ``reason``), ``split``, ``groups``, ``models`` (per model:
``checkpoint``, ``hash``, ``loss``, every split score of :data:`models.scores.SCORES` under its
key (``miou``, ``frequency_weighted_iou``, ``pixel_accuracy``, ``critical_miss_rate``,
``critical_segment_share``, ``false_alarm_rate``, ``safety_error``, ``expected_cost``,
``boundary_iou``, ``boundary_error_rate``, ``extent_error_rate``, ``segment_error_rate``: the
last five and ``critical_segment_share`` come from the error taxonomy of
:mod:`models.taxonomy` and are null with ``--no-taxonomy``), ``fw_iou`` (the
frequency-weighted IoU under its earlier name), ``per_class_iou`` (class name -> IoU or null),
``per_class_boundary_iou`` (class name -> Boundary IoU or null), ``group_iou``, ``taxonomy``
(the split's error-taxonomy counts: ``judged_pixels``, ``boundary_errors``, ``extent_errors``,
``segment_errors``, ``critical_misses``, ``critical_segment_misses`` and the per-class
``boundary_iou_intersection`` and ``boundary_iou_union`` pixels, 19 each; null with
``--no-taxonomy``), ``confusion`` (20x20, rows = ground truth) and ``details`` (everything
:meth:`ModelScores.to_dict` gives)) and ``images`` (per image: ``sample_id``, ``scores`` per
model, each with the image's ``taxonomy`` counts, ``disagreement`` of the two models on
critical pixels when two are evaluated, ``instances`` with recall per model and ``size``
(small, medium or large), ``instances_annotated`` (false without an instance map),
``suspects``: where the first two models confidently agree against the ground truth
(:mod:`models.suspects`), largest first, each with ``predicted`` and ``annotated`` class,
``pixels``, ``confidence`` (the lower model's mean top-class probability) and ``box``, null
with one model, and their total ``suspect_pixels``), ``objects_by_size`` (below) and
``comparison`` (null unless two or more models are evaluated and ``--bootstrap`` is not 0):
the first two models as ``model_a`` and ``model_b``, ``images``, ``method``, ``confidence``
(0.95), ``resamples``, ``seed`` and ``differences``, one per compared quantity (every split
score, ``group_iou/<group>`` and ``class_iou/<class>`` for each annotated class), each with
``key``, ``label``, ``higher_is_better``, ``a``, ``b``, ``difference`` (B - A), ``low`` and
``high`` (the interval) and ``verdict`` ("B better", "A better", "within noise" or
"undefined").

``objects_by_size`` has ``annotated`` (false when no image has an instance map: then there
is nothing to count, which is not zero misses), ``bins`` (``name``, ``min_area`` and
``max_area`` in pixels at the annotation's resolution, COCO's 32x32 and 96x96; the last
``max_area`` is null: unbounded), ``cells`` (one per class and size with objects:
``class``, ``size``, ``objects``, and per model ``missed`` (count), ``miss_rate`` and
``recall`` (share of objects found)) and ``differences`` (null with one model, else one per
cell in the same order, keyed ``miss_rate/<class>/<size>``, with the fields of a
``comparison`` difference: B - A of the miss rates, its interval from the same bootstrap and
the verdict; ``--bootstrap 0`` leaves the intervals null).

Undefined values are null. The ``--csv`` file has one row per image and model, then one
per skipped file (its name in ``sample_id``, its reason in ``skipped_reason``). A bad file
never stops the run: it is skipped, listed (the first 10, all with ``--verbose``) and the
split is scored without it.
"""

from __future__ import annotations

import os

# The network's OpenMP threads spin while they wait for work, taking the cores the loader
# and scoring threads of the pipeline need. Passive waiting must be chosen before torch
# loads: it applies to ``python -m models.evaluate`` (as launch.py does for the app).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.checkpoints import CheckpointError
from models.comparison import DEFAULT_RESAMPLES, Comparison, compare_split
from models.datasets import (
    DatasetError,
    Sample,
    SegmentationDataset,
    SkippedFile,
    count_of,
    open_dataset,
    skipped_lines,
)
from models.device import DEVICE_CHOICES, DeviceError
from models.inference import InferenceEngine, LoadedModel, Prediction, Resolution
from models.instances import DEFAULT_MIN_RECALL
from models.labels import (
    CLASS_NAMES,
    DEFAULT_GROUPS,
    NUM_EVALUATED,
    GroupsError,
    ImportanceGroups,
)
from models.object_sizes import ObjectsBySize, objects_by_size
from models.pipeline import Behind, read_ahead
from models.scores import IMAGE_KEYS, SPLIT_SCORES
from models.scoring import ModelScores, SplitEvaluator, SplitScores
from models.spreadsheet import spreadsheet_safe
from models.suspects import suspects_of_pair
from models.synthetic import resolve_data
from models.taxonomy import DEFAULT_BAND

SKIPPED_SHOWN = 10
"""Skipped files the command lists without ``--verbose``."""
ProgressCallback = Callable[[int, int], None]
"""Called with (images done, images in all) after each batch."""


def evaluate_split(
    dataset: SegmentationDataset,
    engine: InferenceEngine,
    models: Mapping[str, LoadedModel],
    groups: ImportanceGroups = DEFAULT_GROUPS,
    batch_size: int = 8,
    resolution: Resolution = "label",
    min_recall: float = DEFAULT_MIN_RECALL,
    progress: ProgressCallback | None = None,
    taxonomy: bool = True,
    band: float = DEFAULT_BAND,
) -> SplitScores:
    """Scores of every model over the split, with per-image and per-instance scores;
    ``taxonomy`` off leaves out the error taxonomy and Boundary IoU, ``band`` is the width
    of its boundary band (a share of the image diagonal). Samples are read ahead
    by loader threads and each batch is scored behind the network (:mod:`models.pipeline`),
    with the results of doing each step in turn; ``progress`` is called as batches are
    scored, from the scoring thread."""
    _check_evaluable(dataset, models, resolution)
    evaluator = SplitEvaluator(
        list(models),
        groups=groups,
        annotated_classes=dataset.annotated_classes,
        device=engine.device,
        min_recall=min_recall,
        taxonomy=taxonomy,
        band=band,
    )
    samples = dataset.samples
    skipped: list[SkippedFile] = []

    def score(batch: list[_ReadSample], predictions: dict[str, list], done: int) -> None:
        for n, sample in enumerate(batch):
            _add(evaluator, sample, [predictions[name][n] for name in models], models, resolution)
        if progress is not None:
            progress(done, len(samples))

    read = partial(_read_or_skip, dataset)
    with read_ahead(samples, read, 2 * batch_size) as reads, Behind() as scoring:
        for start in range(0, len(samples), batch_size):
            batch, unreadable = _readable(islice(reads, batch_size))
            skipped += unreadable
            ids = [sample.sample.id for sample in batch]
            predictions = {
                name: engine.predict_batch(model, [s.image for s in batch], ids, resolution)
                for name, model in models.items()
            }
            scoring.submit(
                partial(score, batch, predictions, min(start + batch_size, len(samples)))
            )
    if len(skipped) == len(samples):
        raise _nothing_scored(dataset, skipped)
    return replace(evaluator.result(), skipped=tuple(skipped))


def _check_evaluable(
    dataset: SegmentationDataset, models: Mapping[str, LoadedModel], resolution: Resolution
) -> None:
    """Refuse, before any work, a split without labels or input-resolution scoring of
    models whose input sizes differ (their maps could not be compared pixel for pixel)."""
    if not dataset.has_labels:
        raise DatasetError(f"{dataset.describe()}: cannot evaluate a split without labels")
    if resolution == "input":
        sizes = {m.checkpoint.preprocessing.input_size for m in models.values()}
        if len(sizes) > 1:
            raise ValueError(f"input-resolution scoring needs one input size, got {sizes}")


def _nothing_scored(dataset: SegmentationDataset, skipped: Sequence[SkippedFile]) -> DatasetError:
    """The error of a split none of whose images could be read, naming the first file."""
    first = skipped[0]
    return DatasetError(
        f"{dataset.describe()}: no image could be scored; the first of "
        f"{count_of(len(skipped), 'file')} skipped: {first.name(dataset.root)}: {first.reason}"
    )


def _add(
    evaluator: SplitEvaluator,
    read: _ReadSample,
    predictions: list[Prediction],
    models: Mapping[str, LoadedModel],
    resolution: Resolution,
) -> None:
    """Score one read sample's predictions (in the order of ``models``) into ``evaluator``
    (at the models' input size when ``resolution`` is "input"), with the suspect
    ground-truth regions of the first two models, searched in a thread of their own while
    the image is scored."""
    gt, instances = read.label, read.instances
    area_scale = 1.0
    if resolution == "input":
        preprocessing = next(iter(models.values())).checkpoint.preprocessing
        area_scale = gt.size
        gt = preprocessing.resize_label(gt)
        area_scale /= gt.size
        instances = None if instances is None else preprocessing.resize_label(instances)
    preds = {name: prediction.labels for name, prediction in zip(models, predictions, strict=True)}
    if len(predictions) < 2:
        evaluator.add(read.sample.id, gt, preds, instances, area_scale)
        return
    pair = (predictions[0], predictions[1])
    with ThreadPoolExecutor(1, thread_name_prefix="suspects") as pool:
        found = pool.submit(suspects_of_pair, gt, pair, evaluator.annotated_classes)
        result = evaluator.score(read.sample.id, gt, preds, instances, area_scale)
        evaluator.include(replace(result, suspects=found.result().regions))


def _readable(
    reads: Iterable[_ReadSample | SkippedFile],
) -> tuple[list[_ReadSample], list[SkippedFile]]:
    """The read samples of a batch apart from the files that could not be read."""
    batch: list[_ReadSample] = []
    skipped: list[SkippedFile] = []
    for read in reads:
        if isinstance(read, SkippedFile):
            skipped.append(read)
        else:
            batch.append(read)
    return batch, skipped


@dataclass(frozen=True)
class _ReadSample:
    """One sample's decoded files, ready to be scored."""

    sample: Sample
    image: np.ndarray
    label: np.ndarray
    instances: np.ndarray | None


def _read_or_skip(dataset: SegmentationDataset, sample: Sample) -> _ReadSample | SkippedFile:
    """The sample's image, label and instances, or the skipped file and why when one of
    them cannot be decoded: one bad file must not stop a split."""
    try:
        return _ReadSample(
            sample,
            dataset.read_image(sample),
            dataset.read_label(sample),
            dataset.read_instances(sample),
        )
    except DatasetError as error:
        files = (sample.image_path, sample.label_path, sample.instance_path)
        return SkippedFile.of(error, *files)


def unique_model_names(paths: Sequence[Path]) -> list[str]:
    """File stems, made unique with a counter where two files share a stem."""
    names: list[str] = []
    for path in paths:
        name, n = path.stem, 2
        while name in names:
            name, n = f"{path.stem}-{n}", n + 1
        names.append(name)
    return names


def model_summary(scores: ModelScores, model: LoadedModel) -> dict:
    """The documented per-model JSON record."""
    details = scores.to_dict()
    return {
        "checkpoint": str(model.path),
        "hash": model.hash,
        "loss": model.checkpoint.metadata.loss,
        **{score.key: scores[score.key] for score in SPLIT_SCORES},
        "fw_iou": scores["frequency_weighted_iou"],
        "per_class_iou": {c["name"]: c["iou"] for c in details["classes"]},
        "per_class_boundary_iou": {c["name"]: c["boundary_iou"] for c in details["classes"]},
        "group_iou": details["group_iou"],
        "taxonomy": details["taxonomy"],
        "confusion": details["confusion"],
        "details": details,
    }


def results_document(
    dataset: SegmentationDataset,
    result: SplitScores,
    models: Mapping[str, LoadedModel],
    groups: ImportanceGroups,
    comparison: Comparison | None = None,
    objects: ObjectsBySize | None = None,
) -> dict:
    """The documented JSON document (see the module docstring); ``objects`` defaults to the
    split's objects by size without intervals."""
    objects = objects_by_size(result.images, list(result.models), 0) if objects is None else objects
    skipped = all_skipped(dataset, result)
    return {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {
            "root": str(dataset.root),
            "layout": dataset.layout,
            "split": dataset.split,
            "images": len(result.images),
            "annotated_classes": sorted(CLASS_NAMES[i] for i in dataset.annotated_classes),
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in skipped],
        },
        "split": dataset.split,
        "groups": groups.to_dict(),
        "models": {
            name: model_summary(result.models[name], model) for name, model in models.items()
        },
        "images": [image.to_dict() for image in result.images],
        "objects_by_size": objects.to_dict(),
        "comparison": None if comparison is None else comparison.to_dict(),
    }


def all_skipped(dataset: SegmentationDataset, result: SplitScores) -> list[SkippedFile]:
    """Every file left out of the evaluation: refused at scan, then at decoding."""
    return [*dataset.skipped, *result.skipped]


def write_image_csv(path: Path, result: SplitScores, dataset: SegmentationDataset) -> None:
    """One row per image and model: the image scores and the per-class IoUs; then one row
    per skipped file, named relative to the dataset, with its reason in the last column."""
    disagreement_keys = ("both_right", "only_a", "only_b", "both_wrong")
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "sample_id",
                "model",
                *IMAGE_KEYS,
                *(f"critical_{k}" for k in disagreement_keys),
                *(f"iou_{name}" for name in CLASS_NAMES[:NUM_EVALUATED]),
                "skipped_reason",
            ]
        )
        for image in result.images:
            agreement = image.disagreement or {}
            for model, scores in image.scores.items():
                writer.writerow(
                    [
                        spreadsheet_safe(image.sample_id),
                        spreadsheet_safe(model),
                        *(scores[k] for k in IMAGE_KEYS),
                        *(agreement.get(k) for k in disagreement_keys),
                        *scores.iou,
                        "",
                    ]
                )
        blanks = [""] * (len(IMAGE_KEYS) + len(disagreement_keys) + NUM_EVALUATED)
        for skipped in all_skipped(dataset, result):
            name = spreadsheet_safe(skipped.name(dataset.root))
            writer.writerow([name, "", *blanks, spreadsheet_safe(skipped.reason)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.evaluate",
        description="Evaluate SegNet checkpoints on a dataset split: official Cityscapes "
        "per-class IoU and mIoU, the recipe's pixel-weighted IoU, importance-group IoU, "
        "critical-miss and false-alarm rates, per-image and per-instance scores.",
    )
    parser.add_argument(
        "--data", required=True, help="dataset folder (layout is detected), or 'demo'"
    )
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument(
        "--models",
        nargs="+",
        action="extend",
        type=Path,
        metavar="FILE",
        help="checkpoint files (the first two are compared as A and B), as in launch.py "
        "and reviewer.export",
    )
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        type=Path,
        help=argparse.SUPPRESS,  # the old spelling, repeated once per file; kept for a release
    )
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_RESAMPLES,
        metavar="N",
        help="paired bootstrap resamples for the 95%% intervals of B - A (default "
        f"{DEFAULT_RESAMPLES}, fixed seed; 0: no comparison)",
    )
    parser.add_argument("--json", type=Path, help="write every score to this JSON file")
    parser.add_argument("--csv", type=Path, help="write per-image scores to this CSV file")
    parser.add_argument("--groups", type=Path, help="importance groups TOML (default: recipe)")
    parser.add_argument("--batch", type=int, default=8, help="images per forward pass")
    parser.add_argument(
        "--resolution",
        choices=("label", "input"),
        default="label",
        help="score at the ground truth's resolution (default, the Cityscapes way) or at the "
        "model's input resolution (the recipe's way)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help=f"list every skipped file (default: the first {SKIPPED_SHOWN})",
    )
    parser.add_argument(
        "--min-recall",
        type=float,
        default=DEFAULT_MIN_RECALL,
        help="an instance is missed below this recall (default 0.5)",
    )
    parser.add_argument(
        "--no-taxonomy",
        dest="taxonomy",
        action="store_false",
        help="leave out the error taxonomy (boundary / extent / segment errors) and "
        "Boundary IoU, for a faster evaluation",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.models:
        parser.error("--models FILE [FILE ...] is required")
    try:
        groups = ImportanceGroups.load(args.groups) if args.groups else DEFAULT_GROUPS
        dataset = open_dataset(resolve_data(args.data), args.split)
        engine = InferenceEngine(device=args.device)
        names = unique_model_names(args.models)
        models = {name: engine.load(path) for name, path in zip(names, args.models, strict=True)}
        print(dataset.describe(), file=sys.stderr)
        with tqdm(total=len(dataset), desc="evaluating", unit="img") as bar:
            result = evaluate_split(
                dataset,
                engine,
                models,
                groups,
                batch_size=args.batch,
                resolution=args.resolution,
                min_recall=args.min_recall,
                progress=lambda done, _total: bar.update(done - bar.n),
                taxonomy=args.taxonomy,
            )
    except (DatasetError, CheckpointError, GroupsError, DeviceError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in skipped_lines(
        all_skipped(dataset, result), dataset.root, None if args.verbose else SKIPPED_SHOWN
    ):
        print(line, file=sys.stderr)
    comparison = None
    if len(models) >= 2 and args.bootstrap:
        comparison = compare_split(result, args.bootstrap)
        print(comparison.text(), end="\n\n")
    print(result.report())
    if args.json:
        objects = objects_by_size(result.images, list(models), args.bootstrap)
        document = results_document(dataset, result, models, groups, comparison, objects)
        args.json.write_text(json.dumps(document, indent=1, allow_nan=False), encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.csv:
        write_image_csv(args.csv, result, dataset)
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
