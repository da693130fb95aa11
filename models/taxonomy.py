"""What kind of error each wrong pixel is, and Boundary IoU: pure functions of label maps.

**Error taxonomy**, after Bernhard et al., "What's Outside the Intersection? Fine-Grained
Error Analysis for Semantic Segmentation Beyond IoU" (WACV 2024). Seen one class at a time,
a wrong pixel is a false negative of its true class and a false positive of its predicted
class. In each of these two views, with the class's true positives (right pixels of the
class) and true negatives (pixels that are the class in neither map), it is

* a **boundary** error when it lies within the band (``band`` x the image diagonal, at
  least 1 px) of an error of the same class and view that is itself within the band of both
  a true positive and a true negative, and its run of errors (the 8-connected errors of
  that class and view it belongs to) touches both: the outline is off by a little;
* else an **extent** error when its connected region of the class (the true class's region
  in the ground truth, the predicted class's in the prediction) holds a true positive: the
  region was found but is too small or too big;
* else a **segment** error: the whole region was missed, or one was hallucinated.

A wrong pixel is the graver of its two views (segment over extent over boundary), so a
person missed as road is a segment error although, for road, it only makes the road too
big. Distances are in the maximum norm (square windows), regions are 8-connected. (The
paper's code asks the touching of each connected piece of the errors within the band; asking
it of the whole run needs one labelling per view instead of two, and differs only where a
run has several such pieces.)

**Boundary IoU** (Cheng et al., "Boundary IoU", CVPR 2021), semantic form: per class, the
band of a mask is the mask less its erosion by d (``BOUNDARY_IOU_DILATION`` x the diagonal,
at least 1 px; the image border counts as outside the mask); the IoU of the ground truth's
and the prediction's bands. It is kept as intersection and union pixel counts, so a split's
value pools the counts of its images, as its IoU pools confusion matrices.

Ground-truth background is judged by neither (as in :mod:`models.metrics`) but is a class
like the others for the geometry. The counts of an image are one int64 vector laid out by
:data:`COUNT_KEYS` (then intersections and unions per class); every score function here
takes one vector or a stack (..., :data:`COUNT_LENGTH`), so a bootstrap scores a thousand
resampled splits in one call, as :mod:`models.metrics` does for confusion matrices.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import cv2
import numpy as np

from models.confusion import LabelMap
from models.labels import BACKGROUND, DEFAULT_GROUPS, NUM_EVALUATED, ImportanceGroups
from models.maps import TAXONOMY_MAP
from models.metrics import MetricValue, _label_arrays, _nanmean, _ratio, _value, annotated_mask

cv2.setNumThreads(1)
# OpenCV runs its calls in the calling thread: the taxonomy is run in threads by its callers
# (one per model, behind the network), and OpenCV's own pool, spinning between calls, took
# the cores those threads need; a lone call is faster without it too (bench_evaluate).
# The kinds of errors and the Boundary IoU counts are compiled loops over all classes at
# once (models.taxonomy_passes), imported at the first image: numba's import would slow
# every start of the app.

DEFAULT_BAND = 0.01
"""Width of the band of boundary errors as a share of the image diagonal (the paper's d)."""
BOUNDARY_IOU_DILATION = 0.02
"""Width of the bands Boundary IoU compares, as a share of the image diagonal."""

KINDS = ("boundary", "extent", "segment")
"""The kinds of error, least grave first; their codes in :data:`models.maps.TAXONOMY_MAP`."""
COUNT_KEYS = (
    "judged_pixels",
    "boundary_errors",
    "extent_errors",
    "segment_errors",
    "critical_misses",
    "critical_segment_misses",
)
"""Leading entries of a count vector: judged pixels (ground truth not background), wrong
pixels of each kind, critical misses (as :func:`models.metrics.critical_miss_rate` counts
them) and those of them that are segment errors."""
_INTERSECTION = len(COUNT_KEYS)
_UNION = _INTERSECTION + NUM_EVALUATED
COUNT_LENGTH = _UNION + NUM_EVALUATED
"""Length of a count vector: :data:`COUNT_KEYS`, then the Boundary IoU intersection and
union pixels of each evaluated class."""


def band_pixels(shape: tuple[int, ...], share: float) -> int:
    """A band's width in pixels: ``share`` of the diagonal of an image of ``shape``, rounded,
    at least 1."""
    return max(1, round(share * math.hypot(shape[0], shape[1])))


@dataclass(frozen=True, eq=False)
class ErrorTaxonomy:
    """One model's errors on one image by kind, with the counts the scores come from."""

    codes: np.ndarray
    """(H, W) uint8 map in the codes of :data:`models.maps.TAXONOMY_MAP`."""
    counts: np.ndarray
    """(COUNT_LENGTH,) int64, laid out as the module docstring says."""

    def to_dict(self) -> dict:
        return count_record(self.counts)


def count_record(counts: np.ndarray) -> dict:
    """A count vector JSON-ready: the counts of :data:`COUNT_KEYS` by name, and the
    per-class Boundary IoU intersections and unions (19 each)."""
    counts = _counts(counts)
    return {
        **dict(zip(COUNT_KEYS, counts[:_INTERSECTION].tolist(), strict=True)),
        "boundary_iou_intersection": counts[_INTERSECTION:_UNION].tolist(),
        "boundary_iou_union": counts[_UNION:].tolist(),
    }


def _square(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))


