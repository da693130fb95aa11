"""Per-instance recall: which persons, cars, bicycles ... each model found, and which it missed.

Instance maps use the Cityscapes encoding: ``labelId * 1000 + k`` for the k-th object of an
instance class, a bare label id (< 1000) elsewhere, including crowd regions. A pixel of an
instance is recalled by a model when the model predicts the instance's trainId there.

Objects are binned by area as COCO bins them (:data:`SIZE_BINS`): small below 32x32 pixels,
large from 96x96, medium between, counted at the annotation's resolution, because a model
that misses small persons and one that misses large ones are not equally dangerous.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from models.confusion import LabelMap, as_label_array
from models.labels import CLASS_NAMES, INSTANCE_CLASSES, LABEL_ID_TO_TRAIN_ID

DEFAULT_MIN_RECALL = 0.5


@dataclass(frozen=True)
class SizeBin:
    """A range of object areas in pixels: ``low <= area < high`` (no ``high``: unbounded)."""

    name: str
    low: int
    high: int | None

    def holds(self, area: float) -> bool:
        return self.low <= area and (self.high is None or area < self.high)


SIZE_BINS: tuple[SizeBin, ...] = (
    SizeBin("small", 0, 32 * 32),
    SizeBin("medium", 32 * 32, 96 * 96),
    SizeBin("large", 96 * 96, None),
)
"""COCO's object sizes by area at the annotation's resolution, smallest first."""


def size_of(area: float) -> str:
    """The name of the size bin an object of ``area`` pixels falls in."""
    return next(size.name for size in SIZE_BINS if size.holds(area))


@dataclass(frozen=True)
class InstanceScore:
    """One ground-truth object and how much of it each model recovered."""

    instance_id: int
    """Cityscapes instance id (labelId * 1000 + k)."""
    train_id: int
    class_name: str
    pixels: int
    size: str
    """Name of its bin of :data:`SIZE_BINS`, by its area at the annotation's resolution."""
    box: tuple[int, int, int, int]
    """(x0, y0, x1, y1) in pixels; x1 and y1 are exclusive, so width = x1 - x0."""
    recall: dict[str, float]
    """Model name -> share of the instance's pixels predicted as its class."""
    missed: dict[str, bool]
    """Model name -> recall below the ``min_recall`` used."""

    def to_dict(self) -> dict:
        return {
            "instance_id": self.instance_id,
            "train_id": self.train_id,
            "class_name": self.class_name,
            "pixels": self.pixels,
            "size": self.size,
            "box": list(self.box),
            "recall": dict(self.recall),
            "missed": dict(self.missed),
        }


_COUNTED_IDS = 1 << 16
"""Instance ids below this are told apart by counting (Cityscapes' are below 34000)."""


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True, return_counts=True)``, by counting where
    the ids are small enough, as a count over the instance pixels is cheaper than a sort,
    with the inverse in a narrow type so that sorting by it is a radix sort."""
    if values.size == 0 or values.min() < 0 or values.max() >= _COUNTED_IDS:
        return np.unique(values, return_inverse=True, return_counts=True)
    counts = np.bincount(values)
    ids = np.flatnonzero(counts)
    index = np.zeros(counts.size, np.uint16)
    index[ids] = np.arange(ids.size)
    return ids, index[values], counts[ids]


def instance_scores(
    instance_ids: np.ndarray | torch.Tensor,
    preds: Mapping[str, LabelMap],
    min_recall: float = DEFAULT_MIN_RECALL,
    area_scale: float = 1.0,
) -> list[InstanceScore]:
    """Score every person, rider, car, truck, bus, train, motorcycle and bicycle instance.

    Instances of other classes (caravan, trailer) are not evaluated by Cityscapes and are
    left out. Only the instance pixels are touched, so the cost follows the object area.
    ``area_scale`` is the annotation's pixel count per pixel of ``instance_ids`` (above 1
    when the map was shrunk to the model's input), so sizes are binned as annotated.
    """
    if not 0.0 <= min_recall <= 1.0:
        raise ValueError(f"min_recall must be within 0..1, got {min_recall}")
    if not area_scale > 0:
        raise ValueError(f"area_scale must be positive, got {area_scale}")
    if isinstance(instance_ids, torch.Tensor):
        instance_ids = instance_ids.cpu().numpy()
    instance_ids = np.asarray(instance_ids)
    if instance_ids.ndim != 2 or instance_ids.dtype.kind not in "ui":
        raise ValueError(
            f"instance map must be a 2-D integer array, got {instance_ids.dtype} "
            f"of shape {instance_ids.shape}"
        )
    height, width = instance_ids.shape
    flat_preds = {}
    for name, pred in preds.items():
        array = as_label_array(pred, f"prediction of {name}")
        if array.shape != instance_ids.shape:
            raise ValueError(
                f"prediction of {name} has shape {array.shape}, the instance map {(height, width)}"
            )
        flat_preds[name] = array.reshape(-1)

    flat = instance_ids.reshape(-1)
    where = np.flatnonzero(flat >= 1000)
    ids, inverse, counts = _distinct(flat[where])
    train_ids = LABEL_ID_TO_TRAIN_ID[np.minimum(ids // 1000, 255)]
    ys, xs = np.divmod(where, width)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    if ids.size:
        x0 = np.minimum.reduceat(xs[order], starts)
        x1 = np.maximum.reduceat(xs[order], starts) + 1
        y0 = np.minimum.reduceat(ys[order], starts)
        y1 = np.maximum.reduceat(ys[order], starts) + 1
    pixel_class = train_ids[inverse]
    hits = {
        name: np.bincount(inverse[pred[where] == pixel_class], minlength=ids.size)
        for name, pred in flat_preds.items()
    }

    scores = []
    for k in np.flatnonzero(np.isin(train_ids, INSTANCE_CLASSES)):
        recall = {name: float(hit[k] / counts[k]) for name, hit in hits.items()}
        scores.append(
            InstanceScore(
                instance_id=int(ids[k]),
                train_id=int(train_ids[k]),
                class_name=CLASS_NAMES[train_ids[k]],
                pixels=int(counts[k]),
                size=size_of(counts[k] * area_scale),
                box=(int(x0[k]), int(y0[k]), int(x1[k]), int(y1[k])),
                recall=recall,
                missed={name: value < min_recall for name, value in recall.items()},
            )
        )
    return scores
