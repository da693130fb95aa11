"""One scoring path: the scores of one image under one or more models, and of a split.

:func:`score_image` is the only place an image is scored: the split evaluator (and so the
evaluate command, the export and the app's first evaluation) and the review view call it.
It counts each model's 20x20 confusion matrix on the image (one joint pass for a pair,
which also gives their agreement on critical pixels) and its error-taxonomy counts
(:mod:`models.taxonomy`: kinds of error, Boundary IoU) and keeps both in the result, so
split scores (:class:`SplitEvaluator`) and any later statistic over images (a paired
bootstrap) add up the same counts the per-image scores were computed from.

Scores come from the table of :mod:`models.scores`; undefined values are None.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from models.confusion import LabelMap, confusion_matrix, joint_confusion
from models.datasets import SkippedFile
from models.instances import DEFAULT_MIN_RECALL, InstanceScore, instance_scores
from models.labels import CLASS_NAMES, DEFAULT_GROUPS, NUM_CLASSES, NUM_EVALUATED, ImportanceGroups
from models.metrics import (
    EVALUATED,
    annotated_mask,
    as_matrix,
    check_severity,
    default_severity_matrix,
    disagreement_from_joint,
    false_alarm_rate_per_group,
    group_confusion,
    group_iou,
    miss_rate_per_group,
    per_class_iou,
)
from models.ranking import by_score, rank
from models.scores import (
    BY_KEY,
    IMAGE_KEYS,
    IMAGE_SCORES,
    SPLIT_SCORES,
    ConfusionStats,
    defined,
    format_value,
    values_of,
)
from models.suspects import SuspectRegion, suspect_pixels
from models.taxonomy import (
    COUNT_LENGTH,
    DEFAULT_BAND,
    ErrorTaxonomy,
    boundary_iou,
    count_record,
    error_taxonomy,
)


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array)
    array.setflags(write=False)
    return array


def _optional(values: np.ndarray) -> tuple[float | None, ...]:
    return tuple(defined(v) for v in values)


def _class_iou(stats: ConfusionStats) -> tuple[float | None, ...]:
    """IoU of the 19 evaluated classes; None where undefined or not annotated."""
    iou = per_class_iou(stats.matrix)
    iou[~annotated_mask(stats.annotated)] = np.nan
    return _optional(iou)


def _class_boundary_iou(stats: ConfusionStats) -> tuple[float | None, ...]:
    """Boundary IoU of the 19 evaluated classes; None where undefined, not annotated or
    not counted."""
    if stats.taxonomy is None:
        return (None,) * NUM_EVALUATED
    iou = boundary_iou(stats.taxonomy)
    iou[~annotated_mask(stats.annotated)] = np.nan
    return _optional(iou)


def _taxonomy_record(counts: np.ndarray | None) -> dict | None:
    return None if counts is None else count_record(counts)


@dataclass(frozen=True, eq=False)
class ModelImageScores:
    """One model's scores on one image, with the image's confusion matrix they come from."""

    confusion: np.ndarray
    """(20, 20) int64 counts on this image, rows = ground truth (read-only)."""
    values: Mapping[str, float | None]
    """Key -> value of every per-image score of the table."""
    iou: tuple[float | None, ...]
    evaluated_pixels: int
    critical_pixels: int
    taxonomy: np.ndarray | None = None
    """Error-taxonomy counts on this image (:mod:`models.taxonomy`, read-only); None when
    the evaluation left the taxonomy out."""

    @classmethod
    def compute(
        cls,
        matrix: np.ndarray,
        groups: ImportanceGroups,
        severity: np.ndarray,
        annotated: Collection[int] | None,
        taxonomy: np.ndarray | None = None,
    ) -> ModelImageScores:
        stats = ConfusionStats(as_matrix(matrix), groups, severity, annotated, taxonomy)
        critical = groups.group_of[EVALUATED] == groups.most_important
        return cls(
            confusion=_frozen(stats.matrix),
            values=values_of(IMAGE_SCORES, stats),
            iou=_class_iou(stats),
            evaluated_pixels=int(stats.matrix[EVALUATED].sum()),
            critical_pixels=int(stats.matrix[EVALUATED][critical].sum()),
            taxonomy=None if taxonomy is None else _frozen(taxonomy),
        )

    def __getitem__(self, key: str) -> float | None:
        return self.values[key]

    def to_dict(self) -> dict:
        """JSON-ready: the table's scores, per-class IoU (19), the pixel counts and the
        taxonomy counts (None when not counted)."""
        return {
            **self.values,
            "iou": list(self.iou),
            "evaluated_pixels": self.evaluated_pixels,
            "critical_pixels": self.critical_pixels,
            "taxonomy": _taxonomy_record(self.taxonomy),
        }


@dataclass(frozen=True, eq=False)
class ImageResult:
    """Per-image scores of every model, their disagreement and the per-instance recalls."""

    sample_id: str
    scores: Mapping[str, ModelImageScores]
    """Model name -> its scores on this image."""
    disagreement: Mapping[str, int] | None
    """Critical-pixel counts of :func:`models.metrics.disagreement_from_joint` when exactly
    two models are scored: both_right, only_a (the first model), only_b, both_wrong."""
    instances: tuple[InstanceScore, ...] = ()
    instances_annotated: bool = False
    """Whether the image came with an instance map: without one, no objects means "not
    annotated" rather than "none there"."""
    taxonomy_maps: Mapping[str, np.ndarray] | None = None
    """Model name -> its map of error kinds (codes of :data:`models.maps.TAXONOMY_MAP`),
    kept only when :func:`score_image` is asked to (a split keeps counts, not maps)."""
    suspects: tuple[SuspectRegion, ...] | None = None
    """Where the pair confidently agrees against the ground truth, largest first
    (:mod:`models.suspects`); None when not looked for."""

    def value(self, model: str, key: str) -> float | None:
        return self.scores[model][key]

    @property
    def suspect_pixels(self) -> int | None:
        """Pixels of the image's suspect regions; None when not looked for."""
        return None if self.suspects is None else suspect_pixels(self.suspects)

    def to_dict(self) -> dict:
        return {
            "sample_id": self.sample_id,
            "scores": {name: scores.to_dict() for name, scores in self.scores.items()},
            "disagreement": None if self.disagreement is None else dict(self.disagreement),
            "instances": [instance.to_dict() for instance in self.instances],
            "instances_annotated": self.instances_annotated,
            "suspects": None
            if self.suspects is None
            else [region.to_dict() for region in self.suspects],
            "suspect_pixels": self.suspect_pixels,
        }


