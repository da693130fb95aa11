"""Suspect ground truth: where two models confidently agree with each other against the label.

Two independently trained models that both see a car where the annotation says road, and
are both sure of it, are more often right than the annotator's brush; such places are worth
an annotator's look. A *suspect region* is a connected region of pixels where both models
predict the same evaluated class, the ground truth says another annotated class, and each
model's mean top-class probability over the region is at least a threshold. Regions rank
largest first (then surest); an image's score is its suspect pixels, the sum of its
regions' areas, so the queue puts the images with the most confidently contested labels
first.

Probabilities are asked for only at the pixels of the candidate regions (a
:data:`ConfidenceAt` callable, :meth:`models.inference.Prediction.confidence_at`), never
for the whole image.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import cv2
import numpy as np

from models.inference import Prediction
from models.labels import BACKGROUND, CLASS_NAMES, NUM_CLASSES, NUM_EVALUATED
from models.metrics import annotated_mask

DEFAULT_SUSPECT_CONFIDENCE = 0.9
"""Mean top-class probability each model needs over a region for it to be suspect."""
MIN_SUSPECT_PIXELS = 16
"""Smallest suspect region: a few pixels of agreement along an edge say nothing."""

ConfidenceAt = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(rows, columns) of pixels -> the model's top-class probability there."""


@dataclass(frozen=True)
class SuspectRegion:
    """One connected region where both models confidently contradict the ground truth."""

    predicted: int
    """trainId both models predict."""
    annotated: int
    """trainId the ground truth gives most of the region."""
    pixels: int
    confidence: float
    """The lower of the two models' mean top-class probabilities over the region."""
    box: tuple[int, int, int, int]
    """(x0, y0, x1, y1), x1 and y1 exclusive: a flag's region."""

    def to_dict(self) -> dict:
        return {
            "predicted": CLASS_NAMES[self.predicted],
            "annotated": CLASS_NAMES[self.annotated],
            "pixels": self.pixels,
            "confidence": self.confidence,
            "box": list(self.box),
        }


@dataclass(frozen=True)
class Suspects:
    """An image's suspect regions, largest first, and where they are."""

    regions: tuple[SuspectRegion, ...]
    shape: tuple[int, ...]
    """The image's (H, W)."""
    where: np.ndarray
    """Flat positions of the candidate regions' pixels."""
    rank: np.ndarray
    """Of each pixel at ``where``, its region's place in ``regions`` (1-based; 0: a
    candidate region that was not sure enough)."""

    @property
    def region_map(self) -> np.ndarray:
        """(H, W) int32: 0 outside, k inside the k-th region of ``regions``; drawn when
        asked, as a split's scoring needs only the regions."""
        region_map = np.zeros(self.shape, np.int32)
        region_map.reshape(-1)[self.where] = self.rank
        return region_map


