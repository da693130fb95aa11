"""The inference engine the GUI, the evaluator and the reports share.

It loads each checkpoint once, feeds every model with that checkpoint's own
preprocessing, runs batches on the chosen device and returns label maps and per-pixel
probabilities either at the ground truth's resolution (logits upsampled bilinearly) or at
the model's input resolution (the recipe's way of scoring). A byte-bounded LRU cache keyed
by (checkpoint hash, image id, resolution) makes a revisited image free. All public
methods are safe to call from several GUI sessions (threads) at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from models.checkpoints import LoadedCheckpoint, load_checkpoint
from models.device import autocast, memory_format, select_device

Resolution = Literal["label", "input"]


@dataclass(frozen=True)
class Prediction:
    """A model's answer for one image."""

    labels: np.ndarray
    """trainIds (H, W) uint8."""
    probabilities: np.ndarray
    """Softmax (classes, H, W) float16: enough precision for display and ranking."""

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class per pixel (H, W) float32."""
        return self.probabilities.max(axis=0).astype(np.float32)

    @property
    def nbytes(self) -> int:
        return self.labels.nbytes + self.probabilities.nbytes


@dataclass(frozen=True)
class LoadedModel:
    """A checkpoint ready to run: its network on the engine's device and its metadata."""

    path: Path
    checkpoint: LoadedCheckpoint
    network: torch.nn.Module
    lock: threading.Lock

    @property
    def hash(self) -> str:
        return self.checkpoint.file_hash

    @property
    def name(self) -> str:
        return self.path.stem


class InferenceEngine:
    """Loads checkpoints once and predicts with a shared, bounded cache."""

    def __init__(
        self,
        device: str = "auto",
        cache_bytes: int = 1 << 30,
        channels_last: bool | None = None,
    ) -> None:
        self.device = select_device(device)
        default_channels_last = memory_format(self.device) == torch.channels_last
        self.channels_last = default_channels_last if channels_last is None else channels_last
        self.cache_bytes = cache_bytes
        self._models: dict[Path, LoadedModel] = {}
        self._cache: OrderedDict[tuple[str, str, Resolution], Prediction] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()

    def load(self, path: str | Path) -> LoadedModel:
        """The model of a checkpoint file, loaded on first use (CheckpointError if bad)."""
        path = Path(path).expanduser().resolve()
        with self._lock:
            model = self._models.get(path)
        if model is not None:
            return model
        checkpoint = load_checkpoint(path)
        network = checkpoint.model.to(self.device).eval()
        if self.channels_last:
            network = network.to(memory_format=torch.channels_last)
        model = LoadedModel(path, checkpoint, network, threading.Lock())
        with self._lock:
            return self._models.setdefault(path, model)

    def predict(
        self,
        model: LoadedModel,
        image: np.ndarray,
        image_id: str | None = None,
        resolution: Resolution = "label",
    ) -> Prediction:
        """Prediction for one uint8 RGB image; cached when ``image_id`` is given."""
        return self.predict_batch(model, [image], [image_id], resolution)[0]

    def predict_batch(
        self,
        model: LoadedModel,
        images: Sequence[np.ndarray],
        image_ids: Sequence[str | None] | None = None,
        resolution: Resolution = "label",
    ) -> list[Prediction]:
        """Predictions for a batch of uint8 RGB images of any sizes."""
        ids = list(image_ids) if image_ids is not None else [None] * len(images)
        if len(ids) != len(images):
            raise ValueError(f"{len(images)} images but {len(ids)} image ids")
        results: list[Prediction | None] = [self._cached(model, i, resolution) for i in ids]
        missing = [n for n, result in enumerate(results) if result is None]
        if missing:
            logits = self._forward(model, [images[n] for n in missing])
            for n, item_logits in zip(missing, logits, strict=True):
                target = images[n].shape[:2] if resolution == "label" else None
                results[n] = _to_prediction(item_logits, target)
                self._store(model, ids[n], resolution, results[n])
        return [r for r in results if r is not None]

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self._cached_bytes = 0

    def _forward(self, model: LoadedModel, images: Sequence[np.ndarray]) -> torch.Tensor:
        batch = model.checkpoint.preprocessing.image_to_tensor(images).to(self.device)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with model.lock, torch.inference_mode(), autocast(self.device):
            logits = model.network(batch)
        return logits.float().cpu()

    def _cached(self, model: LoadedModel, image_id: str | None, resolution: Resolution):
        if image_id is None:
            return None
        key = (model.hash, image_id, resolution)
        with self._lock:
            prediction = self._cache.get(key)
            if prediction is not None:
                self._cache.move_to_end(key)
            return prediction

    def _store(
        self,
        model: LoadedModel,
        image_id: str | None,
        resolution: Resolution,
        prediction: Prediction,
    ) -> None:
        if image_id is None or prediction.nbytes > self.cache_bytes:
            return
        key = (model.hash, image_id, resolution)
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = prediction
            self._cached_bytes += prediction.nbytes
            while self._cached_bytes > self.cache_bytes:
                _, evicted = self._cache.popitem(last=False)
                self._cached_bytes -= evicted.nbytes


def _to_prediction(logits: torch.Tensor, size: tuple[int, int] | None) -> Prediction:
    """Softmax and argmax of one image's logits, upsampled bilinearly to ``size`` first."""
    if size is not None and tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]
    probabilities = torch.softmax(logits, dim=0)
    labels = probabilities.argmax(dim=0).to(torch.uint8)
    return Prediction(labels.numpy(), probabilities.to(torch.float16).numpy())