def _count(
    gt: LabelMap,
    predictions: Mapping[str, LabelMap],
    groups: ImportanceGroups,
    sample_id: str,
    device: torch.device | str | None,
) -> tuple[dict[str, np.ndarray], dict[str, int] | None]:
    """Each model's confusion matrix on the image; for a pair, from one joint count that
    also gives their agreement on critical pixels."""
    truth = f"{sample_id}: ground truth"
    named = {name: f"{sample_id}: prediction of {name}" for name in predictions}
    if len(predictions) != 2:
        counts = {
            name: confusion_matrix(gt, pred, device=device, names=(truth, named[name]))
            for name, pred in predictions.items()
        }
        return {name: matrix.cpu().numpy() for name, matrix in counts.items()}, None
    (name_a, pred_a), (name_b, pred_b) = predictions.items()
    names = (truth, named[name_a], named[name_b])
    joint = joint_confusion(gt, pred_a, pred_b, device=device, names=names)
    matrices = {name_a: joint.sum(dim=2).cpu().numpy(), name_b: joint.sum(dim=1).cpu().numpy()}
    return matrices, disagreement_from_joint(joint, groups)


def _taxonomies(
    pool: ThreadPoolExecutor,
    gt: LabelMap,
    predictions: Mapping[str, LabelMap],
    groups: ImportanceGroups,
    band: float,
) -> dict[str, Future[ErrorTaxonomy]]:
    """Each model's error taxonomy started in ``pool``, the models' at the same time: its
    numpy and OpenCV passes release the GIL, and it is the dearest step of scoring a large
    image, so the rest of the scoring runs meanwhile."""
    return {
        name: pool.submit(error_taxonomy, gt, p, groups, band) for name, p in predictions.items()
    }


