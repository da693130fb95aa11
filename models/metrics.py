"""Evaluation metrics of one or two segmentation models over a split.

Everything here is computed from 20x20 confusion matrices (rows = ground truth, columns =
prediction, trainIds 0..19 with 19 = background), counted by ``models.confusion``.

Conventions, chosen to match the official Cityscapes evaluation
(``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling``) exactly:

* Ground-truth background (every label id Cityscapes does not evaluate: void, parking,
  guard rail, ...) carries no truth: its row is left out of **every** score here, the
  importance scores included.
* A prediction of background on an evaluated pixel is an error (a false negative of the
  true class), as a prediction of any unevaluated id is in the official script.
* Per-class IoU = TP / (TP + FP + FN) for the 19 evaluated classes; a class absent from
  both the ground truth and the predictions on evaluated pixels has no IoU (NaN) and is
  left out of the mean (mIoU), as in the official script.

Importance scores use an :class:`ImportanceGroups` (group 0 least important). A *miss*
is a pixel predicted as a class of a lower group than its true class; a *false alarm* one
predicted as a higher group. "Critical" pixels are those whose true class is in the most
important group.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from models.confusion import (
    ConfusionMatrix,
    LabelMap,
    as_label_array,
    confusion_matrix,
    joint_confusion,
)
from models.instances import DEFAULT_MIN_RECALL, InstanceScore, instance_scores
from models.labels import (
    BACKGROUND,
    CLASS_NAMES,
    DEFAULT_GROUPS,
    NUM_CLASSES,
    NUM_EVALUATED,
    ImportanceGroups,
)
from models.maps import DISAGREEMENT_MAP, ERROR_MAP

EVALUATED = slice(0, NUM_EVALUATED)
"""Rows/columns of the 19 evaluated classes in a 20x20 matrix."""


def _matrix(cm: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(cm, torch.Tensor):
        cm = cm.cpu().numpy()
    cm = np.asarray(cm)
    if cm.shape != (NUM_CLASSES, NUM_CLASSES):
        raise ValueError(f"expected a {NUM_CLASSES}x{NUM_CLASSES} confusion matrix, got {cm.shape}")
    return cm.astype(np.int64, copy=False)


def _ratio(numerator: np.ndarray | int, denominator: np.ndarray | int) -> np.ndarray:
    """Element-wise numerator / denominator, NaN where the denominator is 0 (no warning)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _annotated_mask(annotated_classes: Collection[int] | None) -> np.ndarray:
    """Which of the 19 evaluated classes the dataset annotates (all when not given)."""
    if annotated_classes is None:
        return np.ones(NUM_EVALUATED, dtype=bool)
    return np.isin(np.arange(NUM_EVALUATED), list(annotated_classes))


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def per_class_iou(cm: np.ndarray | torch.Tensor) -> np.ndarray:
    """IoU of the 19 evaluated classes (float64, NaN for a class with no TP, FP nor FN)."""
    cm = _matrix(cm)
    tp = np.diag(cm)[EVALUATED]
    fn = cm[EVALUATED].sum(axis=1) - tp
    fp = cm[EVALUATED, EVALUATED].sum(axis=0) - tp
    return _ratio(tp, tp + fp + fn)


def mean_iou(
    cm: np.ndarray | torch.Tensor, annotated_classes: Collection[int] | None = None
) -> float:
    """Unweighted mean of the defined per-class IoUs: the official Cityscapes mIoU.

    Classes the dataset does not annotate (``annotated_classes``) are left out.
    """
    iou = per_class_iou(cm)
    return _nanmean(iou[_annotated_mask(annotated_classes)])


def frequency_weighted_iou(
    cm: np.ndarray | torch.Tensor, annotated_classes: Collection[int] | None = None
) -> float:
    """Per-class IoU weighted by each class's ground-truth pixel count, over the whole matrix.

    The recipe's "mean IoU" weights each class's IoU by its pixel count *within a training
    batch* (16 images at 96x96) and averages those batch values over the batches. This is
    the same formula applied once to the whole split at the resolution evaluated, so it
    equals the recipe's number for a split evaluated as one batch and is close to it
    otherwise. It is not the Cityscapes mIoU (see :func:`mean_iou`).
    """
    cm = _matrix(cm)
    iou = np.nan_to_num(per_class_iou(cm))
    pixels = cm[EVALUATED].sum(axis=1) * _annotated_mask(annotated_classes)
    return float(_ratio((pixels * iou).sum(), pixels.sum()))


