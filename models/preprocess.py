"""The one definition of how an image becomes a network input; training and inference share it.

A checkpoint records its :class:`Preprocessing` so a model is always fed the way it was
trained (the recipe's models expect BGR, /255 and a 96x96 nearest-neighbour resize).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

INTERPOLATIONS = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}
CHANNEL_ORDERS = ("RGB", "BGR")
MAX_INPUT_SIDE = 4096
"""Largest network input side a checkpoint may ask for: its metadata is not covered by the
weights hash, and a claimed 60000x60000 input would cost tens of GB at the first prediction."""


class PreprocessingError(ValueError):
    """A preprocessing description that cannot be applied."""


def resize_label(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A trainId map (H, W) at ``size`` (height, width), nearest-neighbour so no class is
    invented at boundaries; returned unchanged when already there."""
    height, width = size
    if label.shape[:2] == (height, width):
        return label
    return cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST)


@dataclass(frozen=True)
class Preprocessing:
    """Resize, channel order and scaling applied to uint8 RGB images before the network."""

    input_size: tuple[int, int]
    """(height, width) the network is fed."""
    channel_order: str = "BGR"
    scale: float = 1 / 255
    mean: tuple[float, float, float] | None = None
    """Per-channel mean subtracted after scaling, in ``channel_order``; None for none."""
    std: tuple[float, float, float] | None = None
    interpolation: str = "area"
    """Image resize: "nearest", "linear" or "area". Labels are always resized nearest."""

    def __post_init__(self) -> None:
        height, width = self.input_size
        if not (1 <= height <= MAX_INPUT_SIDE and 1 <= width <= MAX_INPUT_SIDE):
            raise PreprocessingError(
                f"input size must be 1..{MAX_INPUT_SIDE} per side, got {height}x{width}"
            )
        if self.channel_order not in CHANNEL_ORDERS:
            raise PreprocessingError(
                f"channel order must be one of {', '.join(CHANNEL_ORDERS)}, "
                f"got {self.channel_order!r}"
            )
        if self.interpolation not in INTERPOLATIONS:
            raise PreprocessingError(
                f"interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                f"got {self.interpolation!r}"
            )
        for name, value in (("mean", self.mean), ("std", self.std)):
            if value is not None and len(value) != 3:
                raise PreprocessingError(f"{name} needs 3 values, got {value!r}")
        if self.std is not None and any(s == 0 for s in self.std):
            raise PreprocessingError(f"std must not contain 0, got {self.std!r}")

    def resize_image(self, image: np.ndarray) -> np.ndarray:
        """uint8 RGB (H, W, 3) at the input size; returned unchanged when already there."""
        height, width = self.input_size
        if image.shape[:2] == (height, width):
            return image
        return cv2.resize(image, (width, height), interpolation=INTERPOLATIONS[self.interpolation])

    def resize_label(self, label: np.ndarray) -> np.ndarray:
        """A trainId map (H, W) at the input size."""
        return resize_label(label, self.input_size)

    def image_to_tensor(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Float tensor (N, 3, H, W) from uint8 RGB images of any size."""
        if len(images) == 0:
            raise PreprocessingError("no image to preprocess")
        resized = []
        for image in images:
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise PreprocessingError(
                    f"expected uint8 RGB images (H, W, 3), got {image.dtype} {image.shape}"
                )
            resized.append(self.resize_image(image))
        batch = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2)
        if self.channel_order == "BGR":
            batch = batch.flip(1)
        batch = batch.float() * self.scale
        if self.mean is not None:
            batch = batch - torch.tensor(self.mean).view(1, 3, 1, 1)
        if self.std is not None:
            batch = batch / torch.tensor(self.std).view(1, 3, 1, 1)
        return batch.contiguous()

    def describe(self) -> str:
        height, width = self.input_size
        text = f"{self.channel_order}, x{self.scale:.6g}, {height}x{width} {self.interpolation}"
        if self.mean is not None:
            text += f", mean {list(self.mean)}"
        if self.std is not None:
            text += f", std {list(self.std)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible form stored in checkpoints."""
        return {
            "input_size": list(self.input_size),
            "channel_order": self.channel_order,
            "scale": float(self.scale),
            "mean": None if self.mean is None else [float(v) for v in self.mean],
            "std": None if self.std is None else [float(v) for v in self.std],
            "interpolation": self.interpolation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        try:
            height, width = (int(v) for v in data["input_size"])
            mean, std = data.get("mean"), data.get("std")
            fields = {
                "input_size": (height, width),
                "channel_order": str(data["channel_order"]),
                "scale": float(data["scale"]),
                "mean": None if mean is None else tuple(float(v) for v in mean),
                "std": None if std is None else tuple(float(v) for v in std),
                "interpolation": str(data["interpolation"]),
            }
        except (KeyError, TypeError, ValueError):
            raise PreprocessingError(f"invalid preprocessing description {data!r}") from None
        return cls(**fields)


RECIPE_PREPROCESSING = Preprocessing(
    input_size=(96, 96), channel_order="BGR", scale=1 / 255, interpolation="nearest"
)
"""What the recipe's models expect: cv2.imread (BGR), /255, 96x96 nearest, no mean/std."""
