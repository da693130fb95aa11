"""Evaluation metrics of segmentation models: plain functions of confusion matrices.

Everything here is computed from 20x20 confusion matrices (rows = ground truth, columns =
prediction, trainIds 0..19 with 19 = background), counted by ``models.confusion``. Every
function also takes a stack of them (..., 20, 20) and then gives one value per matrix, so
that a bootstrap scores a thousand resampled splits in one call (``models.comparison``). An
undefined value is NaN here; the table of scores (``models.scores``) turns it into None,
and ``models.scoring`` scores images and splits with these functions.

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

from collections.abc import Collection

import numpy as np
import torch

from models.confusion import LabelMap, as_label_array, joint_confusion
from models.labels import (
    BACKGROUND,
    DEFAULT_GROUPS,
    NUM_CLASSES,
    NUM_EVALUATED,
    ImportanceGroups,
)
from models.maps import DISAGREEMENT_MAP, ERROR_MAP

EVALUATED = slice(0, NUM_EVALUATED)
"""Rows/columns of the 19 evaluated classes in a 20x20 matrix."""


MetricValue = float | np.ndarray
"""A metric's value: a float for one matrix, an array of one value per matrix for a stack."""


def as_matrix(cm: np.ndarray | torch.Tensor) -> np.ndarray:
    """A 20x20 count matrix, or a stack of them (..., 20, 20), as int64 numpy (any device)."""
    if isinstance(cm, torch.Tensor):
        cm = cm.cpu().numpy()
    cm = np.asarray(cm)
    if cm.shape[-2:] != (NUM_CLASSES, NUM_CLASSES):
        raise ValueError(f"expected a {NUM_CLASSES}x{NUM_CLASSES} confusion matrix, got {cm.shape}")
    return cm.astype(np.int64, copy=False)


def _ratio(numerator: np.ndarray | int, denominator: np.ndarray | int) -> np.ndarray:
    """Element-wise numerator / denominator, NaN where the denominator is 0 (no warning)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _value(values: np.ndarray) -> MetricValue:
    """A float for one matrix's value, the array itself for a stack's."""
    return float(values) if values.ndim == 0 else values


def annotated_mask(annotated_classes: Collection[int] | None) -> np.ndarray:
    """Which of the 19 evaluated classes the dataset annotates (all when not given)."""
    if annotated_classes is None:
        return np.ones(NUM_EVALUATED, dtype=bool)
    return np.isin(np.arange(NUM_EVALUATED), list(annotated_classes))


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the values that are defined, NaN where none is."""
    defined = ~np.isnan(values)
    return _ratio(np.where(defined, values, 0.0).sum(axis=-1), defined.sum(axis=-1))


def _diagonal(cm: np.ndarray) -> np.ndarray:
    return np.diagonal(cm, axis1=-2, axis2=-1)


def per_class_iou(cm: np.ndarray | torch.Tensor) -> np.ndarray:
    """IoU of the 19 evaluated classes (float64, NaN for a class with no TP, FP nor FN)."""
    cm = as_matrix(cm)
    tp = _diagonal(cm)[..., EVALUATED]
    fn = cm[..., EVALUATED, :].sum(axis=-1) - tp
    fp = cm[..., EVALUATED, EVALUATED].sum(axis=-2) - tp
    return _ratio(tp, tp + fp + fn)


def mean_iou(
    cm: np.ndarray | torch.Tensor, annotated_classes: Collection[int] | None = None
) -> MetricValue:
    """Unweighted mean of the defined per-class IoUs: the official Cityscapes mIoU.

    Classes the dataset does not annotate (``annotated_classes``) are left out.
    """
    iou = per_class_iou(cm)
    return _value(_nanmean(iou[..., annotated_mask(annotated_classes)]))


def frequency_weighted_iou(
    cm: np.ndarray | torch.Tensor, annotated_classes: Collection[int] | None = None
) -> MetricValue:
    """Per-class IoU weighted by each class's ground-truth pixel count, over the whole matrix.

    The recipe's "mean IoU" weights each class's IoU by its pixel count *within a training
    batch* (16 images at 96x96) and averages those batch values over the batches. This is
    the same formula applied once to the whole split at the resolution evaluated, so it
    equals the recipe's number for a split evaluated as one batch and is close to it
    otherwise. It is not the Cityscapes mIoU (see :func:`mean_iou`).
    """
    cm = as_matrix(cm)
    iou = np.nan_to_num(per_class_iou(cm))
    pixels = cm[..., EVALUATED, :].sum(axis=-1) * annotated_mask(annotated_classes)
    return _value(_ratio((pixels * iou).sum(axis=-1), pixels.sum(axis=-1)))