def pixel_accuracy(cm: np.ndarray | torch.Tensor) -> float:
    """Share of evaluated ground-truth pixels predicted as their class."""
    cm = _matrix(cm)
    return float(_ratio(np.trace(cm[EVALUATED, EVALUATED]), cm[EVALUATED].sum()))


def _membership(groups: ImportanceGroups) -> np.ndarray:
    """One-hot (20, G) int64: class -> group."""
    return np.eye(groups.num_groups, dtype=np.int64)[groups.group_of]


def group_confusion(cm: np.ndarray | torch.Tensor, groups: ImportanceGroups) -> np.ndarray:
    """(G, G) int64 counts: rows = true group, columns = predicted group.

    Ground-truth background is left out; predicted background counts in its group.
    """
    cm = _matrix(cm)
    members = _membership(groups)
    return members[EVALUATED].T @ cm[EVALUATED] @ members


def group_iou(
    cm: np.ndarray | torch.Tensor,
    groups: ImportanceGroups,
    annotated_classes: Collection[int] | None = None,
) -> np.ndarray:
    """Mean IoU of each group's evaluated classes (G,), NaN for a group with none defined."""
    iou = per_class_iou(cm)
    iou[~_annotated_mask(annotated_classes)] = np.nan
    group_of = groups.group_of[EVALUATED]
    return np.array([_nanmean(iou[group_of == g]) for g in range(groups.num_groups)])


def miss_rate_per_group(cm: np.ndarray | torch.Tensor, groups: ImportanceGroups) -> np.ndarray:
    """(G,): share of each group's ground-truth pixels predicted as a lower group.

    NaN for group 0 (nothing is lower) and for a group without ground-truth pixels.
    """
    gc = group_confusion(cm, groups)
    rates = _ratio(np.tril(gc, -1).sum(axis=1), gc.sum(axis=1))
    rates[0] = np.nan
    return rates


def false_alarm_rate_per_group(
    cm: np.ndarray | torch.Tensor, groups: ImportanceGroups
) -> np.ndarray:
    """(G,): share of the ground-truth pixels of all lower groups predicted as group k.

    NaN for group 0 (nothing is lower) and where the lower groups have no pixels.
    """
    gc = group_confusion(cm, groups)
    below = np.concatenate(([0], np.cumsum(gc.sum(axis=1))[:-1]))
    rates = _ratio(np.triu(gc, 1).sum(axis=0), below)
    rates[0] = np.nan
    return rates


def critical_miss_rate(cm: np.ndarray | torch.Tensor, groups: ImportanceGroups) -> float:
    """Share of most-important ground-truth pixels predicted as any less important group."""
    return float(miss_rate_per_group(cm, groups)[groups.most_important])


def false_alarm_rate(cm: np.ndarray | torch.Tensor, groups: ImportanceGroups) -> float:
    """Share of less-important ground-truth pixels predicted as the most important group."""
    return float(false_alarm_rate_per_group(cm, groups)[groups.most_important])


def default_severity_matrix(groups: ImportanceGroups) -> np.ndarray:
    """Cost (20, 20) of predicting class j where the truth is class i, from the groups.

    0 when right; 1 for a confusion within a group; 1 + (levels up) for a false alarm;
    1 + 2 x (levels down) for a miss, so missing a person as sky (3 levels, with the
    recipe's groups) costs 7 and the opposite false alarm 4.
    """
    level = groups.group_of
    drop = level[:, None] - level[None, :]
    severity = np.where(drop > 0, 1.0 + 2.0 * drop, 1.0 + np.abs(drop))
    np.fill_diagonal(severity, 0.0)
    return severity


def check_severity(severity: np.ndarray) -> np.ndarray:
    """Validate a user-given severity matrix: (20, 20), finite, non-negative."""
    severity = np.asarray(severity, dtype=np.float64)
    if severity.shape != (NUM_CLASSES, NUM_CLASSES):
        raise ValueError(
            f"severity matrix must be {NUM_CLASSES}x{NUM_CLASSES}, got {severity.shape}"
        )
    if not np.isfinite(severity).all() or (severity < 0).any():
        raise ValueError("severity matrix must hold finite, non-negative costs")
    return severity


