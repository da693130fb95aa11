"""The inference engine the GUI, the evaluator and the reports share.

It loads each checkpoint once, feeds every model with that checkpoint's own
preprocessing, runs batches on the chosen device and returns label maps and per-pixel
probabilities either at the ground truth's resolution (logits upsampled bilinearly) or at
the model's input resolution (the recipe's way of scoring). A byte-bounded LRU cache keyed
by (checkpoint hash, image id, resolution) makes a revisited image free. All public
methods are safe to call from several GUI sessions (threads) at once.

Execution is chosen per batch (:meth:`InferenceEngine.execution`). CUDA runs float16
autocast on channels_last tensors. On the CPU, :class:`~models.cpu_tuning.CpuTuner` measures
per (width, input size, batch size), at first use on this machine, whether BatchNorm folded
into the convolutions, channels_last tensors (oneDNN's NHWC kernels) or cache-sized chunks
of a large batch beat the plain pass, and remembers the answer on disk. No compilation
(``torch.compile`` builds C++ for every input shape at GUI start; ``torch.jit.trace`` fails
on max_unpool2d's output size, so neither freezing nor oneDNN Graph applies), no bfloat16
autocast (it changes too many labels; README) and PyTorch's default thread count, the
physical cores. On a loaded machine, start the process with ``OMP_WAIT_POLICY=PASSIVE``:
spinning OpenMP threads otherwise wait out other processes' time slices, which can make a
forward many times slower. ``SEGBENCH_FAST=0`` or ``InferenceEngine(fast=False)`` forces
the plain float32 NCHW eager pass, the recipe's way.

Probabilities are derived on demand from the model-resolution logits a :class:`Prediction`
keeps: the full-resolution softmax (classes x H x W) is the dearest step after the network
and the GUI and evaluator only need the label map.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from models.bounded_cache import BoundedCache
from models.checkpoints import LoadedCheckpoint, load_checkpoint
from models.cpu_tuning import CpuTuner, candidates, tuning_key
from models.device import memory_format, select_device
from models.execution import PLAIN, Execution
from models.segnet import ConvBlock
from models.upsampling import argmax_classes, reference_upsampled, upsampled_labels

Resolution = Literal["label", "input"]

FAST_ENV = "SEGBENCH_FAST"
"""Set to 0 to make every engine run the plain float32 NCHW eager pass."""


@dataclass(frozen=True, eq=False)
class Prediction:
    """A model's answer for one image."""

    labels: np.ndarray
    """trainIds (H, W) uint8."""
    logits: torch.Tensor
    """Network output (classes, h, w) float32 at the model's input resolution."""

    @cached_property
    def probabilities(self) -> np.ndarray:
        """Softmax (classes, H, W) float16 at the labels' resolution (logits upsampled
        bilinearly first): enough precision for display and ranking; computed on first use."""
        logits = self.logits
        if tuple(logits.shape[-2:]) != self.labels.shape:
            logits = reference_upsampled(logits, self.labels.shape)
        return torch.softmax(logits, dim=0).to(torch.float16).numpy()

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class per pixel (H, W) float32."""
        return self.probabilities.max(axis=0).astype(np.float32)

    def confidence_at(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """:attr:`confidence` at the given pixels of the labels' resolution, float32, from
        the logits sampled there as the upsampling samples them (bilinear, half-pixel
        centres, edges clamped): a few pixels' worth of softmax instead of the image's."""
        height, width = self.labels.shape
        points = np.stack([(columns + 0.5) / width, (rows + 0.5) / height], axis=-1) * 2 - 1
        grid = torch.from_numpy(points.astype(np.float32)).reshape(1, 1, -1, 2)
        logits = F.grid_sample(
            self.logits[None], grid, mode="bilinear", padding_mode="border", align_corners=False
        )[0, :, 0]
        return torch.softmax(logits, dim=0).amax(dim=0).numpy()

    @property
    def nbytes(self) -> int:
        """Bytes held, counting the probabilities whether or not computed yet, so that the
        cache's bound holds after a caller asks for them."""
        probabilities = self.logits.shape[0] * self.labels.size * np.dtype(np.float16).itemsize
        return self.labels.nbytes + self.logits.nbytes + probabilities


