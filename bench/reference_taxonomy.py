"""The error taxonomy as it was before it went class by class: the benchmarks' reference.

A frozen copy of ``models.taxonomy.error_taxonomy`` as of commit c93487a (class bits
OR-ed over windows by doubling in numpy, runs labelled over colour layers of non-touching
classes), kept here only, so ``bench_evaluate`` measures the new path against the path
before it with the taxonomy's old cost, and both benchmarks check the product's
function gives the same codes and counts as this one. Not used by the product.

:func:`as_it_was` puts it in the scoring's place together with the OpenCV threading of
that time (OpenCV's own pool, one thread per CPU), which ``models.taxonomy`` now turns off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import cv2
import numpy as np

from models.confusion import LabelMap
from models.labels import BACKGROUND, DEFAULT_GROUPS, NUM_CLASSES, NUM_EVALUATED, ImportanceGroups
from models.maps import TAXONOMY_MAP
from models.metrics import _label_arrays
from models.taxonomy import (
    _INTERSECTION,
    BOUNDARY_IOU_DILATION,
    COUNT_LENGTH,
    DEFAULT_BAND,
    KINDS,
    ErrorTaxonomy,
    band_pixels,
    error_taxonomy,
)

_BIT = (np.uint32(1) << np.arange(NUM_CLASSES, dtype=np.uint32)).astype(np.uint32)
_ALL_BITS = np.uint32(_BIT.sum())


def _or_along(bits: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Bitwise OR over the window of ``radius`` along ``axis`` (nothing beyond the edges),
    by doubling spans: O(log radius) passes over the array instead of one per offset."""
    n, length = bits.shape[axis], 2 * radius + 1

    def along(start: int, stop: int) -> tuple[slice, ...]:
        return (slice(None),) * axis + (slice(start, stop),)

    shape = list(bits.shape)
    shape[axis] += 2 * radius
    acc = np.zeros(shape, dtype=bits.dtype)
    acc[along(radius, radius + n)] = bits
    span = 1
    while 2 * span <= length:
        acc[along(0, shape[axis] - span)] |= acc[along(span, shape[axis])]
        span *= 2
    return acc[along(0, n)] | acc[along(length - span, length - span + n)]


def _or_window(bits: np.ndarray, radius: int) -> np.ndarray:
    """Bitwise OR over the square window of ``radius`` around each pixel: for class bits,
    the classes within that distance."""
    return _or_along(_or_along(bits, radius, 0), radius, 1)


_OFFSETS = ((0, 1), (1, -1), (1, 0), (1, 1))
"""Right, lower-left, lower and lower-right neighbour: with their mirror images, all 8."""


@dataclass(frozen=True)
class _Errors:
    """The wrong pixels of an image as flat positions, with the class bits of the true
    positives and true negatives near each, and which of them are 8-neighbours."""

    shape: tuple[int, int]
    where: np.ndarray
    gt: np.ndarray
    pred: np.ndarray
    near_right: np.ndarray
    """Classes with a true positive within the band."""
    near_neither: np.ndarray
    """Classes with a true negative within the band."""
    touch_right: np.ndarray
    """Classes with a true positive among the 8 neighbours."""
    touch_neither: np.ndarray
    neighbours: tuple[tuple[np.ndarray, np.ndarray], ...]
    """Pairs (i, j) of indices into ``where`` of 8-neighbouring wrong pixels, by offset."""

    @classmethod
    def of(cls, gt: np.ndarray, pred: np.ndarray, band: int) -> _Errors:
        wrong = gt != pred
        where = np.flatnonzero(wrong)
        right = np.where(wrong, np.uint32(0), _BIT[gt])
        neither = _ALL_BITS & ~(_BIT[gt] | _BIT[pred])
        touch_right, touch_neither = _or_window(right, 1), _or_window(neither, 1)
        near_right, near_neither = (
            (touch, touch) if band == 1 else (_or_window(touch, band - 1), touch)
            for touch in (touch_right, touch_neither)
        )

        def at(bits: tuple[np.ndarray, np.ndarray], index: int) -> np.ndarray:
            return bits[index].reshape(-1)[where]

        return cls(
            gt.shape,
            where,
            gt.reshape(-1)[where],
            pred.reshape(-1)[where],
            at(near_right, 0),
            at(near_neither, 0),
            at(near_right, 1),
            at(near_neither, 1),
            _neighbour_pairs(where, gt.shape),
        )


