"""Is B better than A on this split, or is the gap noise? A paired bootstrap over images.

Each resample draws the split's images with replacement (the same draw for both models, so
the comparison is paired), pools each model's per-image confusion matrices and error-taxonomy
counts over the draw and recomputes both models' split scores from the pooled counts,
exactly as the split's own scores are computed. The 2.5th and 97.5th percentiles of B - A
over the resamples give a 95% interval; an interval that contains 0 means the split cannot
tell the models apart on that score. All resamples are scored in one call of each metric
function (they take stacks of matrices), so a thousand resamples of a large split stay
quick.

Compared: every split score of :data:`models.scores.SPLIT_SCORES`, the IoU of each
importance group and the IoU of each class the dataset annotates.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from models.labels import CLASS_NAMES, ImportanceGroups
from models.metrics import annotated_mask, group_iou, per_class_iou
from models.scores import SPLIT_SCORES, ConfusionStats, defined, format_value
from models.scoring import SplitScores

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CONFIDENCE = 0.95
VERDICTS = ("B better", "A better", "within noise", "undefined")


@dataclass(frozen=True)
class Compared:
    """One quantity compared: how it is named and read, and how it is computed from a stack
    of confusion statistics (one value per matrix)."""

    key: str
    label: str
    higher_is_better: bool
    percent: bool
    compute: Callable[[ConfusionStats], np.ndarray]


def compared_quantities(
    groups: ImportanceGroups, annotated: Collection[int] | None
) -> tuple[Compared, ...]:
    """The split scores of the table, then each group's IoU, then each annotated class's."""
    quantities = [
        Compared(s.key, s.label_of_split, s.higher_is_better, s.percent, s.compute)
        for s in SPLIT_SCORES
    ]
    for index, name in enumerate(groups.names):
        quantities.append(
            Compared(
                f"group_iou/{name}",
                f"IoU {name}",
                True,
                False,
                lambda s, g=index: group_iou(s.matrix, s.groups, s.annotated)[..., g],
            )
        )
    for train_id in np.flatnonzero(annotated_mask(annotated)):
        quantities.append(
            Compared(
                f"class_iou/{CLASS_NAMES[train_id]}",
                f"IoU {CLASS_NAMES[train_id]}",
                True,
                False,
                lambda s, c=int(train_id): per_class_iou(s.matrix)[..., c],
            )
        )
    return tuple(quantities)


@dataclass(frozen=True)
class Difference:
    """B - A on one quantity, with its bootstrap interval."""

    key: str
    label: str
    higher_is_better: bool
    percent: bool
    a: float | None
    b: float | None
    difference: float | None
    low: float | None
    high: float | None

    @property
    def verdict(self) -> str:
        """ "B better" or "A better" when the interval excludes 0, else "within noise"."""
        if self.low is None or self.high is None:
            return "undefined"
        if self.low <= 0 <= self.high:
            return "within noise"
        b_higher = self.low > 0
        return "B better" if b_higher == self.higher_is_better else "A better"

    def row(self) -> list[str]:
        """label, A, B, B - A, interval, verdict: as tables show it."""

        def text(value: float | None) -> str:
            return format_value(value, self.percent)

        interval = "n/a" if self.low is None else f"[{text(self.low)}, {text(self.high)}]"
        return [
            self.label,
            text(self.a),
            text(self.b),
            text(self.difference),
            interval,
            self.verdict,
        ]

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "label": self.label,
            "higher_is_better": self.higher_is_better,
            "a": self.a,
            "b": self.b,
            "difference": self.difference,
            "low": self.low,
            "high": self.high,
            "verdict": self.verdict,
        }


COMPARISON_HEADERS = ["score", "A", "B", "B - A", "95% interval", "verdict"]


@dataclass(frozen=True)
class Comparison:
    """Every quantity's B - A with its interval, and how the intervals were drawn."""

    model_a: str
    model_b: str
    images: int
    resamples: int
    seed: int
    differences: tuple[Difference, ...]

    def rows(self) -> list[list[str]]:
        return [difference.row() for difference in self.differences]

    @property
    def title(self) -> str:
        a, b = (
            letter if name == letter else f"{letter} ({name})"
            for letter, name in (("A", self.model_a), ("B", self.model_b))
        )
        return (
            f"{b} - {a} on {self.images} images; 95% intervals from {self.resamples} paired "
            f"bootstrap resamples (seed {self.seed}); within noise: the interval holds 0"
        )

    def text(self) -> str:
        """The table as plain text for the command line, one column per field."""
        table = [COMPARISON_HEADERS, *self.rows()]
        widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
        lines = [
            "  ".join(
                cell.ljust(width) if column == 0 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
            for row in table
        ]
        return "\n".join([self.title, *lines])

    def to_dict(self) -> dict:
        """The JSON ``comparison`` object (documented in :mod:`models.evaluate`)."""
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "images": self.images,
            "method": "paired bootstrap over images, percentile interval",
            "confidence": CONFIDENCE,
            "resamples": self.resamples,
            "seed": self.seed,
            "differences": [difference.to_dict() for difference in self.differences],
        }