def _candidate_regions(
    gt: np.ndarray,
    labels_a: np.ndarray,
    labels_b: np.ndarray,
    annotated: Collection[int] | None,
    min_pixels: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The connected regions (8-connected, one predicted class each) of at least
    ``min_pixels`` where both models agree on a class the dataset annotates and the
    labelled pixel carries another: their pixels' flat positions in raster order, the
    region (numbered 1..n) of each, and n. Each class is labelled in the bounding box of
    its candidate pixels only."""
    judged = np.zeros(256, dtype=bool)
    judged[:NUM_EVALUATED] = annotated_mask(annotated)
    agree = (labels_a == labels_b) & (labels_a != gt) & (gt != BACKGROUND) & judged[labels_a]
    where = np.flatnonzero(agree)
    classes = labels_a.reshape(-1)[where]
    order = np.argsort(classes, kind="stable")
    starts = np.searchsorted(classes[order], np.arange(NUM_CLASSES + 1))
    rows, cols = np.divmod(where, gt.shape[1])
    region_of = np.zeros(where.size, np.int32)
    count = 0
    for train_id in range(NUM_CLASSES):
        members = order[starts[train_id] : starts[train_id + 1]]
        if members.size < min_pixels:
            continue
        ys, xs = rows[members], cols[members]
        top, left = int(ys.min()), int(xs.min())
        mask = np.zeros((int(ys.max()) + 1 - top, int(xs.max()) + 1 - left), np.uint8)
        mask[ys - top, xs - left] = 1
        regions, labels = cv2.connectedComponents(mask, connectivity=8)
        ids = labels[ys - top, xs - left]
        kept = np.bincount(ids, minlength=regions) >= min_pixels
        kept[0] = False
        numbers = np.zeros(regions, np.int32)
        numbers[kept] = np.arange(count + 1, count + 1 + kept.sum())
        region_of[members] = numbers[ids]
        count += int(kept.sum())
    inside = region_of > 0
    return where[inside], region_of[inside], count


def find_suspects(
    gt: np.ndarray,
    labels: tuple[np.ndarray, np.ndarray],
    confidence: tuple[ConfidenceAt, ConfidenceAt],
    annotated: Collection[int] | None = None,
    threshold: float = DEFAULT_SUSPECT_CONFIDENCE,
    min_pixels: int = MIN_SUSPECT_PIXELS,
) -> Suspects:
    """The suspect regions of one image from the ground truth (trainIds), both models'
    label maps at its resolution and their top-class probabilities at given pixels. Only
    classes the dataset annotates (default: all) count as predicted: a model's terrain on
    a set without terrain says nothing about the label."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"suspect confidence threshold must be within 0..1, got {threshold}")
    labels_a, labels_b = (np.asarray(label) for label in labels)
    gt = np.asarray(gt)
    if not gt.shape == labels_a.shape == labels_b.shape:
        raise ValueError(
            f"ground truth {gt.shape} and predictions {labels_a.shape}, {labels_b.shape} differ"
        )
    where, ids, count = _candidate_regions(gt, labels_a, labels_b, annotated, min_pixels)
    ys, xs = np.divmod(where, gt.shape[1])
    sure = _least_mean_confidence(ids, (ys, xs), confidence, threshold)
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(1, count + 2))
    regions = [
        (k, _region(gt, labels_a, ys[pixels], xs[pixels], sure[k]))
        for k in range(1, count + 1)
        if sure[k] >= threshold
        for pixels in [order[bounds[k - 1] : bounds[k]]]
    ]
    regions.sort(key=lambda pair: (-pair[1].pixels, -pair[1].confidence, pair[1].box))
    rank = np.zeros(count + 1, np.int32)
    for position, (k, _) in enumerate(regions, start=1):
        rank[k] = position
    return Suspects(tuple(region for _, region in regions), gt.shape, where, rank[ids])


def _least_mean_confidence(
    ids: np.ndarray,
    where: tuple[np.ndarray, np.ndarray],
    confidence: tuple[ConfidenceAt, ConfidenceAt],
    threshold: float,
) -> np.ndarray:
    """Per region number (index 0 unused), the lower of the models' mean top-class
    probabilities; the second model is asked only about the regions the first is sure of,
    and a region neither is sure of is 0."""
    regions = int(ids.max(initial=0)) + 1
    pixels = np.maximum(np.bincount(ids, minlength=regions), 1)
    sure = np.ones(regions)
    ys, xs = where
    for model in confidence:
        keep = sure[ids] >= threshold
        ids, ys, xs = ids[keep], ys[keep], xs[keep]
        if ids.size == 0:
            return np.zeros(regions)
        mean = np.bincount(ids, weights=model(ys, xs), minlength=regions) / pixels
        sure = np.minimum(sure, mean)
    return sure


def suspects_of_pair(
    gt: np.ndarray,
    pair: tuple[Prediction, Prediction],
    annotated: Collection[int] | None = None,
    threshold: float = DEFAULT_SUSPECT_CONFIDENCE,
) -> Suspects:
    """:func:`find_suspects` of two models' predictions at the ground truth's resolution,
    each asked for its probabilities only at the candidate pixels."""
    first, second = pair
    confidence = (first.confidence_at, second.confidence_at)
    return find_suspects(gt, (first.labels, second.labels), confidence, annotated, threshold)


def _region(
    gt: np.ndarray, labels: np.ndarray, ys: np.ndarray, xs: np.ndarray, confidence: float
) -> SuspectRegion:
    annotated = np.bincount(gt[ys, xs], minlength=NUM_CLASSES).argmax()
    return SuspectRegion(
        predicted=int(labels[ys[0], xs[0]]),
        annotated=int(annotated),
        pixels=len(ys),
        confidence=float(confidence),
        box=(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
    )


def suspect_pixels(regions: tuple[SuspectRegion, ...]) -> int:
    """An image's score: the pixels of its suspect regions (0: none)."""
    return sum(region.pixels for region in regions)