def score_image(
    gt: LabelMap,
    predictions: Mapping[str, LabelMap],
    groups: ImportanceGroups = DEFAULT_GROUPS,
    severity: np.ndarray | None = None,
    annotated: Collection[int] | None = None,
    instance_ids: np.ndarray | None = None,
    min_recall: float = DEFAULT_MIN_RECALL,
    *,
    sample_id: str = "image",
    device: torch.device | str | None = None,
    area_scale: float = 1.0,
    taxonomy: bool = True,
    band: float = DEFAULT_BAND,
    keep_maps: bool = False,
    suspects: Sequence[SuspectRegion] | None = None,
) -> ImageResult:
    """Every score of every model on one image (a pure function of its arguments).

    ``predictions`` maps model names to label maps, in order (with two, the first is "a"
    of the disagreement counts); ``instance_ids`` (Cityscapes encoding) adds per-instance
    recall, with sizes binned at ``area_scale`` annotation pixels per pixel (see
    :func:`models.instances.instance_scores`). ``suspects`` are the pair's suspect
    regions (:func:`models.suspects.find_suspects` needs the models' probabilities, which a
    label map lacks). Counting runs on ``device`` (default: where the predictions are); a
    bad map is reported with ``sample_id`` and the model's name.
    ``taxonomy`` off leaves out the error taxonomy and Boundary IoU (their scores are then
    undefined), ``band`` is the width of its boundary band (a share of the image diagonal);
    ``keep_maps`` keeps each model's map of error kinds in the result, for a view to draw.
    """
    if not predictions:
        raise ValueError(f"{sample_id}: no prediction to score")
    severity = default_severity_matrix(groups) if severity is None else check_severity(severity)
    with ThreadPoolExecutor(len(predictions), thread_name_prefix="taxonomy") as pool:
        started = _taxonomies(pool, gt, predictions, groups, band) if taxonomy else {}
        matrices, agreement = _count(gt, predictions, groups, sample_id, device)
        instances = None
        if instance_ids is not None:
            instances = tuple(instance_scores(instance_ids, predictions, min_recall, area_scale))
        taxonomies = {name: future.result() for name, future in started.items()}
    scores = {
        name: ModelImageScores.compute(
            matrix, groups, severity, annotated, taxonomies[name].counts if taxonomy else None
        )
        for name, matrix in matrices.items()
    }
    maps = {name: t.codes for name, t in taxonomies.items()} if keep_maps and taxonomy else None
    found = None if suspects is None else tuple(suspects)
    if instances is None:
        return ImageResult(sample_id, scores, agreement, taxonomy_maps=maps, suspects=found)
    return ImageResult(
        sample_id, scores, agreement, instances, True, taxonomy_maps=maps, suspects=found
    )


def _by_group(values: Sequence[float | None], groups: ImportanceGroups) -> dict[str, float | None]:
    return dict(zip(groups.names, values, strict=True))


@dataclass(frozen=True, eq=False)
class ModelScores:
    """Every split-level score of one model, from its accumulated confusion matrix."""

    confusion: np.ndarray
    groups: ImportanceGroups
    severity: np.ndarray
    annotated: np.ndarray
    """(19,) bool: classes the dataset annotates; the others have no IoU."""
    values: Mapping[str, float | None]
    """Key -> value of every split score of the table."""
    iou: tuple[float | None, ...]
    """Per-class IoU, None where undefined or not annotated."""
    class_pixels: np.ndarray
    group_iou: tuple[float | None, ...]
    group_confusion: np.ndarray
    miss_rate_per_group: tuple[float | None, ...]
    false_alarm_rate_per_group: tuple[float | None, ...]
    taxonomy: np.ndarray | None = None
    """The split's error-taxonomy counts (its images' added up); None when not counted."""
    boundary_iou: tuple[float | None, ...] = (None,) * NUM_EVALUATED
    """Per-class Boundary IoU, None where undefined, not annotated or not counted."""

    @classmethod
    def compute(
        cls,
        cm: np.ndarray | torch.Tensor,
        groups: ImportanceGroups = DEFAULT_GROUPS,
        annotated_classes: Collection[int] | None = None,
        severity: np.ndarray | None = None,
        taxonomy: np.ndarray | None = None,
    ) -> ModelScores:
        cm = as_matrix(cm)
        severity = default_severity_matrix(groups) if severity is None else check_severity(severity)
        stats = ConfusionStats(cm, groups, severity, annotated_classes, taxonomy)
        return cls(
            confusion=_frozen(cm),
            groups=groups,
            severity=_frozen(severity),
            annotated=_frozen(annotated_mask(annotated_classes)),
            values=values_of(SPLIT_SCORES, stats),
            iou=_class_iou(stats),
            class_pixels=_frozen(cm[EVALUATED].sum(axis=1)),
            group_iou=_optional(group_iou(cm, groups, annotated_classes)),
            group_confusion=_frozen(group_confusion(cm, groups)),
            miss_rate_per_group=_optional(miss_rate_per_group(cm, groups)),
            false_alarm_rate_per_group=_optional(false_alarm_rate_per_group(cm, groups)),
            taxonomy=None if taxonomy is None else _frozen(taxonomy),
            boundary_iou=_class_boundary_iou(stats),
        )

    def __getitem__(self, key: str) -> float | None:
        return self.values[key]

    def to_dict(self) -> dict:
        """JSON-ready form; undefined scores are None, unannotated classes flagged."""
        return {
            "classes": [
                {
                    "train_id": train_id,
                    "name": CLASS_NAMES[train_id],
                    "annotated": bool(self.annotated[train_id]),
                    "iou": self.iou[train_id],
                    "boundary_iou": self.boundary_iou[train_id],
                    "pixels": int(self.class_pixels[train_id]),
                }
                for train_id in range(NUM_EVALUATED)
            ],
            **self.values,
            "groups": self.groups.to_dict(),
            "group_iou": _by_group(self.group_iou, self.groups),
            "group_confusion": self.group_confusion.tolist(),
            "miss_rate_per_group": _by_group(self.miss_rate_per_group, self.groups),
            "false_alarm_rate_per_group": _by_group(self.false_alarm_rate_per_group, self.groups),
            "confusion": self.confusion.tolist(),
            "severity": self.severity.tolist(),
            "taxonomy": _taxonomy_record(self.taxonomy),
        }

    def report(self) -> str:
        """Plain-text summary: per-class IoU, the split scores, the group IoUs."""
        return text_table({"value": self})


