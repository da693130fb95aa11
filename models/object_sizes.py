"""Objects by size: how many persons, cars ... of each COCO size each model missed, and
whether B misses fewer than A beyond noise.

The counts come from the per-instance scores of the split's images (an object is missed
below the minimum recall, see :mod:`models.instances`); a miss rate is pooled over the split
(objects missed / objects of that class and size). The B - A difference of each miss rate
gets a 95% interval from the paired bootstrap over images of :mod:`models.comparison`, with
the same draws for the same seed, so "small persons missed: A 41%, B 28%" says whether the
split can tell the two apart. A split without instance maps (CamVid) is "not annotated",
which is not the same as having no objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.comparison import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Difference,
    percentile_interval,
    resample_counts,
)
from models.instances import SIZE_BINS
from models.labels import CLASS_NAMES, INSTANCE_CLASSES, train_id_of
from models.scores import format_value
from models.scoring import ImageResult

HEADLINE_CLASS = train_id_of("person")
"""The class whose misses by size the Dataset tab and the report state in words: a missed
small person is the error a safety reviewer asks about first."""
OBJECT_HEADERS = ["objects", "count", "missed A", "missed B", "B - A", "95% interval", "verdict"]
SIZE_NAMES = tuple(size.name for size in SIZE_BINS)
CELLS = tuple((train_id, size) for train_id in INSTANCE_CLASSES for size in SIZE_NAMES)
"""Every (trainId, size name) counted, class by class, smallest size first."""
_CELL_INDEX = {cell: index for index, cell in enumerate(CELLS)}


def plural(class_name: str) -> str:
    """ "persons", "buses": how a count of a class is read."""
    return f"{class_name}es" if class_name.endswith("s") else f"{class_name}s"


@dataclass(frozen=True)
class SizeCell:
    """The objects of one class and size on the split, and how many each model missed."""

    train_id: int
    size: str
    objects: int
    missed: Mapping[str, int]

    @property
    def label(self) -> str:
        return f"{self.size} {plural(CLASS_NAMES[self.train_id])}"

    @property
    def key(self) -> str:
        return f"miss_rate/{CLASS_NAMES[self.train_id]}/{self.size}"

    def miss_rate(self, model: str) -> float | None:
        return self.missed[model] / self.objects if self.objects else None

    def to_dict(self) -> dict:
        rates = {model: self.miss_rate(model) for model in self.missed}
        return {
            "class": CLASS_NAMES[self.train_id],
            "size": self.size,
            "objects": self.objects,
            "missed": dict(self.missed),
            "miss_rate": rates,
            "recall": {m: None if r is None else 1 - r for m, r in rates.items()},
        }


def object_counts(
    images: Sequence[ImageResult], models: Sequence[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(images, cells) int64 objects of each :data:`CELLS` entry per image, and the same
    shape of each model's misses."""
    objects = np.zeros((len(images), len(CELLS)), dtype=np.int64)
    missed = {model: np.zeros_like(objects) for model in models}
    for row, image in enumerate(images):
        for instance in image.instances:
            cell = _CELL_INDEX[(instance.train_id, instance.size)]
            objects[row, cell] += 1
            for model in models:
                missed[model][row, cell] += instance.missed[model]
    return objects, missed


def _rates(missed: np.ndarray, objects: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(objects > 0, missed / np.maximum(objects, 1), np.nan)


def miss_rate_differences(
    cells: Sequence[SizeCell],
    per_image: tuple[np.ndarray, np.ndarray, np.ndarray],
    models: tuple[str, str],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[Difference, ...]:
    """B - A of each cell's miss rate with its paired-bootstrap interval; ``per_image`` is
    (objects, misses of A, misses of B), each (images, cells) in the order of ``cells``."""
    objects, missed_a, missed_b = per_image
    counts = resample_counts(len(objects), resamples, seed).astype(np.float64)
    drawn_objects = counts @ objects
    spread = _rates(counts @ missed_b, drawn_objects) - _rates(counts @ missed_a, drawn_objects)
    differences = []
    for index, cell in enumerate(cells):
        a, b = (cell.miss_rate(model) for model in models)
        low, high = percentile_interval(spread[:, index])
        delta = None if a is None or b is None else b - a
        differences.append(
            Difference(cell.key, f"{cell.label} missed", False, True, a, b, delta, low, high)
        )
    return tuple(differences)


@dataclass(frozen=True)
class ObjectsBySize:
    """Objects and misses per class and size on a split, and B - A of the miss rates."""

    models: tuple[str, ...]
    annotated: bool
    """False when no image of the split came with an instance map."""
    cells: tuple[SizeCell, ...]
    """The class-and-size cells with at least one object, in :data:`CELLS` order."""
    differences: tuple[Difference, ...] | None
    """One per cell, for the first two models; None with one model."""

    def headline(self, train_id: int) -> str:
        """ "small persons missed: A 41%, B 28% of 120" for each size of one class."""
        if not self.annotated:
            return "Objects by size: not annotated (the split has no instance maps)."
        parts = []
        for cell in self.cells:
            if cell.train_id == train_id:
                rates = ", ".join(
                    f"{model} {format_value(cell.miss_rate(model), percent=True)}"
                    for model in self.models
                )
                parts.append(f"{cell.label} missed: {rates} of {cell.objects}")
        return " · ".join(parts) or f"No {plural(CLASS_NAMES[train_id])} in the split."

    def rows(self) -> list[list]:
        """The cells under :data:`OBJECT_HEADERS` (needs two models)."""
        if self.differences is None:
            raise ValueError("rows compare two models; this split has one")
        return [
            [
                cell.label,
                cell.objects,
                *(
                    f"{format_value(cell.miss_rate(m), percent=True)} ({cell.missed[m]})"
                    for m in self.models[:2]
                ),
                *difference.row()[3:],
            ]
            for cell, difference in zip(self.cells, self.differences, strict=True)
        ]

    def to_dict(self) -> dict:
        """The JSON ``objects_by_size`` object (documented in :mod:`models.evaluate`)."""
        return {
            "annotated": self.annotated,
            "bins": [{"name": s.name, "min_area": s.low, "max_area": s.high} for s in SIZE_BINS],
            "cells": [cell.to_dict() for cell in self.cells],
            "differences": None
            if self.differences is None
            else [difference.to_dict() for difference in self.differences],
        }


def objects_by_size(
    images: Sequence[ImageResult],
    models: Sequence[str],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> ObjectsBySize:
    """The split's objects by class and size for ``models`` (B - A for the first two)."""
    objects, missed = object_counts(images, models)
    present = np.flatnonzero(objects.sum(axis=0))
    cells = tuple(
        SizeCell(
            *CELLS[index],
            int(objects[:, index].sum()),
            {m: int(missed[m][:, index].sum()) for m in models},
        )
        for index in present
    )
    differences = None
    if len(models) >= 2:
        first, second = models[0], models[1]
        per_image = (objects[:, present], missed[first][:, present], missed[second][:, present])
        differences = miss_rate_differences(cells, per_image, (first, second), resamples, seed)
    annotated = any(image.instances_annotated for image in images)
    return ObjectsBySize(tuple(models), annotated, cells, differences)