def _class_band(labels: np.ndarray, radius: int) -> np.ndarray:
    """0/255 uint8: pixels in their own class's Boundary IoU band, within ``radius`` of
    another class or of the image border (the mask less its erosion, for every class at
    once). That is within ``radius`` - 1 of an edge pixel, one with another class or the
    border among its 8 neighbours (the last pixel of p's class on the way to the other
    class is one): a small window on the labels, then one wide one on the edges."""
    one = _square(1)
    border = {"borderType": cv2.BORDER_CONSTANT, "borderValue": 255}
    dilated, eroded = cv2.dilate(labels, one, **border), cv2.erode(labels, one, **border)
    return cv2.dilate(cv2.compare(dilated, eroded, cv2.CMP_NE), _square(radius - 1))


def _boundary_iou_counts(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(2, 19): per evaluated class, intersection and union of the two maps' bands over
    the judged pixels."""
    from models.taxonomy_passes import band_counts

    radius = band_pixels(gt.shape, BOUNDARY_IOU_DILATION)
    return band_counts(gt, pred, _class_band(gt, radius), _class_band(pred, radius))


def error_taxonomy(
    gt: LabelMap,
    pred: LabelMap,
    groups: ImportanceGroups = DEFAULT_GROUPS,
    band: float = DEFAULT_BAND,
) -> ErrorTaxonomy:
    """The kind of every wrong pixel of ``pred`` against ``gt`` and the counts of the image
    (kinds, critical misses, Boundary IoU); ``band`` is a share of the image diagonal."""
    from models.taxonomy_passes import error_kinds

    gt, pred = (np.ascontiguousarray(m) for m in _label_arrays(ground_truth=gt, prediction=pred))
    where, kinds = error_kinds(gt, pred, band_pixels(gt.shape, band))
    wrong_gt, wrong_pred = gt.reshape(-1)[where], pred.reshape(-1)[where]
    judged = gt != BACKGROUND
    wrong_judged = wrong_gt != BACKGROUND
    level = groups.group_of
    critical = wrong_judged & (level[wrong_gt] == groups.most_important)
    critical &= level[wrong_pred] < level[wrong_gt]
    counts = np.zeros(COUNT_LENGTH, dtype=np.int64)
    counts[0] = np.count_nonzero(judged)
    counts[1:4] = np.bincount(kinds[wrong_judged], minlength=4)[1:]
    counts[4] = np.count_nonzero(critical)
    counts[5] = np.count_nonzero(critical & (kinds == 3))
    counts[_INTERSECTION:] = _boundary_iou_counts(gt, pred).reshape(-1)
    code = TAXONOMY_MAP.value
    table = np.array([code(k) for k in ("correct", *KINDS)], dtype=np.uint8)
    codes = np.where(judged, table[0], np.uint8(code("ignored")))
    codes.reshape(-1)[where[wrong_judged]] = table[kinds[wrong_judged]]
    return ErrorTaxonomy(codes, counts)


def compile_taxonomy() -> None:
    """Compile the taxonomy's loops now, or load them from numba's cache: the first image
    scored would otherwise wait for that (compiling, the first time on a machine, takes
    many seconds; the README has the figure). The app calls it as it starts."""
    truth = np.zeros((2, 2), np.uint8)
    error_taxonomy(truth, truth + 1)


def _counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape[-1:] != (COUNT_LENGTH,):
        raise ValueError(f"expected taxonomy counts of length {COUNT_LENGTH}, got {counts.shape}")
    return counts


def error_rate(counts: np.ndarray, kind: str) -> MetricValue:
    """Share of judged pixels that are errors of ``kind``; the three rates add up to
    1 - pixel accuracy."""
    counts = _counts(counts)
    return _value(_ratio(counts[..., 1 + KINDS.index(kind)], counts[..., 0]))


def critical_segment_share(counts: np.ndarray) -> MetricValue:
    """Share of critical misses that are segment errors: how much of what the critical-miss
    rate counts is whole objects missed rather than outlines or extents wrong."""
    counts = _counts(counts)
    return _value(_ratio(counts[..., 5], counts[..., 4]))


def boundary_iou(counts: np.ndarray) -> np.ndarray:
    """(..., 19) Boundary IoU of each evaluated class, NaN where neither map has a band."""
    counts = _counts(counts)
    return _ratio(counts[..., _INTERSECTION:_UNION], counts[..., _UNION:])


def mean_boundary_iou(
    counts: np.ndarray, annotated_classes: Collection[int] | None = None
) -> MetricValue:
    """Mean of the defined per-class Boundary IoUs of the annotated classes."""
    return _value(_nanmean(boundary_iou(counts)[..., annotated_mask(annotated_classes)]))