def class_rows(
    models: Mapping[str, ModelScores], with_boundary_iou: bool = False
) -> list[list[str]]:
    """[class, IoU of each model, then (``with_boundary_iou``) Boundary IoU of each model]
    for the 19 evaluated classes, written as tables show them."""
    values = ("iou", "boundary_iou") if with_boundary_iou else ("iou",)

    def cells(train_id: int, value: str) -> list[str]:
        return [
            format_value(getattr(m, value)[train_id]) if m.annotated[train_id] else "not annotated"
            for m in models.values()
        ]

    return [
        [CLASS_NAMES[train_id], *(cell for value in values for cell in cells(train_id, value))]
        for train_id in range(NUM_EVALUATED)
    ]


def split_rows(models: Mapping[str, ModelScores]) -> list[list[str]]:
    """[label, value of each model] for every split score of the table."""
    return [[s.label_of_split, *(s.text(m[s.key]) for m in models.values())] for s in SPLIT_SCORES]


def group_iou_rows(models: Mapping[str, ModelScores]) -> list[list[str]]:
    """["IoU <group>", value of each model] for every importance group."""
    groups = next(iter(models.values())).groups
    return [
        [f"IoU {name}", *(format_value(m.group_iou[index]) for m in models.values())]
        for index, name in enumerate(groups.names)
    ]


def text_table(models: Mapping[str, ModelScores]) -> str:
    """Side-by-side plain text: per-class IoU, then the split scores and group IoUs."""
    width = max(len("not annotated"), *(len(name) for name in models)) + 2

    def line(cells: Sequence[str]) -> str:
        return f"{cells[0]:<34}" + "".join(f"{cell:>{width}}" for cell in cells[1:])

    rule = "-" * (34 + width * len(models))
    scores = split_rows(models) + group_iou_rows(models)
    rows = [line(["class", *models]), rule, *map(line, class_rows(models)), rule]
    return "\n".join(rows + [line(row) for row in scores])


