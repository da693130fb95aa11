"""The inference engine the GUI, the evaluator and the reports share.

It loads each checkpoint once, feeds every model with that checkpoint's own
preprocessing, runs batches on the chosen device and returns label maps and per-pixel
probabilities either at the ground truth's resolution (logits upsampled bilinearly) or at
the model's input resolution (the recipe's way of scoring). A byte-bounded LRU cache keyed
by (checkpoint hash, image id, resolution) makes a revisited image free. All public
methods are safe to call from several GUI sessions (threads) at once.

Execution is chosen per batch (:meth:`InferenceEngine.execution`). CUDA runs float16
autocast on channels_last tensors. The CPU follows :class:`CpuPolicy`, a fixed policy
justified by ``bench/bench_inference.py`` on this project's 2-core AVX2 machine: BatchNorm
folded into the convolutions (one pass less over every feature map), channels_last tensors
(oneDNN's NHWC kernels), large batches run in chunks of ``CPU_CHUNK_PIXELS`` input pixels
(feature maps that stay in the caches), no bfloat16 autocast (it changes too many labels,
see :class:`CpuPolicy`), no compilation (``torch.compile`` builds C++ for every input shape
at GUI start; ``torch.jit.trace`` rejects SegNet's input-size check) and PyTorch's default
thread count, the physical cores. On a loaded machine, start the process with
``OMP_WAIT_POLICY=PASSIVE``: spinning OpenMP threads otherwise wait out other processes'
time slices (a width-0.25 forward went from 20 ms to 1 s here). ``SEGBENCH_FAST=0`` or
``InferenceEngine(fast=False)`` forces the plain float32 NCHW eager pass, the recipe's way.

Probabilities are derived on demand from the model-resolution logits a :class:`Prediction`
keeps: the full-resolution softmax (classes x H x W) is the dearest step after the network
and the GUI and evaluator only need the label map. :func:`exact_upsampled_labels` gives
that map bit for bit while interpolating only where the source cells disagree; it is not the
engine's path yet because ``bench/bench_upsample.py`` still measures it slower than
:func:`upsampled_labels`.
"""

from __future__ import annotations

import copy
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from models.checkpoints import LoadedCheckpoint, load_checkpoint
from models.device import autocast, memory_format, select_device
from models.segnet import ConvBlock

Resolution = Literal["label", "input"]

FAST_ENV = "SEGBENCH_FAST"
"""Set to 0 to make every engine run the plain float32 NCHW eager pass."""
CPU_CHANNELS_LAST_MIN_BATCH = 1
"""Smallest batch run channels_last on the CPU. With BatchNorm folded, channels_last won at
every batch size measured here (the NCHW layout ran at 0.80-0.90x of it at batch 1 and
0.76-0.86x at batch 16, widths 0.25-1.0, ``bench/bench_inference.py``); unfolded NCHW
BatchNorm is what made channels_last lose on single small images."""
CPU_CHUNK_PIXELS = 1 << 17
"""Input pixels per forward call on the CPU: a larger batch is run in chunks of this size,
whose feature maps stay in the caches (4 images of 128x256, 14 of 96x96)."""


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
        logits = _upsampled(self.logits, self.labels.shape)
        return torch.softmax(logits, dim=0).to(torch.float16).numpy()

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class per pixel (H, W) float32."""
        return self.probabilities.max(axis=0).astype(np.float32)

    @property
    def nbytes(self) -> int:
        """Bytes held, counting the probabilities whether or not computed yet, so that the
        cache's bound holds after a caller asks for them."""
        probabilities = self.logits.shape[0] * self.labels.size * np.dtype(np.float16).itemsize
        return self.labels.nbytes + self.logits.nbytes + probabilities