def _neighbour_pairs(
    where: np.ndarray, shape: tuple[int, int]
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    height, width = shape
    index = np.full(height * width, -1, dtype=np.intp)
    index[where] = np.arange(where.size)
    rows, cols = np.divmod(where, width)
    pairs = []
    for dy, dx in _OFFSETS:
        inside = np.flatnonzero((rows + dy < height) & (cols + dx >= 0) & (cols + dx < width))
        other = index[where[inside] + dy * width + dx]
        both = other >= 0
        pairs.append((inside[both], other[both]))
    return tuple(pairs)


def _layers(classes: np.ndarray, errors: _Errors) -> np.ndarray:
    """(20,) layer of each class such that no two classes of one layer have neighbouring
    wrong pixels (a greedy colouring of the classes' touching graph, busiest first)."""
    touching = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=bool)
    for i, j in errors.neighbours:
        touching[classes[i], classes[j]] = True
    touching |= touching.T
    np.fill_diagonal(touching, False)
    layer = np.full(NUM_CLASSES, -1, dtype=np.intp)
    for train_id in np.argsort(-touching.sum(axis=1), kind="stable"):
        taken = set(layer[touching[train_id]].tolist())
        layer[train_id] = next(n for n in range(NUM_CLASSES) if n not in taken)
    return layer


def _runs(classes: np.ndarray, errors: _Errors) -> tuple[np.ndarray, int]:
    """Runs of errors: 8-connected components of the wrong pixels where neighbours join
    only when ``classes`` (one per wrong pixel) agree; the id of each wrong pixel and the
    number of ids (0 is none).

    Classes whose errors never touch share a layer of a tall image, layers parted by a row
    of zeros, so one ``connectedComponents`` call labels every class, over a few layers
    rather than one per class."""
    if errors.where.size == 0:
        return np.zeros(0, dtype=np.int32), 1
    height, width = errors.shape
    layer = _layers(classes, errors)[classes]
    stack = np.zeros((int(layer.max()) + 1) * (height + 1) * width, dtype=np.uint8)
    position = layer * ((height + 1) * width) + errors.where
    stack[position] = 1
    count, labels = cv2.connectedComponents(stack.reshape(-1, width), connectivity=8)
    return labels.reshape(-1)[position], count


def _any_per_component(ids: np.ndarray, count: int, hits: np.ndarray) -> np.ndarray:
    """(count,) bool: components with at least one pixel of ``hits``."""
    return np.bincount(ids[hits], minlength=count) > 0


def _view_kinds(classes: np.ndarray, errors: _Errors, band: int) -> np.ndarray:
    """Kind of each wrong pixel in one view (1 + its index in :data:`KINDS`): ``classes``
    are what each wrong pixel is an error of, the ground truth's class for false negatives,
    the prediction's for false positives.

    A run of errors of one class is a whole region of the class, missed or hallucinated,
    exactly when no true positive of the class touches it; so one labelling of the runs
    tells extent from segment, and which runs lie between the two sides of a boundary."""
    own = _BIT[classes]
    ids, count = _runs(classes, errors)

    def touched(bits: np.ndarray) -> np.ndarray:
        return _any_per_component(ids, count, (bits & own) != 0)

    found = touched(errors.touch_right)
    between = found & touched(errors.touch_neither)
    seeded = ((errors.near_right & own) != 0) & ((errors.near_neither & own) != 0)
    seeds = np.zeros(errors.shape[0] * errors.shape[1], dtype=np.uint32)
    seeds[errors.where[seeded]] = own[seeded]
    grown = (_or_window(seeds.reshape(errors.shape), band).reshape(-1)[errors.where] & own) != 0
    kind = np.full(classes.size, 3, dtype=np.uint8)
    kind[found[ids]] = 2
    kind[grown & between[ids]] = 1
    return kind