@dataclass(frozen=True)
class SplitScores:
    """Results of a split: split-level scores per model and every image's scores."""

    models: dict[str, ModelScores]
    images: tuple[ImageResult, ...]
    skipped: tuple[SkippedFile, ...] = ()
    """Files of the split that could not be decoded, with why: the split is scored without
    them (files already refused at scan are in the dataset's own ``skipped``)."""

    def worst(self, model: str, key: str = "safety_error", n: int = 10) -> list[ImageResult]:
        """The ``n`` images where ``model`` does worst on ``key``; images without a value last."""
        if model not in self.models:
            raise ValueError(f"unknown model {model!r}; evaluated: {', '.join(self.models)}")
        if key not in IMAGE_KEYS:
            raise ValueError(f"cannot rank by {key!r}; choose one of {', '.join(IMAGE_KEYS)}")
        return [image for image, _ in rank(self.images, by_score(BY_KEY[key], model))][:n]

    def missed_instances(self, model: str) -> list[tuple[str, InstanceScore]]:
        """(sample id, instance) of every instance ``model`` missed, largest first."""
        missed = [
            (image.sample_id, instance)
            for image in self.images
            for instance in image.instances
            if instance.missed.get(model)
        ]
        return sorted(missed, key=lambda pair: -pair[1].pixels)

    def to_dict(self) -> dict:
        return {
            "models": {name: scores.to_dict() for name, scores in self.models.items()},
            "images": [image.to_dict() for image in self.images],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    def report(self) -> str:
        return text_table(self.models)


@dataclass
class SplitEvaluator:
    """Scores one or more models over a split, image by image, with :func:`score_image`,
    and adds up the per-image confusion matrices (and taxonomy counts) for the split-level
    scores."""

    model_names: Sequence[str]
    groups: ImportanceGroups = DEFAULT_GROUPS
    severity: np.ndarray | None = None
    annotated_classes: Collection[int] | None = None
    device: torch.device | str = "cpu"
    min_recall: float = DEFAULT_MIN_RECALL
    taxonomy: bool = True
    """Count the error taxonomy and Boundary IoU (off: their scores are undefined)."""
    band: float = DEFAULT_BAND
    """Width of the taxonomy's boundary band, a share of the image diagonal."""
    _totals: dict[str, np.ndarray] = field(init=False, repr=False)
    _taxonomy_totals: dict[str, np.ndarray] = field(init=False, repr=False)
    _images: list[ImageResult] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.model_names or len(set(self.model_names)) != len(self.model_names):
            raise ValueError(f"need one or more distinct model names, got {list(self.model_names)}")
        self.severity = (
            default_severity_matrix(self.groups)
            if self.severity is None
            else check_severity(self.severity)
        )
        shape = (NUM_CLASSES, NUM_CLASSES)
        self._totals = {name: np.zeros(shape, dtype=np.int64) for name in self.model_names}
        self._taxonomy_totals = {
            name: np.zeros(COUNT_LENGTH, dtype=np.int64) for name in self.model_names
        }
        self._images = []

    def add(
        self,
        sample_id: str,
        gt: LabelMap,
        preds: Mapping[str, LabelMap],
        instance_ids: np.ndarray | None = None,
        area_scale: float = 1.0,
        suspects: Sequence[SuspectRegion] | None = None,
    ) -> ImageResult:
        """Add one image: ground truth, each model's prediction, optional instance map
        (with ``area_scale`` annotation pixels per pixel of it) and suspect regions."""
        return self.include(self.score(sample_id, gt, preds, instance_ids, area_scale, suspects))

    def score(
        self,
        sample_id: str,
        gt: LabelMap,
        preds: Mapping[str, LabelMap],
        instance_ids: np.ndarray | None = None,
        area_scale: float = 1.0,
        suspects: Sequence[SuspectRegion] | None = None,
    ) -> ImageResult:
        """One image's scores as :meth:`add` computes them, not yet added: a caller can
        finish the result (its suspect regions, found meanwhile) before :meth:`include`."""
        if set(preds) != set(self.model_names):
            raise ValueError(
                f"{sample_id}: predictions given for {sorted(preds)}, "
                f"expected {sorted(self.model_names)}"
            )
        return score_image(
            gt,
            {name: preds[name] for name in self.model_names},
            self.groups,
            self.severity,
            self.annotated_classes,
            instance_ids,
            self.min_recall,
            sample_id=sample_id,
            device=self.device,
            area_scale=area_scale,
            taxonomy=self.taxonomy,
            band=self.band,
            suspects=suspects,
        )

    def include(self, result: ImageResult) -> ImageResult:
        """Add a scored image (from :meth:`score`) to the split's totals."""
        for name, scores in result.scores.items():
            self._totals[name] += scores.confusion
            if scores.taxonomy is not None:
                self._taxonomy_totals[name] += scores.taxonomy
        self._images.append(result)
        return result

    def result(self) -> SplitScores:
        return SplitScores(
            models={
                name: ModelScores.compute(
                    matrix,
                    self.groups,
                    self.annotated_classes,
                    self.severity,
                    self._taxonomy_totals[name] if self.taxonomy else None,
                )
                for name, matrix in self._totals.items()
            },
            images=tuple(self._images),
        )