def fast_by_default() -> bool:
    """False when the environment asks for the plain path (``SEGBENCH_FAST=0``)."""
    return os.environ.get(FAST_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


def fold_batchnorm(network: torch.nn.Module) -> torch.nn.Module:
    """An inference copy of ``network`` with every ConvBlock's BatchNorm folded into its conv
    (same function up to float rounding, one pass less over each feature map)."""
    folded = copy.deepcopy(network).eval()
    for module in folded.modules():
        if isinstance(module, ConvBlock) and isinstance(module.bn, torch.nn.BatchNorm2d):
            module.conv = torch.nn.utils.fusion.fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = torch.nn.Identity()
    return folded


@dataclass(frozen=True)
class LoadedModel:
    """A checkpoint ready to run: its network on the engine's device and its metadata."""

    path: Path
    checkpoint: LoadedCheckpoint
    network: torch.nn.Module
    lock: threading.Lock
    variants: dict[tuple[bool, bool], torch.nn.Module] = field(default_factory=dict)
    """Networks prepared for an execution, by (channels_last, fold_batchnorm), built on first
    use under ``lock``."""

    def network_for(self, execution: Execution) -> torch.nn.Module:
        """The network laid out for ``execution``; call with ``lock`` held."""
        key = (execution.channels_last, execution.fold_batchnorm)
        if key == (False, False):
            return self.network
        network = self.variants.get(key)
        if network is None:
            network = fold_batchnorm(self.network) if execution.fold_batchnorm else self.network
            if execution.channels_last:
                if network is self.network:
                    network = copy.deepcopy(network)
                network = network.to(memory_format=torch.channels_last)
            self.variants[key] = network
        return network

    @property
    def hash(self) -> str:
        return self.checkpoint.file_hash

    @property
    def name(self) -> str:
        return self.path.stem


class InferenceEngine:
    """Loads checkpoints once and predicts with a shared, bounded cache.

    ``fast`` (default: unless ``SEGBENCH_FAST=0``) picks the fastest execution per batch;
    ``fast=False`` runs the plain float32 NCHW eager pass. ``channels_last`` forces the layout
    for every batch (default: CUDA always, the CPU as ``tuner`` measured, by default in the
    user's cache folder).
    """

    def __init__(
        self,
        device: str = "auto",
        cache_bytes: int = 1 << 30,
        channels_last: bool | None = None,
        fast: bool | None = None,
        tuner: CpuTuner | None = None,
    ) -> None:
        self.device = select_device(device)
        self.fast = fast_by_default() if fast is None else fast
        if channels_last is None and self.device.type == "cuda":
            channels_last = memory_format(self.device) == torch.channels_last
        self.channels_last = channels_last
        self.tuner = tuner if tuner is not None else CpuTuner()
        self._models: dict[Path, LoadedModel] = {}
        self._cache: BoundedCache[tuple[str, str, Resolution], Prediction] = BoundedCache(
            cache_bytes
        )
        self._lock = threading.Lock()

    @property
    def cache_bytes(self) -> int:
        """The most bytes of predictions the cache holds."""
        return self._cache.limit

    @cache_bytes.setter
    def cache_bytes(self, limit: int) -> None:
        self._cache.limit = limit

    def load(self, path: str | Path) -> LoadedModel:
        """The model of a checkpoint file, loaded on first use (CheckpointError if bad)."""
        path = Path(path).expanduser().resolve()
        with self._lock:
            model = self._models.get(path)
        if model is not None:
            return model
        checkpoint = load_checkpoint(path)
        network = checkpoint.model.to(self.device).eval()
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
            if resolution == "input":
                labels = list(argmax_classes(logits))
            else:
                labels = [
                    upsampled_labels(item, images[n].shape[:2])
                    for n, item in zip(missing, logits, strict=True)
                ]
            for n, item_logits, item_labels in zip(missing, logits, labels, strict=True):
                results[n] = Prediction(item_labels.clone().numpy(), item_logits.clone())
                self._store(model, ids[n], resolution, results[n])
        return [r for r in results if r is not None]

    def execution(self, model: LoadedModel, batch: torch.Tensor) -> Execution:
        """How ``batch`` (preprocessed, on this engine's device) is run through ``model``;
        on the CPU measured at the first batch of its width, input size and batch size."""
        if self.device.type == "cuda":
            execution = Execution(True, False, torch.float16) if self.fast else PLAIN
        elif self.fast:
            size = (batch.shape[-2], batch.shape[-1])
            execution = self.tuner.execution(
                tuning_key(model.checkpoint.metadata.width, size, len(batch)),
                candidates(len(batch), size),
                lambda option: self._run(model, option, batch),
                lambda option: self._prepare(model, option),
            )
        else:
            execution = PLAIN
        if self.channels_last is not None:
            execution = replace(execution, channels_last=self.channels_last)
        return execution

    def clear_cache(self) -> None:
        self._cache.clear()

    def _forward(self, model: LoadedModel, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Logits (N, classes, h, w) float32 on the CPU, in the default layout."""
        batch = model.checkpoint.preprocessing.image_to_tensor(images).to(self.device)
        return self._run(model, self.execution(model, batch), batch)

    def _prepare(self, model: LoadedModel, execution: Execution) -> None:
        with model.lock:
            model.network_for(execution)

    def _run(self, model: LoadedModel, execution: Execution, batch: torch.Tensor) -> torch.Tensor:
        layout = torch.channels_last if execution.channels_last else torch.contiguous_format
        chunk = execution.chunk or len(batch)
        with model.lock, torch.inference_mode(), execution.context(self.device):
            network = model.network_for(execution)
            parts = [network(part.contiguous(memory_format=layout)) for part in batch.split(chunk)]
            logits = torch.empty((len(batch), *parts[0].shape[1:]), dtype=torch.float32)
            for start, part in zip(range(0, len(batch), chunk), parts, strict=True):
                logits[start : start + len(part)].copy_(part)
        return logits

    def _cached(
        self, model: LoadedModel, image_id: str | None, resolution: Resolution
    ) -> Prediction | None:
        if image_id is None:
            return None
        return self._cache.get((model.hash, image_id, resolution))

    def _store(
        self,
        model: LoadedModel,
        image_id: str | None,
        resolution: Resolution,
        prediction: Prediction,
    ) -> None:
        if image_id is not None:
            self._cache.put((model.hash, image_id, resolution), prediction)