@dataclass(frozen=True)
class Execution:
    """How one batch is run: memory layout, BatchNorm folding, autocast dtype and the most
    images per forward call (``None``: the whole batch at once)."""

    channels_last: bool
    fold_batchnorm: bool
    autocast: torch.dtype | None
    chunk: int | None = None
    """Images per forward call, balanced (16 images at most 14 a call: two calls of 8)."""

    def context(self, device: torch.device) -> AbstractContextManager:
        """The autocast to run under: the project's float16 AMP on CUDA, else this dtype's."""
        if self.autocast is None:
            return nullcontext()
        if device.type == "cuda":
            return autocast(device)
        return torch.autocast(device_type=device.type, dtype=self.autocast)


PLAIN = Execution(channels_last=False, fold_batchnorm=False, autocast=None)
"""The recipe's way: eager float32 NCHW with BatchNorm as its own layer."""


@dataclass(frozen=True)
class CpuPolicy:
    """The fastest CPU execution per batch size, fixed from the benchmark, not calibrated at
    load time (a calibration would be slow and give different choices run to run).

    ``bf16`` (bfloat16 autocast) is an opt-in, never the default: on the trained demo model
    it changes 2.7% of the labels (8 demo images; bf16 rounds the same whether the CPU has
    native bf16 or emulates it), far beyond the 0.1% the engine promises, and it is slower
    than float32 on CPUs without native bf16 such as this machine's.
    """

    channels_last_min_batch: int = CPU_CHANNELS_LAST_MIN_BATCH
    fold_batchnorm: bool = True
    bf16: bool = False
    chunk_pixels: int = CPU_CHUNK_PIXELS

    def execution(self, batch_size: int, input_size: tuple[int, int]) -> Execution:
        """The execution of ``batch_size`` images fed at ``input_size`` (height, width)."""
        most = max(1, self.chunk_pixels // (input_size[0] * input_size[1]))
        calls = -(-batch_size // most)
        chunk = -(-batch_size // calls)
        return Execution(
            channels_last=chunk >= self.channels_last_min_batch,
            fold_batchnorm=self.fold_batchnorm,
            autocast=torch.bfloat16 if self.bf16 else None,
            chunk=chunk,
        )


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
    for every batch (default: CUDA always, the CPU per :class:`CpuPolicy`).
    """

    def __init__(
        self,
        device: str = "auto",
        cache_bytes: int = 1 << 30,
        channels_last: bool | None = None,
        fast: bool | None = None,
        policy: CpuPolicy | None = None,
    ) -> None:
        self.device = select_device(device)
        self.fast = fast_by_default() if fast is None else fast
        if channels_last is None and self.device.type == "cuda":
            channels_last = memory_format(self.device) == torch.channels_last
        self.channels_last = channels_last
        self.policy = policy if policy is not None else CpuPolicy()
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
                labels = list(_argmax_classes(logits))
            else:
                labels = [
                    upsampled_labels(item, images[n].shape[:2])
                    for n, item in zip(missing, logits, strict=True)
                ]
            for n, item_logits, item_labels in zip(missing, logits, labels, strict=True):
                results[n] = Prediction(item_labels.clone().numpy(), item_logits.clone())
                self._store(model, ids[n], resolution, results[n])
        return [r for r in results if r is not None]

    def execution(self, batch_size: int, input_size: tuple[int, int]) -> Execution:
        """How ``batch_size`` images fed at ``input_size`` are run on this engine's device."""
        if self.device.type == "cuda":
            execution = Execution(True, False, torch.float16) if self.fast else PLAIN
        elif self.fast:
            execution = self.policy.execution(batch_size, input_size)
        else:
            execution = PLAIN
        if self.channels_last is not None:
            execution = replace(execution, channels_last=self.channels_last)
        return execution

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self._cached_bytes = 0

    def _forward(self, model: LoadedModel, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Logits (N, classes, h, w) float32 on the CPU, in the default layout."""
        preprocessing = model.checkpoint.preprocessing
        execution = self.execution(len(images), preprocessing.input_size)
        batch = preprocessing.image_to_tensor(images).to(self.device)
        layout = torch.channels_last if execution.channels_last else torch.contiguous_format
        chunk = execution.chunk or len(batch)
        with model.lock, torch.inference_mode(), execution.context(self.device):
            network = model.network_for(execution)
            logits = [
                network(part.contiguous(memory_format=layout)).float().cpu()
                for part in batch.split(chunk)
            ]
        return torch.cat(logits).contiguous()

    def _cached(
        self, model: LoadedModel, image_id: str | None, resolution: Resolution
    ) -> Prediction | None:
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


def _upsampled(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """One image's logits (classes, h, w) bilinearly resized to ``size`` (unchanged if there)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits[None], size=tuple(size), mode="bilinear", align_corners=False)[0]


def _argmax_classes(logits: torch.Tensor) -> torch.Tensor:
    """``logits.argmax(-3)`` as uint8, of (classes, H, W) or (N, classes, H, W) logits (first
    maximum wins, as argmax; softmax keeps the order): one pass per class plane instead of a
    reduction across planes, about 4x faster on the CPU at 256x512."""
    planes = logits.unbind(-3)
    best = planes[0].clone()
    labels = torch.zeros(best.shape, dtype=torch.uint8)
    better = torch.empty(best.shape, dtype=torch.bool)
    for index, plane in enumerate(planes[1:], start=1):
        torch.gt(plane, best, out=better)
        torch.maximum(best, plane, out=best)
        labels.masked_fill_(better, index)
    return labels


UNSURE = 255
"""Label of a model-resolution cell or block whose output pixels need the full interpolation."""
MARGIN_ULPS = 2.0**-16
"""A cell's winning logit must beat every earlier class by this share of the image's largest
logit: the float32 rounding of bilinear weights and sums (a few units of 2**-24 of it) can
then never tie the winner with an earlier class, which argmax would pick."""
MIDPOINT_MASK = (1 << 29) - 1
MIDPOINT_BITS = 1 << 28
"""The low float64 mantissa bits of a float32 rounding midpoint (half a float32 unit)."""
SUBNORMAL_BOUND = 2.0**-125
"""Below this, float32 results are (near) subnormal, whose midpoints lie elsewhere."""
MOST_UNSURE_SHARE = 0.25
"""Share of blocks (about that of output pixels) needing exact values above which the plain
interpolation is cheaper (logits without regions, such as random ones)."""
PROBE_PIXELS = 1 << 16
"""Output pixels of a random probe checked against F.interpolate per size, before the fast
path is trusted for that size."""


def _fma32(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """float32 ``a * b + c`` rounded once, as torch's CPU kernel computes it with FMA. The
    float64 product is exact; the float64 sum's own rounding can change the float32 result
    only where it lands exactly on a float32 rounding midpoint or in float32's subnormal
    range, so there (rarely) the sum is rounded to odd instead, which makes the final
    rounding to float32 correct."""
    product = a.double() * b.double()
    addend = c.double()
    total = product + addend
    bits = total.view(torch.int64)
    hazard = ((bits & MIDPOINT_MASK) == MIDPOINT_BITS) | (total.abs() < SUBNORMAL_BOUND)
    if bool(hazard.any()):
        back = total - product
        error = (product - (total - back)) + (addend - back)
        even = (bits & 1) == 0
        nudged = torch.nextafter(total, total + error)
        total = torch.where(hazard & even & (error != 0), nudged, total)
    return total.float()


@lru_cache(maxsize=64)
def _source_indices(size_in: int, size_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """First and second source index and their float32 weights per output index, computed
    as torch does for align_corners=False: source = scale * (i + 0.5) - 0.5 (one fused
    rounding), clamped at 0, and the second index clamped at the last row."""
    scale = float(np.float32(size_in) / np.float32(size_out))
    centres = np.arange(size_out, dtype=np.float64) + 0.5
    source = np.maximum((scale * centres - 0.5).astype(np.float32), np.float32(0))
    first = np.minimum(np.floor(source).astype(np.int64), size_in - 1)
    second_weight = np.clip(source - first.astype(np.float32), 0, 1).astype(np.float32)
    second = first + (first < size_in - 1)
    weights = np.stack([np.float32(1) - second_weight, second_weight])
    return torch.from_numpy(first), torch.from_numpy(second), torch.from_numpy(weights)


def _values_at(
    widened: torch.Tensor,
    classes: torch.Tensor,
    rows: torch.Tensor,
    columns: torch.Tensor,
    height: int,
) -> torch.Tensor:
    """torch's bilinear values of ``classes`` (k, n) at output pixels (rows, columns) (n,),
    from the width-interpolated logits (classes, h, W) that torch's kernel blends row by
    row."""
    first, second, weights = _source_indices(widened.shape[1], height)
    width = widened.shape[2]
    base = classes * (widened.shape[1] * width) + columns
    flat = widened.reshape(-1)
    top = flat.take(base + first[rows] * width)
    bottom = flat.take(base + second[rows] * width)
    return _fma32(top, weights[0, rows], bottom * weights[1, rows])


def _corners(grid: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The four source cells (rows r, r+1, columns c, c+1; the last row or column repeated
    at the border, as torch clamps) of every block (r, c) of a (..., h, w) grid."""
    padded = torch.cat([grid, grid[..., -1:, :]], dim=-2)
    padded = torch.cat([padded, padded[..., -1:]], dim=-1)
    return padded[..., :-1, :-1], padded[..., 1:, :-1], padded[..., :-1, 1:], padded[..., 1:, 1:]


def _candidates(
    logits: torch.Tensor, blocks: torch.Tensor, tolerance: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per block (flat indices, n), the classes that can win one of its output pixels
    (classes, n), sorted and padded by repeating the last (argmax keeps the first of equal
    values), and their count (n,). A blend never exceeds its largest source value nor
    falls below its smallest, so a class whose largest value is below another's smallest
    cannot win."""
    height, width = logits.shape[1:]
    rows, columns = blocks // width, blocks % width
    below, right = (rows + 1).clamp(max=height - 1), (columns + 1).clamp(max=width - 1)
    cells = [(rows, columns), (below, columns), (rows, right), (below, right)]
    flat = logits.flatten(1)
    corners = torch.stack([flat.index_select(1, r * width + c) for r, c in cells])
    highest, lowest = corners.amax(0), corners.amin(0)
    possible = highest >= lowest.amax(0) - tolerance
    index = torch.arange(len(logits))[:, None].expand_as(possible)
    ordered = torch.where(possible, index, len(logits)).sort(dim=0).values
    count = possible.sum(0)
    return torch.minimum(ordered, ordered.gather(0, (count - 1)[None])), count


def _sure_labels(logits: torch.Tensor, tolerance: float) -> torch.Tensor:
    """Each cell's label (h, w) uint8, UNSURE where an earlier class comes within the
    rounding margin of the winner (an interpolated pixel could then tie and flip)."""
    labels = _argmax_classes(logits)
    running = torch.cummax(logits, dim=0).values
    earlier = torch.cat([torch.full_like(running[:1], -torch.inf), running[:-1]])
    index = labels[None].long()
    margin = (logits.gather(0, index) - earlier.gather(0, index))[0]
    return labels.masked_fill_(margin <= tolerance, UNSURE)


def _block_labels(cells: torch.Tensor) -> torch.Tensor:
    """The label every output pixel of a block gets when its four source cells share a sure
    label (a convex blend of logits that share their argmax keeps it); UNSURE elsewhere."""
    corner, *others = _corners(cells)
    same = (corner == others[0]) & (corner == others[1]) & (corner == others[2])
    return corner.masked_fill(~same, UNSURE)


@lru_cache(maxsize=64)
def _fast_path_exact(classes: int, size_in: tuple[int, int], size_out: tuple[int, int]) -> bool:
    """Whether :func:`_values_at` reproduces F.interpolate bit for bit at these sizes, tried
    on random logits: torch's kernel differs between CPU builds and for some shapes, and
    the fast path is taken only where it was seen to agree."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(classes, *size_in, generator=generator)
    reference = _upsampled(logits, size_out)
    pixels = size_out[0] * size_out[1]
    sample = torch.randperm(pixels, generator=generator)[:PROBE_PIXELS]
    rows, columns = sample // size_out[1], sample % size_out[1]
    widened = _upsampled(logits, (size_in[0], size_out[1]))
    ours = _values_at(widened, torch.arange(classes)[:, None], rows, columns, size_out[0])
    return torch.equal(ours, reference[:, rows, columns])


def upsampled_labels(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """trainIds (H, W) uint8 of one image's logits (classes, h, w) upsampled to ``size``:
    argmax(F.interpolate(bilinear)), the definition :func:`exact_upsampled_labels` matches
    and its fallback."""
    return _argmax_classes(_upsampled(logits, size))


def exact_upsampled_labels(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """trainIds (H, W) uint8 of one image's logits (classes, h, w) upsampled to ``size``,
    identical to :func:`upsampled_labels` (first maximum on ties).

    Output pixels whose source cells share a sure label take it without interpolation;
    only the others get torch's exact 20-class bilinear values (the width pass by
    F.interpolate, the row blend reproduced with its fused rounding) and an argmax. Falls
    back to the reference on CUDA, for non-finite logits and wherever the reproduction was
    not seen to agree with F.interpolate at these sizes."""
    size = (int(size[0]), int(size[1]))
    classes, height, width = logits.shape
    if (height, width) == size:
        return _argmax_classes(logits)
    largest = float(logits.abs().max())
    if (
        logits.device.type != "cpu"
        or classes >= UNSURE
        or not np.isfinite(largest)
        or not _fast_path_exact(classes, (height, width), size)
    ):
        return upsampled_labels(logits, size)
    tolerance = MARGIN_ULPS * largest + 2.0**-120
    first_rows = _source_indices(height, size[0])[0]
    first_columns = _source_indices(width, size[1])[0]
    blocks = _block_labels(_sure_labels(logits, tolerance))
    unsure = torch.nonzero(blocks.flatten() == UNSURE)[:, 0]
    if len(unsure) > MOST_UNSURE_SHARE * blocks.numel():
        return upsampled_labels(logits, size)
    labels = blocks.index_select(0, first_rows).index_select(1, first_columns)
    rows, columns = torch.nonzero(labels == UNSURE, as_tuple=True)
    if len(rows):
        slots, count = _candidates(logits, unsure, tolerance)
        order = torch.zeros(blocks.numel(), dtype=torch.int64)
        order[unsure] = torch.arange(len(unsure))
        block = order[first_rows[rows] * width + first_columns[columns]]
        labels[rows, columns] = _unsure_labels(
            logits, slots[:, block], count[block], rows, columns, size
        )
    return labels


def _unsure_labels(
    logits: torch.Tensor,
    slots: torch.Tensor,
    count: torch.Tensor,
    rows: torch.Tensor,
    columns: torch.Tensor,
    size: tuple[int, int],
) -> torch.Tensor:
    """Labels (n,) uint8 of output pixels (rows, columns) whose source cells disagree, from
    torch's exact values of their candidate classes (slots (classes, n), count (n,)),
    grouped by count so that each group computes no more classes than it needs."""
    widened = _upsampled(logits, (logits.shape[1], size[1]))
    labels = slots[0].to(torch.uint8)
    most = 1
    while most < len(logits):
        fewest, most = most + 1, min(2 * most, len(logits))
        chosen = torch.nonzero((count >= fewest) & (count <= most), as_tuple=True)[0]
        if len(chosen):
            classes = slots[:most, chosen]
            values = _values_at(widened, classes, rows[chosen], columns[chosen], size[0])
            best = _argmax_classes(values[:, None])[0].long()
            labels[chosen] = classes.gather(0, best[None])[0].to(torch.uint8)
    return labels