def expected_cost(cm: np.ndarray | torch.Tensor, severity: np.ndarray) -> float:
    """Mean severity per evaluated pixel: sum of cm[i, j] * severity[i, j] / pixels."""
    cm = _matrix(cm)[EVALUATED]
    severity = check_severity(severity)[EVALUATED]
    return float(_ratio((cm * severity).sum(), cm.sum()))


def safety_error_score(cm: np.ndarray | torch.Tensor, groups: ImportanceGroups) -> float:
    """Importance-weighted error rate in [0, 1].

    Each wrong pixel counts (level of its true class + 1) / G, so an error on the most
    important group counts 1 and one on the least important 1/G; divided by the number of
    evaluated pixels. Unlike :func:`expected_cost` it ignores what the wrong prediction was.
    """
    cm = _matrix(cm)
    weight = (groups.group_of[EVALUATED] + 1) / groups.num_groups
    errors = cm[EVALUATED].sum(axis=1) - np.diag(cm)[EVALUATED]
    return float(_ratio((weight * errors).sum(), cm[EVALUATED].sum()))


def _json_number(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _by_group(values: np.ndarray, groups: ImportanceGroups) -> dict[str, float | None]:
    return {name: _json_number(v) for name, v in zip(groups.names, values, strict=True)}


HEADLINE_SCORES = (
    "miou",
    "pixel_accuracy",
    "critical_miss_rate",
    "false_alarm_rate",
    "safety_error",
    "expected_cost",
)
"""The per-image scores shown in tables, written to CSV and cached in the review store."""


def image_scores_from_matrix(
    cm: np.ndarray | torch.Tensor,
    groups: ImportanceGroups = DEFAULT_GROUPS,
    severity: np.ndarray | None = None,
    annotated_classes: Collection[int] | None = None,
) -> dict:
    """JSON-ready scores of one image (NaN -> None) from its confusion matrix."""
    cm = _matrix(cm)
    severity = default_severity_matrix(groups) if severity is None else severity
    iou = per_class_iou(cm)
    iou[~_annotated_mask(annotated_classes)] = np.nan
    critical = groups.group_of[EVALUATED] == groups.most_important
    return {
        "miou": _json_number(_nanmean(iou)),
        "iou": [_json_number(v) for v in iou],
        "pixel_accuracy": _json_number(pixel_accuracy(cm)),
        "critical_miss_rate": _json_number(critical_miss_rate(cm, groups)),
        "false_alarm_rate": _json_number(false_alarm_rate(cm, groups)),
        "safety_error": _json_number(safety_error_score(cm, groups)),
        "expected_cost": _json_number(expected_cost(cm, severity)),
        "evaluated_pixels": int(cm[EVALUATED].sum()),
        "critical_pixels": int(cm[EVALUATED][critical].sum()),
    }


def image_scores(
    gt: LabelMap,
    pred: LabelMap,
    groups: ImportanceGroups = DEFAULT_GROUPS,
    severity: np.ndarray | None = None,
    annotated_classes: Collection[int] | None = None,
) -> dict:
    """Scores of one image: mIoU, per-class IoU, pixel accuracy, importance rates, cost.

    Keys: miou, iou (19 values), pixel_accuracy, critical_miss_rate, false_alarm_rate,
    safety_error, expected_cost, evaluated_pixels, critical_pixels; undefined values are None.
    """
    counts = confusion_matrix(gt, pred)
    return image_scores_from_matrix(counts, groups, severity, annotated_classes)


def disagreement_from_joint(joint: np.ndarray | torch.Tensor, groups: ImportanceGroups) -> dict:
    """Agreement of two models on critical pixels, from :func:`joint_confusion` counts."""
    if isinstance(joint, torch.Tensor):
        joint = joint.cpu().numpy()
    critical = np.flatnonzero(groups.group_of[EVALUATED] == groups.most_important)
    rows = joint[critical]
    right_a = rows[np.arange(critical.size), critical].sum(axis=1)
    right_b = rows[np.arange(critical.size), :, critical].sum(axis=1)
    both = joint[critical, critical, critical]
    both_right = int(both.sum())
    only_a = int(right_a.sum()) - both_right
    only_b = int(right_b.sum()) - both_right
    return {
        "both_right": both_right,
        "only_a": only_a,
        "only_b": only_b,
        "both_wrong": int(rows.sum()) - both_right - only_a - only_b,
    }


def disagreement(
    gt: LabelMap, pred_a: LabelMap, pred_b: LabelMap, groups: ImportanceGroups = DEFAULT_GROUPS
) -> dict:
    """Counts of critical pixels: both_right, only_a (right), only_b (right), both_wrong."""
    return disagreement_from_joint(joint_confusion(gt, pred_a, pred_b), groups)


def _label_arrays(**maps: LabelMap) -> list[np.ndarray]:
    arrays = {name: as_label_array(m, name.replace("_", " ")) for name, m in maps.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) > 1:
        listed = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise ValueError(f"label maps differ in shape: {listed}")
    return list(arrays.values())


_BY_WRONG = np.array(
    [DISAGREEMENT_MAP.value(key) for key in ("both_right", "only_a", "only_b", "both_wrong")],
    dtype=np.uint8,
)
"""Disagreement value by 2 * (A wrong) + (B wrong)."""


def disagreement_map(
    gt: LabelMap,
    pred_a: LabelMap,
    pred_b: LabelMap,
    groups: ImportanceGroups = DEFAULT_GROUPS,
    critical_only: bool = True,
) -> np.ndarray:
    """uint8 map for the GUI, codes in ``models.maps.DISAGREEMENT_MAP``; "ignored" where
    not judged: on ground-truth background, and on non-critical pixels unless
    ``critical_only`` is off."""
    gt, pred_a, pred_b = _label_arrays(ground_truth=gt, prediction_a=pred_a, prediction_b=pred_b)
    codes = _BY_WRONG[2 * (pred_a != gt).astype(np.uint8) + (pred_b != gt)]
    critical = groups.group_of == groups.most_important
    if not critical_only:
        critical[:] = True
    critical[BACKGROUND] = False
    critical = critical[gt]
    return np.where(critical, codes, np.uint8(DISAGREEMENT_MAP.value("ignored")))


def error_map(
    gt: LabelMap, pred: LabelMap, groups: ImportanceGroups = DEFAULT_GROUPS
) -> np.ndarray:
    """uint8 map for the GUI, codes in ``models.maps.ERROR_MAP``.

    A miss is a prediction of a less important group than the truth's, a false alarm of a
    more important one, another error one of the same group; ground-truth background is
    "ignored".
    """
    gt, pred = _label_arrays(ground_truth=gt, prediction=pred)
    code = ERROR_MAP.value
    level = groups.group_of
    drop = level[:, None] - level[None, :]
    table = np.select(
        [drop > 0, drop < 0], [code("miss"), code("false_alarm")], code("other_error")
    ).astype(np.uint8)
    np.fill_diagonal(table, code("correct"))
    table[BACKGROUND] = code("ignored")
    index = gt.astype(np.uint16) * NUM_CLASSES + pred
    return table.reshape(-1)[index]


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class ModelScores:
    """Every split-level score of one model, from its accumulated confusion matrix."""

    confusion: np.ndarray
    groups: ImportanceGroups
    severity: np.ndarray
    annotated: np.ndarray
    """(19,) bool: classes the dataset annotates; the others have no IoU."""
    iou: np.ndarray
    """(19,) per-class IoU, NaN where undefined or not annotated."""
    class_pixels: np.ndarray
    miou: float
    frequency_weighted_iou: float
    pixel_accuracy: float
    group_iou: np.ndarray
    group_confusion: np.ndarray
    critical_miss_rate: float
    miss_rate_per_group: np.ndarray
    false_alarm_rate: float
    false_alarm_rate_per_group: np.ndarray
    expected_cost: float
    safety_error_score: float

    @classmethod
    def compute(
        cls,
        cm: np.ndarray | torch.Tensor,
        groups: ImportanceGroups = DEFAULT_GROUPS,
        annotated_classes: Collection[int] | None = None,
        severity: np.ndarray | None = None,
    ) -> ModelScores:
        cm = _matrix(cm)
        severity = default_severity_matrix(groups) if severity is None else check_severity(severity)
        annotated = _annotated_mask(annotated_classes)
        iou = per_class_iou(cm)
        iou[~annotated] = np.nan
        return cls(
            confusion=_frozen(cm),
            groups=groups,
            severity=_frozen(severity),
            annotated=_frozen(annotated),
            iou=_frozen(iou),
            class_pixels=_frozen(cm[EVALUATED].sum(axis=1)),
            miou=mean_iou(cm, annotated_classes),
            frequency_weighted_iou=frequency_weighted_iou(cm, annotated_classes),
            pixel_accuracy=pixel_accuracy(cm),
            group_iou=_frozen(group_iou(cm, groups, annotated_classes)),
            group_confusion=_frozen(group_confusion(cm, groups)),
            critical_miss_rate=critical_miss_rate(cm, groups),
            miss_rate_per_group=_frozen(miss_rate_per_group(cm, groups)),
            false_alarm_rate=false_alarm_rate(cm, groups),
            false_alarm_rate_per_group=_frozen(false_alarm_rate_per_group(cm, groups)),
            expected_cost=expected_cost(cm, severity),
            safety_error_score=safety_error_score(cm, groups),
        )

    def to_dict(self) -> dict:
        """JSON-ready form; undefined scores are None, unannotated classes flagged."""
        return {
            "classes": [
                {
                    "train_id": train_id,
                    "name": CLASS_NAMES[train_id],
                    "annotated": bool(self.annotated[train_id]),
                    "iou": _json_number(self.iou[train_id]),
                    "pixels": int(self.class_pixels[train_id]),
                }
                for train_id in range(NUM_EVALUATED)
            ],
            "miou": _json_number(self.miou),
            "frequency_weighted_iou": _json_number(self.frequency_weighted_iou),
            "pixel_accuracy": _json_number(self.pixel_accuracy),
            "groups": self.groups.to_dict(),
            "group_iou": _by_group(self.group_iou, self.groups),
            "group_confusion": self.group_confusion.tolist(),
            "critical_miss_rate": _json_number(self.critical_miss_rate),
            "miss_rate_per_group": _by_group(self.miss_rate_per_group, self.groups),
            "false_alarm_rate": _json_number(self.false_alarm_rate),
            "false_alarm_rate_per_group": _by_group(self.false_alarm_rate_per_group, self.groups),
            "expected_cost": _json_number(self.expected_cost),
            "safety_error_score": _json_number(self.safety_error_score),
            "confusion": self.confusion.tolist(),
            "severity": self.severity.tolist(),
        }

    def report(self) -> str:
        """Plain-text summary: per-class IoU, the two mean IoUs, the importance scores."""

        def fmt(value: float) -> str:
            return "  n/a" if math.isnan(value) else f"{value:5.3f}"

        lines = [f"{'class':<15} {'IoU':>6}"]
        for train_id in range(NUM_EVALUATED):
            shown = fmt(self.iou[train_id]) if self.annotated[train_id] else "not annotated"
            lines.append(f"{CLASS_NAMES[train_id]:<15} {shown:>6}")
        lines += [
            f"{'mIoU (Cityscapes)':<32} {fmt(self.miou)}",
            f"{'frequency-weighted IoU (recipe)':<32} {fmt(self.frequency_weighted_iou)}",
            f"{'pixel accuracy':<32} {fmt(self.pixel_accuracy)}",
        ]
        for name, value in zip(self.groups.names, self.group_iou, strict=True):
            lines.append(f"{'IoU ' + name:<32} {fmt(value)}")
        lines += [
            f"{'critical-miss rate':<32} {fmt(self.critical_miss_rate)}",
            f"{'false-alarm rate':<32} {fmt(self.false_alarm_rate)}",
            f"{'expected cost':<32} {fmt(self.expected_cost)}",
            f"{'safety error score':<32} {fmt(self.safety_error_score)}",
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class ImageResult:
    """Per-image scores of every model, their disagreement and the per-instance recalls."""

    sample_id: str
    scores: dict[str, dict]
    """Model name -> :func:`image_scores` dict."""
    disagreement: dict | None
    """:func:`disagreement` counts when exactly two models are evaluated."""
    instances: tuple[InstanceScore, ...] = ()

    def to_dict(self) -> dict:
        return {
            "sample_id": self.sample_id,
            "scores": self.scores,
            "disagreement": self.disagreement,
            "instances": [instance.to_dict() for instance in self.instances],
        }


WORST_FIRST = {
    "safety_error": True,
    "critical_miss_rate": True,
    "false_alarm_rate": True,
    "expected_cost": True,
    "miou": False,
    "pixel_accuracy": False,
}
"""Image score -> whether a higher value is worse; the keys :meth:`SplitScores.worst` sorts by."""


@dataclass(frozen=True)
class SplitScores:
    """Results of a split: split-level scores per model and every image's scores."""

    models: dict[str, ModelScores]
    images: tuple[ImageResult, ...]

    def worst(self, model: str, key: str = "safety_error", n: int = 10) -> list[ImageResult]:
        """The ``n`` images where ``model`` does worst on ``key``; images without a value last."""
        if model not in self.models:
            raise ValueError(f"unknown model {model!r}; evaluated: {', '.join(self.models)}")
        if key not in WORST_FIRST:
            raise ValueError(f"cannot rank by {key!r}; choose one of {', '.join(WORST_FIRST)}")
        sign = -1.0 if WORST_FIRST[key] else 1.0
        ranked = [image for image in self.images if image.scores[model][key] is not None]
        ranked.sort(key=lambda image: sign * image.scores[model][key])
        return ranked[:n]

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
        return "\n\n".join(
            f"== {name} ==\n{scores.report()}" for name, scores in self.models.items()
        )


@dataclass
class SplitEvaluator:
    """Accumulates one or two models over a split, image by image, on the models' device.

    With two models each image costs one joint count (both matrices and the critical-pixel
    disagreement from a single pass); per-image scores come from the image's own matrix.
    """

    model_names: Sequence[str]
    groups: ImportanceGroups = DEFAULT_GROUPS
    severity: np.ndarray | None = None
    annotated_classes: Collection[int] | None = None
    device: torch.device | str = "cpu"
    min_recall: float = DEFAULT_MIN_RECALL
    _matrices: dict[str, ConfusionMatrix] = field(init=False, repr=False)
    _images: list[ImageResult] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.model_names or len(set(self.model_names)) != len(self.model_names):
            raise ValueError(f"need one or more distinct model names, got {list(self.model_names)}")
        self.severity = (
            default_severity_matrix(self.groups)
            if self.severity is None
            else check_severity(self.severity)
        )
        self._matrices = {name: ConfusionMatrix(device=self.device) for name in self.model_names}
        self._images = []

    def add(
        self,
        sample_id: str,
        gt: LabelMap,
        preds: Mapping[str, LabelMap],
        instance_ids: np.ndarray | None = None,
    ) -> ImageResult:
        """Add one image: ground truth, each model's prediction, optional instance map."""
        if set(preds) != set(self.model_names):
            raise ValueError(
                f"{sample_id}: predictions given for {sorted(preds)}, "
                f"expected {sorted(self.model_names)}"
            )
        truth = f"{sample_id}: ground truth"
        named = {name: f"{sample_id}: prediction of {name}" for name in self.model_names}
        pair = None
        if len(self.model_names) == 2:
            name_a, name_b = self.model_names
            joint = joint_confusion(
                gt,
                preds[name_a],
                preds[name_b],
                device=self.device,
                names=(truth, named[name_a], named[name_b]),
            )
            counts = {name_a: joint.sum(dim=2), name_b: joint.sum(dim=1)}
            pair = disagreement_from_joint(joint, self.groups)
        else:
            counts = {
                name: confusion_matrix(
                    gt, preds[name], device=self.device, names=(truth, named[name])
                )
                for name in self.model_names
            }
        for name, matrix in counts.items():
            self._matrices[name].add(matrix)
        result = ImageResult(
            sample_id=sample_id,
            scores={
                name: image_scores_from_matrix(
                    matrix, self.groups, self.severity, self.annotated_classes
                )
                for name, matrix in counts.items()
            },
            disagreement=pair,
            instances=()
            if instance_ids is None
            else tuple(instance_scores(instance_ids, preds, self.min_recall)),
        )
        self._images.append(result)
        return result

    def result(self) -> SplitScores:
        return SplitScores(
            models={
                name: ModelScores.compute(
                    matrix.matrix, self.groups, self.annotated_classes, self.severity
                )
                for name, matrix in self._matrices.items()
            },
            images=tuple(self._images),
        )