def pixel_accuracy(cm: np.ndarray | torch.Tensor) -> MetricValue:
    """Share of evaluated ground-truth pixels predicted as their class."""
    cm = as_matrix(cm)
    correct = _diagonal(cm)[..., EVALUATED].sum(axis=-1)
    return _value(_ratio(correct, cm[..., EVALUATED, :].sum(axis=(-2, -1))))


def _membership(groups: ImportanceGroups) -> np.ndarray:
    """One-hot (20, G) int64: class -> group."""
    return np.eye(groups.num_groups, dtype=np.int64)[groups.group_of]


def group_confusion(cm: np.ndarray | torch.Tensor, groups: ImportanceGroups) -> np.ndarray:
    """(G, G) int64 counts: rows = true group, columns = predicted group.

    Ground-truth background is left out; predicted background counts in its group.
    """
    cm = as_matrix(cm)
    members = _membership(groups)
    return members[EVALUATED].T @ cm[..., EVALUATED, :] @ members


def group_iou(
    cm: np.ndarray | torch.Tensor,
    groups: ImportanceGroups,
    annotated_classes: Collection[int] | None = None,
) -> np.ndarray:
    """Mean IoU of each group's evaluated classes (..., G), NaN for a group with none defined."""
    iou = per_class_iou(cm)
    iou[..., ~annotated_mask(annotated_classes)] = np.nan
    group_of = groups.group_of[EVALUATED]
    means = [_nanmean(iou[..., group_of == g]) for g in range(groups.num_groups)]
    return np.stack(means, axis=-1)


def miss_rate_per_group(cm: np.ndarray | torch.Tensor, groups: ImportanceGroups) -> np.ndarray:
    """(..., G): share of each group's ground-truth pixels predicted as a lower group.

    NaN for group 0 (nothing is lower) and for a group without ground-truth pixels.
    """
    gc = group_confusion(cm, groups)
    rates = _ratio(np.tril(gc, -1).sum(axis=-1), gc.sum(axis=-1))
    rates[..., 0] = np.nan
    return rates


def false_alarm_rate_per_group(
    cm: np.ndarray | torch.Tensor, groups: ImportanceGroups
) -> np.ndarray:
    """(..., G): share of the ground-truth pixels of all lower groups predicted as group k.

    NaN for group 0 (nothing is lower) and where the lower groups have no pixels.
    """
    gc = group_confusion(cm, groups)
    truth = gc.sum(axis=-1)
    below = np.cumsum(truth, axis=-1) - truth
    rates = _ratio(np.triu(gc, 1).sum(axis=-2), below)
    rates[..., 0] = np.nan
    return rates


def critical_miss_rate(cm: np.ndarray | torch.Tensor, groups: ImportanceGroups) -> MetricValue:
    """Share of most-important ground-truth pixels predicted as any less important group."""
    return _value(miss_rate_per_group(cm, groups)[..., groups.most_important])


def false_alarm_rate(cm: np.ndarray | torch.Tensor, groups: ImportanceGroups) -> MetricValue:
    """Share of less-important ground-truth pixels predicted as the most important group."""
    return _value(false_alarm_rate_per_group(cm, groups)[..., groups.most_important])


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


def expected_cost(cm: np.ndarray | torch.Tensor, severity: np.ndarray) -> MetricValue:
    """Mean severity per evaluated pixel: sum of cm[i, j] * severity[i, j] / pixels."""
    cm = as_matrix(cm)[..., EVALUATED, :]
    severity = check_severity(severity)[EVALUATED]
    return _value(_ratio((cm * severity).sum(axis=(-2, -1)), cm.sum(axis=(-2, -1))))


def safety_error_score(cm: np.ndarray | torch.Tensor, groups: ImportanceGroups) -> MetricValue:
    """Importance-weighted error rate in [0, 1].

    Each wrong pixel counts (level of its true class + 1) / G, so an error on the most
    important group counts 1 and one on the least important 1/G; divided by the number of
    evaluated pixels. Unlike :func:`expected_cost` it ignores what the wrong prediction was.
    """
    cm = as_matrix(cm)
    weight = (groups.group_of[EVALUATED] + 1) / groups.num_groups
    errors = cm[..., EVALUATED, :].sum(axis=-1) - _diagonal(cm)[..., EVALUATED]
    return _value(_ratio((weight * errors).sum(axis=-1), cm[..., EVALUATED, :].sum(axis=(-2, -1))))


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
