"""The table of scores: every score the app, the reports and the command line show.

Each entry says what a person reads (its label), which way is better, how it is written
(three decimals or a percentage), whether it exists per image, per split or both, and the
metric function that computes it from a confusion matrix (:mod:`models.metrics`) or from
the error-taxonomy counts (:mod:`models.taxonomy`). Tables,
JSON, CSV, the review store's cache and the worst-first orders all take their rows from
:data:`SCORES`, so adding a score is one entry here plus its metric function.

The metric functions return NaN where a score is undefined (no pixel to divide by); the
table is where that becomes ``None``: no value past :meth:`Score.value` is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Flag, auto

import numpy as np

from models.labels import ImportanceGroups
from models.metrics import (
    critical_miss_rate,
    expected_cost,
    false_alarm_rate,
    frequency_weighted_iou,
    mean_iou,
    pixel_accuracy,
    safety_error_score,
)
from models.taxonomy import critical_segment_share, error_rate, mean_boundary_iou


class Per(Flag):
    """Where a score exists: on one image, over a split (pooled counts), or both."""

    IMAGE = auto()
    SPLIT = auto()
    BOTH = IMAGE | SPLIT


@dataclass(frozen=True, eq=False)
class ConfusionStats:
    """What every score is computed from: one model's 20x20 counts on an image or a split."""

    matrix: np.ndarray
    groups: ImportanceGroups
    severity: np.ndarray
    annotated: Collection[int] | None
    """Classes the dataset annotates (None: all); the others have no IoU."""
    taxonomy: np.ndarray | None = None
    """The error-taxonomy counts of the same image or split (:mod:`models.taxonomy`), or
    a stack of them; None where the taxonomy was not counted (its scores are undefined)."""


def _of_taxonomy(
    function: Callable[[np.ndarray, ConfusionStats], float],
) -> Callable[[ConfusionStats], float]:
    """A score of the taxonomy counts as a table entry: ``function(counts, stats)``, and
    undefined (NaN) where the taxonomy was not counted."""

    def compute(stats: ConfusionStats) -> float:
        return math.nan if stats.taxonomy is None else function(stats.taxonomy, stats)

    return compute


def defined(value: float) -> float | None:
    """A metric function's result as a Python value: None where it is NaN (undefined)."""
    value = float(value)
    return None if math.isnan(value) else value


def format_value(value: float | None, percent: bool = False) -> str:
    """How a score is written everywhere: "n/a" when undefined, else 0.123 or 12.3%."""
    if value is None:
        return "n/a"
    return f"{value:.1%}" if percent else f"{value:.3f}"


@dataclass(frozen=True)
class Score:
    """One score of the table."""

    key: str
    """Its name in JSON, CSV and the review store."""
    label: str
    """As a person reads it; the split and image labels default to it."""
    higher_is_better: bool
    compute: Callable[[ConfusionStats], float]
    percent: bool = False
    per: Per = Per.BOTH
    split_label: str = ""
    """Label of the split value where one table may also show per-image values of it."""
    image_label: str = ""
    """Label of its value on one image, where that differs from the split value's."""

    def value(self, stats: ConfusionStats) -> float | None:
        return defined(self.compute(stats))

    def text(self, value: float | None) -> str:
        return format_value(value, self.percent)

    @property
    def label_of_split(self) -> str:
        return self.split_label or self.label

    @property
    def label_of_image(self) -> str:
        return self.image_label or self.label

    @property
    def label_of_mean(self) -> str:
        """Label of the mean of its per-image values over a split."""
        return f"mean image {self.label}"


# Each entry: key, label, higher_is_better, compute; then the options of :class:`Score`.
# fmt: off
SCORES: tuple[Score, ...] = (
    Score("miou", "mIoU", True, lambda s: mean_iou(s.matrix, s.annotated),
          split_label="mIoU (pooled, Cityscapes)", image_label="mIoU (this image)"),
    Score("frequency_weighted_iou", "frequency-weighted IoU (recipe)", True,
          lambda s: frequency_weighted_iou(s.matrix, s.annotated), per=Per.SPLIT),
    Score("pixel_accuracy", "pixel accuracy", True, lambda s: pixel_accuracy(s.matrix),
          percent=True),
    Score("critical_miss_rate", "critical-miss rate", False,
          lambda s: critical_miss_rate(s.matrix, s.groups), percent=True),
    Score("critical_segment_share", "segment share of critical misses", False,
          _of_taxonomy(lambda t, _: critical_segment_share(t)), percent=True),
    Score("false_alarm_rate", "false-alarm rate", False,
          lambda s: false_alarm_rate(s.matrix, s.groups), percent=True),
    Score("safety_error", "safety error", False, lambda s: safety_error_score(s.matrix, s.groups)),
    Score("expected_cost", "expected cost", False, lambda s: expected_cost(s.matrix, s.severity)),
    Score("boundary_iou", "mean Boundary IoU", True,
          _of_taxonomy(lambda t, s: mean_boundary_iou(t, s.annotated)),
          split_label="mean Boundary IoU (pooled)", image_label="mean Boundary IoU (this image)"),
    Score("boundary_error_rate", "boundary errors (share of pixels)", False,
          _of_taxonomy(lambda t, _: error_rate(t, "boundary")), percent=True),
    Score("extent_error_rate", "extent errors (share of pixels)", False,
          _of_taxonomy(lambda t, _: error_rate(t, "extent")), percent=True),
    Score("segment_error_rate", "segment errors (share of pixels)", False,
          _of_taxonomy(lambda t, _: error_rate(t, "segment")), percent=True),
)
# fmt: on
"""Every score, in the order tables show them."""

IMAGE_SCORES = tuple(s for s in SCORES if Per.IMAGE in s.per)
"""The per-image scores: shown per image, written to CSV and cached in the review store."""
SPLIT_SCORES = tuple(s for s in SCORES if Per.SPLIT in s.per)
IMAGE_KEYS = tuple(s.key for s in IMAGE_SCORES)
BY_KEY = {s.key: s for s in SCORES}


def values_of(scores: Collection[Score], stats: ConfusionStats) -> dict[str, float | None]:
    """Key -> value of each of ``scores`` on ``stats``."""
    return {s.key: s.value(stats) for s in scores}