def _class_band(labels: np.ndarray, radius: int) -> np.ndarray:
    """Pixels in their own class's Boundary IoU band: within ``radius`` of another class or
    of the image border (the mask less its erosion, for every class at once)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    border = {"borderType": cv2.BORDER_CONSTANT, "borderValue": 255}
    return cv2.dilate(labels, kernel, **border) != cv2.erode(labels, kernel, **border)


def _boundary_iou_counts(gt: np.ndarray, pred: np.ndarray, judged: np.ndarray) -> np.ndarray:
    """(2, 19): per evaluated class, intersection and union of the two maps' bands."""
    radius = band_pixels(gt.shape, BOUNDARY_IOU_DILATION)
    in_gt = _class_band(gt, radius) & judged
    in_pred = _class_band(pred, radius) & judged
    both = np.bincount(gt[in_gt & in_pred & (gt == pred)], minlength=NUM_CLASSES)
    union = (
        np.bincount(gt[in_gt], minlength=NUM_CLASSES)
        + np.bincount(pred[in_pred], minlength=NUM_CLASSES)
        - both
    )
    return np.stack([both, union])[:, :NUM_EVALUATED]


def reference_error_taxonomy(
    gt: LabelMap,
    pred: LabelMap,
    groups: ImportanceGroups = DEFAULT_GROUPS,
    band: float = DEFAULT_BAND,
) -> ErrorTaxonomy:
    """The kind of every wrong pixel of ``pred`` against ``gt`` and the counts of the image
    (kinds, critical misses, Boundary IoU); ``band`` is a share of the image diagonal."""
    gt, pred = (np.ascontiguousarray(m) for m in _label_arrays(ground_truth=gt, prediction=pred))
    errors = _Errors.of(gt, pred, band_pixels(gt.shape, band))
    kinds = np.maximum(
        _view_kinds(errors.gt, errors, band_pixels(gt.shape, band)),
        _view_kinds(errors.pred, errors, band_pixels(gt.shape, band)),
    )
    judged = gt != BACKGROUND
    wrong_judged = errors.gt != BACKGROUND
    level = groups.group_of
    critical = wrong_judged & (level[errors.gt] == groups.most_important)
    critical &= level[errors.pred] < level[errors.gt]
    counts = np.zeros(COUNT_LENGTH, dtype=np.int64)
    counts[0] = np.count_nonzero(judged)
    counts[1:4] = np.bincount(kinds[wrong_judged], minlength=4)[1:]
    counts[4] = np.count_nonzero(critical)
    counts[5] = np.count_nonzero(critical & (kinds == 3))
    counts[_INTERSECTION:] = _boundary_iou_counts(gt, pred, judged).reshape(-1)
    code = TAXONOMY_MAP.value
    table = np.array([code(k) for k in ("correct", *KINDS)], dtype=np.uint8)
    codes = np.where(judged, table[0], np.uint8(code("ignored")))
    codes.reshape(-1)[errors.where[wrong_judged]] = table[kinds[wrong_judged]]
    return ErrorTaxonomy(codes, counts)


def compare_with_reference(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
) -> tuple[float, float, bool]:
    """Median milliseconds per (ground truth, prediction) pair of the product's
    ``error_taxonomy`` and of the reference, timed in turn on each pair, and whether
    their codes and counts are identical on every pair."""
    times: dict[str, list[float]] = {"new": [], "reference": []}
    identical = True
    for gt, pred in pairs:
        results = {}
        for name, function in (("new", error_taxonomy), ("reference", reference_error_taxonomy)):
            start = time.perf_counter()
            results[name] = function(gt, pred)
            times[name].append(time.perf_counter() - start)
        new, old = results["new"], results["reference"]
        identical &= np.array_equal(new.codes, old.codes) and np.array_equal(new.counts, old.counts)
    new_ms, old_ms = (1e3 * float(np.median(times[name])) for name in ("new", "reference"))
    return new_ms, old_ms, identical


@contextmanager
def as_it_was() -> Iterator[None]:
    """The scoring with the reference taxonomy and OpenCV's default threads, for the run of
    a reference path; the product's taxonomy and threading again afterwards."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(cv2.getNumberOfCPUs())
    try:
        with mock.patch("models.scoring.error_taxonomy", reference_error_taxonomy):
            yield
    finally:
        cv2.setNumThreads(threads)
