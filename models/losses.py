"""The two losses compared by the bench (weighted CE and the importance-aware loss, IAL) and
the recipe's class weights, counted once per training split and cached next to the data.

IAL follows the recipe's formulas (Chen, Gong, Yang, T-ITS 2019, as re-designed in arXiv
1907.11066), generalised to any number G of importance groups: one weighted CE term L_k per
group, nested masks M_j = [group(true class) >= j] for j = 1..G-1, penalties f_j, and
total = sum_k L_k * prod_{j<k} (f_j + 1). With the default four groups it is the recipe's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from models.datasets import SegmentationDataset
from models.labels import DEFAULT_GROUPS, NUM_CLASSES, ImportanceGroups
from models.preprocess import resize_label

LOSSES = ("ce", "ial")
CACHE_ENV = "SEGBENCH_CACHE"
DEFAULT_CACHE = Path("~/.cache/segnet-review-bench")
_COUNTS_VERSION = 1


def class_weights(counts: np.ndarray) -> np.ndarray:
    """The recipe's weights w_c = 1 / ln(1.05 + f_c), f_c the share of class c's pixels."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise ValueError("class weights need at least one labelled pixel")
    return (1.0 / np.log(1.05 + counts / total)).astype(np.float32)


def _full_precision(logits: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 logits (AMP) in float32 for the loss; float64 kept for exact checks."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def weighted_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """CE with class weights, PyTorch's weighted mean (divided by the weights of the targets)."""
    logits = _full_precision(logits)
    return F.cross_entropy(logits, target.long(), weight=weights.to(logits.dtype))


def importance_aware_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor,
    group_of: torch.Tensor,
    num_groups: int,
) -> torch.Tensor:
    """IAL of a batch: logits (N, C, H, W), target (N, H, W) trainIds, weights (C,) class
    weights, group_of (C,) int64 group index of each class (0 = least important).

    A group without pixels in the batch contributes 0, and so does an f_j whose parent mask
    is empty, instead of the 0/0 = NaN of a literal transcription.
    """
    log_probs = F.log_softmax(_full_precision(logits), dim=1)
    target = target.long()
    log_true = log_probs.gather(1, target.unsqueeze(1)).flatten()
    target = target.flatten()
    pixel_weight = weights.to(log_true.dtype)[target]
    pixel_group = group_of[target]

    in_group = F.one_hot(pixel_group, num_groups).to(log_true.dtype)
    numerators = (pixel_weight * -log_true) @ in_group
    denominators = pixel_weight @ in_group
    present = denominators > 0
    group_losses = torch.where(present, numerators / denominators.where(present, 1.0), 0.0)

    probability = log_true.exp()
    levels = torch.arange(1, num_groups, device=target.device)
    masks = (pixel_group.unsqueeze(0) >= levels.unsqueeze(1)).to(probability.dtype)
    parents = torch.cat([torch.ones_like(probability).unsqueeze(0), masks])[: num_groups - 1]
    penalties = ((masks + 0.5).sqrt() * (probability - masks) * parents).square().sum(1)
    parent_counts = parents.sum(1)
    nonempty = parent_counts > 0
    f = torch.where(nonempty, penalties / (2 * parent_counts.where(nonempty, 1.0)), 0.0)

    factors = torch.cat([f.new_ones(1), torch.cumprod(f + 1, 0)])
    return (group_losses * factors).sum()


class SegmentationLoss(nn.Module):
    """CE or IAL with fixed class weights and groups, kept as buffers so they follow .to()."""

    def __init__(
        self, name: str, weights: np.ndarray, groups: ImportanceGroups = DEFAULT_GROUPS
    ) -> None:
        super().__init__()
        if name not in LOSSES:
            raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
        if len(weights) != NUM_CLASSES:
            raise ValueError(f"need {NUM_CLASSES} class weights, got {len(weights)}")
        self.name = name
        self.groups = groups
        self.register_buffer("weights", torch.as_tensor(np.asarray(weights, dtype=np.float32)))
        self.register_buffer("group_of", torch.as_tensor(groups.group_of))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.name == "ce":
            return weighted_cross_entropy(logits, target, self.weights)
        return importance_aware_loss(
            logits, target, self.weights, self.group_of, self.groups.num_groups
        )


def _size_key(size: tuple[int, int] | None) -> str:
    return "native" if size is None else f"{size[0]}x{size[1]}"


def _fingerprint(dataset: SegmentationDataset) -> str:
    """Changes when a label file of the split is added, removed or rewritten."""
    digest = hashlib.sha256()
    for sample in dataset.samples:
        stat = sample.label_path.stat() if sample.label_path else None
        digest.update(f"{sample.id}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _cache_paths(
    dataset: SegmentationDataset, size: tuple[int, int] | None, in_dataset: bool
) -> list[Path]:
    """Where the counts may be cached: inside the dataset folder, then the user cache."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{dataset.split}-{_size_key(size)}")
    root_hash = hashlib.sha256(str(Path(dataset.root).resolve()).encode()).hexdigest()[:16]
    user_cache = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()
    paths = [user_cache / f"class-counts-{root_hash}-{name}.json"]
    if in_dataset:
        paths.insert(0, Path(dataset.root) / f".segbench-class-counts-{name}.json")
    return paths


def _read_cache(path: Path, fingerprint: str) -> np.ndarray | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") == _COUNTS_VERSION and data.get("fingerprint") == fingerprint:
            counts = np.asarray(data["counts"], dtype=np.int64)
            if counts.shape == (NUM_CLASSES,):
                return counts
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


def _write_cache(paths: list[Path], payload: dict) -> None:
    text = json.dumps(payload, indent=1)
    for path in paths:
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, path)
            return
        except OSError:
            temporary.unlink(missing_ok=True)


def count_class_pixels(
    dataset: SegmentationDataset, size: tuple[int, int] | None = None, progress: bool = True
) -> np.ndarray:
    """Pixels of each trainId over the split (labels resized nearest to ``size``), uncached."""
    if not dataset.has_labels:
        raise ValueError(f"{dataset.describe()}: class weights need labels")
    counts = np.zeros(NUM_CLASSES, dtype=np.int64)
    samples = tqdm(dataset.samples, desc="counting class pixels", disable=not progress)
    for sample in samples:
        label = dataset.read_label(sample)
        if size is not None:
            label = resize_label(label, size)
        counts += np.bincount(label.ravel(), minlength=NUM_CLASSES)[:NUM_CLASSES]
    return counts


def class_pixel_counts(
    dataset: SegmentationDataset,
    size: tuple[int, int] | None = None,
    progress: bool = True,
    cache_in_dataset: bool = True,
) -> np.ndarray:
    """Pixels of each trainId over the split, cached as JSON in the dataset folder when it is
    writable (and ``cache_in_dataset``), else in ``$SEGBENCH_CACHE`` (default
    ~/.cache/segnet-review-bench). A cache is used only while the split's label files are
    unchanged."""
    fingerprint = _fingerprint(dataset)
    paths = _cache_paths(dataset, size, cache_in_dataset)
    for path in paths:
        cached = _read_cache(path, fingerprint)
        if cached is not None:
            return cached
    counts = count_class_pixels(dataset, size, progress)
    payload = {
        "version": _COUNTS_VERSION,
        "root": str(dataset.root),
        "split": dataset.split,
        "size": _size_key(size),
        "images": len(dataset),
        "fingerprint": fingerprint,
        "counts": counts.tolist(),
    }
    _write_cache(paths, payload)
    return counts