def resample_counts(images: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, images) int64: how often each image is drawn in each resample. Row r is
    ``numpy.random.default_rng(seed).integers(0, images, (resamples, images))[r]`` counted."""
    draws = np.random.default_rng(seed).integers(0, images, (resamples, images))
    flat = draws + images * np.arange(resamples)[:, None]
    return np.bincount(flat.ravel(), minlength=resamples * images).reshape(resamples, images)


def pooled(matrices: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(resamples, 20, 20) int64: the per-image matrices (images, 20, 20) summed with the
    resample counts as weights (a float product is exact for counts below 2**53)."""
    flat = matrices.reshape(len(matrices), -1).astype(np.float64)
    return (
        np.rint(counts.astype(np.float64) @ flat).astype(np.int64).reshape(-1, *matrices.shape[1:])
    )


def percentile_interval(values: np.ndarray) -> tuple[float | None, float | None]:
    """The 95% percentile interval of bootstrap values (NaN: undefined in that resample)."""
    defined_values = values[~np.isnan(values)]
    if defined_values.size == 0:
        return None, None
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(defined_values, [tail, 100 - tail])
    return float(low), float(high)


def _whole_and_drawn(
    matrices: np.ndarray,
    taxonomy: np.ndarray | None,
    counts: np.ndarray,
    template: ConfusionStats,
) -> tuple[ConfusionStats, ConfusionStats]:
    """One model's per-image counts added up over the split, and over each resample."""

    def stats(matrix: np.ndarray, pooled_taxonomy: np.ndarray | None) -> ConfusionStats:
        return ConfusionStats(
            matrix, template.groups, template.severity, template.annotated, pooled_taxonomy
        )

    if taxonomy is None:
        return stats(matrices.sum(axis=0), None), stats(pooled(matrices, counts), None)
    return (
        stats(matrices.sum(axis=0), taxonomy.sum(axis=0)),
        stats(pooled(matrices, counts), pooled(taxonomy, counts)),
    )


def compare(
    matrices_a: np.ndarray,
    matrices_b: np.ndarray,
    template: ConfusionStats,
    names: Sequence[str] = ("A", "B"),
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    taxonomies: tuple[np.ndarray, np.ndarray] | None = None,
) -> Comparison:
    """B - A with 95% intervals from a paired bootstrap of the per-image matrices
    (images, 20, 20) of each model and, when given, their per-image taxonomy counts
    (images, COUNT_LENGTH), resampled with the same draws; ``template`` gives groups,
    severity and annotated classes (its matrix is ignored)."""
    if matrices_a.shape != matrices_b.shape or len(matrices_a) == 0:
        raise ValueError("need the same non-empty set of images for both models")
    counts = resample_counts(len(matrices_a), resamples, seed)
    taxonomy_a, taxonomy_b = (None, None) if taxonomies is None else taxonomies
    whole_a, drawn_a = _whole_and_drawn(matrices_a, taxonomy_a, counts, template)
    whole_b, drawn_b = _whole_and_drawn(matrices_b, taxonomy_b, counts, template)
    differences = []
    for quantity in compared_quantities(template.groups, template.annotated):
        a, b = defined(quantity.compute(whole_a)), defined(quantity.compute(whole_b))
        spread = np.asarray(quantity.compute(drawn_b)) - np.asarray(quantity.compute(drawn_a))
        low, high = percentile_interval(spread)
        difference = None if a is None or b is None else b - a
        differences.append(
            Difference(
                quantity.key,
                quantity.label,
                quantity.higher_is_better,
                quantity.percent,
                a,
                b,
                difference,
                low,
                high,
            )
        )
    return Comparison(names[0], names[1], len(matrices_a), resamples, seed, tuple(differences))


def compare_split(
    result: SplitScores, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> Comparison:
    """The comparison of the first two models of an evaluated split (B is the second)."""
    if len(result.models) < 2:
        raise ValueError("a comparison needs two models")
    name_a, name_b = list(result.models)[:2]
    scores = result.models[name_a]
    template = ConfusionStats(
        scores.confusion,
        scores.groups,
        scores.severity,
        [int(c) for c in np.flatnonzero(scores.annotated)],
    )
    matrices = [
        np.stack([image.scores[name].confusion for image in result.images])
        for name in (name_a, name_b)
    ]
    counted = all(
        image.scores[name].taxonomy is not None
        for image in result.images
        for name in (name_a, name_b)
    )
    taxonomies = (
        tuple(
            np.stack([image.scores[name].taxonomy for image in result.images])
            for name in (name_a, name_b)
        )
        if counted
        else None
    )
    return compare(*matrices, template, (name_a, name_b), resamples, seed, taxonomies)
