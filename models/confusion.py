"""Streaming confusion matrices, counted where the model's outputs are.

Each image costs one ``bincount`` over one combined index (``gt * 20 + pred``; for two
models ``(gt * 20 + a) * 20 + b``) held in 16 bits: no Python loop over pixels or classes,
no per-class pass, no float conversion. The two-model joint count gives both models'
matrices (its marginals) and their agreement on any set of ground-truth classes from the
same single pass over the pixels.

On a GPU the count runs in torch on the device. On the CPU it runs in numpy: numpy's
single-threaded SIMD loops keep their speed whatever else the machine is doing, whereas
torch's intra-op threads compete with inference (and with other users) for the same
cores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from models.labels import NUM_CLASSES

LabelMap = np.ndarray | torch.Tensor
"""A map of trainIds (0..19), any integer dtype, on any device; uint8 is fastest."""


def _check_integer(kind_ok: bool, dtype: object, name: str) -> None:
    if not kind_ok:
        raise ValueError(f"{name}: label map must hold integer trainIds, got dtype {dtype}")


def _range_error(low: int, high: int, name: str, num_classes: int) -> None:
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise ValueError(f"{name}: value {bad} is not a trainId 0..{num_classes - 1}")


def _is_integer_tensor(tensor: torch.Tensor) -> bool:
    return not (
        tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool
    )


def as_label_array(labels: LabelMap, name: str, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Check that ``labels`` holds trainIds 0..num_classes-1; return them as uint8 on the CPU.

    ``name`` says which map it is (e.g. "frankfurt_000000_000294: prediction of ial") so a
    bad value is reported with its origin instead of turning into a wrong count.
    """
    if isinstance(labels, torch.Tensor):
        _check_integer(_is_integer_tensor(labels), labels.dtype, name)
        labels = labels.detach().cpu().numpy()
    if not isinstance(labels, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array or torch tensor, got {type(labels)}")
    _check_integer(labels.dtype.kind in "ui", labels.dtype, name)
    if labels.size:
        low = int(labels.min()) if labels.dtype.kind == "i" else 0
        _range_error(low, int(labels.max()), name, num_classes)
    return labels.astype(np.uint8, copy=False)


def as_label_tensor(
    labels: LabelMap, name: str, device: torch.device | str, num_classes: int = NUM_CLASSES
) -> torch.Tensor:
    """Like :func:`as_label_array`, for a map that stays on (or moves to) ``device``."""
    if isinstance(labels, np.ndarray):
        return torch.from_numpy(as_label_array(labels, name, num_classes)).to(device)
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name}: expected a numpy array or torch tensor, got {type(labels)}")
    _check_integer(_is_integer_tensor(labels), labels.dtype, name)
    labels = labels.to(device)
    if labels.numel():
        low, high = (int(v) for v in torch.aminmax(labels))
        _range_error(low, high, name, num_classes)
    return labels.to(torch.uint8)


def _count(
    maps: Sequence[LabelMap], names: Sequence[str], num_classes: int, device: torch.device
) -> torch.Tensor:
    """Joint histogram (int64, C x ... x C on ``device``) of same-shaped maps, in one pass."""
    bins = num_classes ** len(maps)
    shape = (num_classes,) * len(maps)
    if device.type == "cpu":
        arrays = [as_label_array(m, n, num_classes) for m, n in zip(maps, names, strict=True)]
    else:
        arrays = [
            as_label_tensor(m, n, device, num_classes) for m, n in zip(maps, names, strict=True)
        ]
    shapes = [tuple(a.shape) for a in arrays]
    if len(set(shapes)) > 1:
        listed = ", ".join(f"{n} {s}" for n, s in zip(names, shapes, strict=True))
        raise ValueError(f"label maps differ in shape: {listed}")
    if device.type == "cpu":
        index = arrays[0].astype(np.uint16 if bins <= np.iinfo(np.uint16).max else np.int64)
        for other in arrays[1:]:
            index *= num_classes
            index += other
        return torch.from_numpy(np.bincount(index.reshape(-1), minlength=bins).reshape(shape))
    index = arrays[0].to(torch.int16 if bins <= torch.iinfo(torch.int16).max else torch.int64)
    for other in arrays[1:]:
        index.mul_(num_classes).add_(other)
    return torch.bincount(index.reshape(-1), minlength=bins).reshape(shape)


def _device_of(pred: LabelMap, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return pred.device if isinstance(pred, torch.Tensor) else torch.device("cpu")


def confusion_matrix(
    gt: LabelMap,
    pred: LabelMap,
    num_classes: int = NUM_CLASSES,
    device: torch.device | str | None = None,
    names: Sequence[str] = ("ground truth", "prediction"),
) -> torch.Tensor:
    """Confusion matrix (int64, rows = ground truth, columns = prediction) of an image or batch.

    Counted on ``device`` (default: the prediction's device when it is a tensor, else CPU).
    ``names`` label the two maps in error messages.
    """
    return _count([gt, pred], names, num_classes, _device_of(pred, device))


def joint_confusion(
    gt: LabelMap,
    pred_a: LabelMap,
    pred_b: LabelMap,
    num_classes: int = NUM_CLASSES,
    device: torch.device | str | None = None,
    names: Sequence[str] = ("ground truth", "prediction A", "prediction B"),
) -> torch.Tensor:
    """Joint counts ``[gt, pred_a, pred_b]`` (int64, C x C x C) of two models on one image.

    ``joint.sum(2)`` is model A's confusion matrix and ``joint.sum(1)`` model B's.
    """
    return _count([gt, pred_a, pred_b], names, num_classes, _device_of(pred_a, device))


class ConfusionMatrix:
    """A confusion matrix accumulated over a split, kept on the model's device.

    State (the counts) lives apart from the scores: call :meth:`update` per image or batch,
    then read :attr:`matrix` and hand it to the pure functions of ``models.metrics``.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.device = torch.device(device)
        self._counts = torch.zeros((num_classes, num_classes), dtype=torch.int64, device=device)

    def update(self, gt: LabelMap, pred: LabelMap) -> torch.Tensor:
        """Add one image (or a batch) and return its own matrix, for per-image scores."""
        counts = confusion_matrix(gt, pred, self.num_classes, self.device)
        self._counts += counts
        return counts

    def add(self, counts: torch.Tensor | np.ndarray) -> None:
        """Add counts computed elsewhere, e.g. a marginal of :func:`joint_confusion`."""
        counts = torch.as_tensor(counts, device=self.device)
        if tuple(counts.shape) != (self.num_classes, self.num_classes):
            raise ValueError(
                f"counts of shape {tuple(counts.shape)} cannot be added to a "
                f"{self.num_classes}x{self.num_classes} confusion matrix"
            )
        self._counts += counts.to(torch.int64)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another accumulator's counts (e.g. from a parallel worker); returns ``self``."""
        self.add(other._counts)
        return self

    def reset(self) -> None:
        self._counts.zero_()

    @property
    def matrix(self) -> np.ndarray:
        """The counts so far: int64 (C, C) on the CPU, rows = ground truth, cols = prediction."""
        return self._counts.cpu().numpy().copy()
