"""Train a SegNet with CE or the importance-aware loss, the recipe's way, on any dataset layout.

    python -m models.train --data DIR --loss ial --width 0.25 --size 128x256 \\
        --epochs 30 --batch 8 --out models/checkpoints/ial.pt

Writes the best checkpoint by validation loss to ``--out``, the last one to
``<stem>.last.pt``, the per-epoch metrics to ``<stem>.csv`` and, after every epoch, the
state needed to continue (weights, optimizer, epoch, RNG) to ``<stem>.resume.pt``: after a
Ctrl-C, the same command with ``--resume`` carries on from the last finished epoch and ends
with the same weights as an uninterrupted run (on the CPU). Shuffling and augmentation draw
from generators seeded by (seed, epoch, image), so a seed fixes the whole run.
"""

from __future__ import annotations

import argparse
import csv
import math
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from models.arguments import parse_size
from models.checkpoints import CheckpointError, CheckpointMetadata, save_checkpoint
from models.confusion import confusion_matrix
from models.datasets import (
    DatasetError,
    Sample,
    SegmentationDataset,
    SkippedFile,
    open_dataset,
    skipped_lines,
)
from models.device import (
    DEVICE_CHOICES,
    DeviceError,
    autocast,
    grad_scaler,
    select_device,
    uses_amp,
)
from models.labels import BACKGROUND, DEFAULT_GROUPS, NUM_CLASSES, GroupsError, ImportanceGroups
from models.losses import LOSSES, SegmentationLoss, class_pixel_counts, class_weights
from models.metrics import frequency_weighted_iou, mean_iou
from models.preprocess import INTERPOLATIONS, Preprocessing
from models.segnet import MIN_INPUT_SIZE, SegNet
from models.synthetic import resolve_data
from models.train_step import training_layout, training_step

MAX_ROTATION = 10
"""The recipe rotates by a random integer angle in [-10, 10] degrees, with probability 0.5."""
LR_SCHEDULES = ("constant", "cosine")
"""constant: the recipe's fixed rate; cosine: from --lr down to 0 over --epochs, per epoch."""
SELECTIONS = {"val_loss": -1, "val_mean_iou": +1}
"""Validation figures a run may keep its best checkpoint by, with their directions (+1: higher
is better). The recipe keeps the lowest validation loss."""
PATH_OPTIONS = ("--data", "--out", "--groups")
"""Options whose values are local paths: a recorded command keeps only their last part."""
PRELOAD_LIMIT_BYTES = 2 * 1024**3
DEFAULT_MAX_BAD_SHARE = 0.05
"""A split with more than 5% of its files unusable stops training (``--max-bad-share``)."""
"""Splits whose resized images and labels fit in this are read once and kept in memory."""
STATE_FORMAT = "segnet-review-bench/train-state"
CSV_COLUMNS = (
    "epoch",
    "train_loss",
    "train_weighted_iou",
    "train_mean_iou",
    "val_loss",
    "val_weighted_iou",
    "val_mean_iou",
    "best",
    "seconds",
    "images_per_second",
)
RESUME_KEYS = (
    "data",
    "loss",
    "width",
    "size",
    "batch",
    "seed",
    "lr",
    "weight_decay",
    "train_split",
    "val_split",
    "limit",
    "interpolation",
    "groups",
    "schedule",
    "select",
)
"""Settings that must be unchanged to continue a run (epochs, device and workers may change)."""


class TrainingError(ValueError):
    """A training run that cannot start or continue; the message says why."""


@dataclass
class TrainConfig:
    data: Path
    out: Path
    loss: str = "ial"
    width: float = 1.0
    size: tuple[int, int] = (96, 96)
    epochs: int = 100
    batch: int = 16
    lr: float = 1e-4
    weight_decay: float = 2e-4
    device: str = "auto"
    seed: int = 0
    resume: bool = False
    groups: ImportanceGroups = DEFAULT_GROUPS
    train_split: str = "train"
    val_split: str = "val"
    workers: int = 0
    limit: int | None = None
    interpolation: str = "area"
    cache_in_dataset: bool = True
    progress: bool = True
    command: str = ""
    lr_schedule: str = "constant"
    select: str = "val_loss"
    max_bad_share: float = DEFAULT_MAX_BAD_SHARE
    """Training stops when more than this share of a split's files cannot be used."""

    def lr_at(self, epoch: int) -> float:
        """The learning rate of a (1-based) epoch under the schedule."""
        if self.lr_schedule == "constant":
            return self.lr
        return self.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / self.epochs))

    def identity(self) -> dict[str, Any]:
        """The settings that define the run, in plain types (compared on --resume)."""
        return {
            "data": str(Path(self.data).expanduser().resolve()),
            "loss": self.loss,
            "width": self.width,
            "size": list(self.size),
            "batch": self.batch,
            "seed": self.seed,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "train_split": self.train_split,
            "val_split": self.val_split,
            "limit": self.limit,
            "interpolation": self.interpolation,
            "groups": self.groups.to_dict(),
            "schedule": self.lr_schedule
            if self.lr_schedule == "constant"
            else [self.lr_schedule, self.epochs],
            "select": self.select,
        }


@dataclass(frozen=True)
class OutputPaths:
    best: Path
    last: Path
    resume: Path
    log: Path

    @classmethod
    def for_out(cls, out: Path) -> OutputPaths:
        stem = out.with_suffix("")
        return cls(
            best=out,
            last=Path(f"{stem}.last.pt"),
            resume=Path(f"{stem}.resume.pt"),
            log=Path(f"{stem}.csv"),
        )


@dataclass
class EpochMetrics:
    """Running loss and the two IoUs shown in the progress bar and written to the log."""

    annotated_classes: frozenset[int]
    """Classes the dataset annotates; the others are left out of both IoUs."""
    loss_sum: float = 0.0
    images: int = 0
    weighted_iou_sum: float = 0.0
    batches_with_classes: int = 0
    confusion: torch.Tensor = field(
        default_factory=lambda: torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.int64)
    )

    def update(self, loss: float, logits: torch.Tensor, target: torch.Tensor) -> None:
        batch_confusion = confusion_matrix(target, logits.argmax(1)).cpu()
        self.loss_sum += loss * target.shape[0]
        self.images += target.shape[0]
        self.confusion += batch_confusion
        iou = frequency_weighted_iou(batch_confusion, self.annotated_classes)
        if not math.isnan(iou):
            self.weighted_iou_sum += iou
            self.batches_with_classes += 1

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.images, 1)

    @property
    def weighted_iou(self) -> float:
        """The recipe's figure: pixel-weighted IoU per batch, averaged over batches."""
        return self.weighted_iou_sum / max(self.batches_with_classes, 1)

    @property
    def mean_iou(self) -> float:
        """Unweighted mean IoU of the classes present so far (the Cityscapes convention)."""
        return mean_iou(self.confusion, self.annotated_classes)


def augment(
    image: np.ndarray, label: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The recipe's augmentation: p=0.5 rotation by an integer angle in [-10, 10] degrees
    (labels nearest, uncovered corners background), then p=0.5 horizontal flip."""
    if rng.random() < 0.5:
        height, width = label.shape
        angle = int(rng.integers(-MAX_ROTATION, MAX_ROTATION + 1))
        matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, 1.0)
        image = cv2.warpAffine(
            image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)
        )
        label = cv2.warpAffine(
            label, matrix, (width, height), flags=cv2.INTER_NEAREST, borderValue=BACKGROUND
        )
    if rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


class TrainingImages(torch.utils.data.Dataset):
    """Resized (and optionally augmented) image/label pairs of a split, preloaded when small."""

    def __init__(
        self,
        dataset: SegmentationDataset,
        indices: Sequence[int],
        preprocessing: Preprocessing,
        augmented: bool,
        seed: int,
        progress: bool,
    ) -> None:
        self.dataset = dataset
        self.indices = list(indices)
        self.preprocessing = preprocessing
        self.augmented = augmented
        self.seed = seed
        self.epoch = 0
        height, width = preprocessing.input_size
        self.preloaded: tuple[np.ndarray, np.ndarray] | None = None
        if len(self.indices) * height * width * 4 <= PRELOAD_LIMIT_BYTES:
            self.preloaded = self._preload(progress)

    def _read(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        sample = self.dataset[self.indices[position]]
        image = self.preprocessing.resize_image(self.dataset.read_image(sample))
        label = self.preprocessing.resize_label(self.dataset.read_label(sample))
        return image, label

    def _preload(self, progress: bool) -> tuple[np.ndarray, np.ndarray]:
        height, width = self.preprocessing.input_size
        images = np.empty((len(self), height, width, 3), dtype=np.uint8)
        labels = np.empty((len(self), height, width), dtype=np.uint8)
        with ThreadPoolExecutor(max_workers=4) as pool:
            pairs = pool.map(self._read, range(len(self)))
            desc = f"loading {self.dataset.split}"
            for position, (image, label) in enumerate(
                tqdm(pairs, total=len(self), desc=desc, disable=not progress, leave=False)
            ):
                images[position], labels[position] = image, label
        return images, labels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        if self.preloaded is None:
            image, label = self._read(position)
        else:
            image, label = self.preloaded[0][position], self.preloaded[1][position]
        if self.augmented:
            rng = np.random.default_rng([self.seed, self.epoch, self.indices[position]])
            image, label = augment(image, label, rng)
        return image, label


def _collate(
    preprocessing: Preprocessing, pairs: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[torch.Tensor, torch.Tensor]:
    images = preprocessing.image_to_tensor([image for image, _ in pairs])
    labels = torch.from_numpy(np.stack([label for _, label in pairs])).long()
    return images, labels


def _loader(
    images: TrainingImages, batch: int, shuffle: bool, seed: int, epoch: int, workers: int
) -> DataLoader:
    images.epoch = epoch
    generator = torch.Generator().manual_seed(
        int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
    )
    return DataLoader(
        images,
        batch_size=batch,
        shuffle=shuffle,
        generator=generator,
        drop_last=shuffle and len(images) > batch,
        num_workers=workers,
        collate_fn=partial(_collate, images.preprocessing),
    )


def _subset(size: int, limit: int | None, seed: int) -> list[int]:
    """All indices, or a seeded random choice of ``limit`` of them (kept in order)."""
    if limit is None or limit >= size:
        return list(range(size))
    chosen = np.random.default_rng(seed).choice(size, size=limit, replace=False)
    return sorted(int(i) for i in chosen)


def _open(config: TrainConfig, split: str) -> SegmentationDataset:
    dataset = open_dataset(config.data, split)
    if not dataset.has_labels:
        raise TrainingError(f"{dataset.describe()}: training needs labels")
    drop_unreadable(dataset, config.max_bad_share)
    return dataset


def _undecodable(dataset: SegmentationDataset, sample: Sample) -> SkippedFile | None:
    """Why the sample's image or label cannot be decoded, None if both can."""
    try:
        dataset.read_image(sample)
        dataset.read_label(sample)
    except DatasetError as error:
        return SkippedFile.of(error, sample.image_path, sample.label_path)
    return None


def drop_unreadable(dataset: SegmentationDataset, max_bad_share: float) -> None:
    """Decode every image and label of the split once before training, so that a bad file
    is left out with a warning instead of stopping an epoch (and the class weights are
    counted over the files trained on). More than ``max_bad_share`` of the split bad
    (refused at scan or here) stops the run: the data is then more likely misplaced than a
    file or two broken."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = list(pool.map(partial(_undecodable, dataset), dataset.samples))
    dataset.samples = [
        s for s, problem in zip(dataset.samples, problems, strict=True) if not problem
    ]
    dataset.skipped += [problem for problem in problems if problem is not None]
    for line in skipped_lines(dataset.skipped, dataset.root):
        print(f"warning: {line}", file=sys.stderr)
    total = len(dataset.samples) + len(dataset.skipped)
    if len(dataset.skipped) > max_bad_share * total:
        first = dataset.skipped[0]
        raise TrainingError(
            f"{dataset.root}: {len(dataset.skipped)} of {total} files of split "
            f"{dataset.split!r} cannot be used, more than --max-bad-share {max_bad_share:g}; "
            f"the first: {first.name(dataset.root)}: {first.reason}"
        )


class Trainer:
    """One training run: data, model, optimizer and the files it writes."""

    def __init__(self, config: TrainConfig) -> None:
        if config.loss not in LOSSES:
            raise TrainingError(f"unknown loss {config.loss!r}; choose one of {', '.join(LOSSES)}")
        if min(config.size) < MIN_INPUT_SIZE:
            raise TrainingError(f"--size must be at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}")
        if config.lr_schedule not in LR_SCHEDULES or config.select not in SELECTIONS:
            raise TrainingError(
                f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)} and --select one of "
                f"{', '.join(SELECTIONS)}"
            )
        if config.epochs < 1 or config.batch < 1 or config.width <= 0:
            raise TrainingError("--epochs and --batch must be at least 1, --width positive")
        self.config = config
        self.paths = OutputPaths.for_out(Path(config.out))
        self.device = select_device(config.device)
        self.preprocessing = Preprocessing(
            input_size=config.size,
            channel_order="BGR",
            scale=1 / 255,
            interpolation=config.interpolation,
        )
        train_set, val_set = _open(config, config.train_split), _open(config, config.val_split)
        self.train_set, self.val_set = train_set, val_set
        counts = class_pixel_counts(
            train_set, config.size, config.progress, config.cache_in_dataset
        )
        self.class_weights = class_weights(counts)
        self.loss = SegmentationLoss(config.loss, self.class_weights, config.groups).to(self.device)
        indices = _subset(len(train_set), config.limit, config.seed)
        self.train_images = TrainingImages(
            train_set, indices, self.preprocessing, True, config.seed, config.progress
        )
        self.val_images = TrainingImages(
            val_set, range(len(val_set)), self.preprocessing, False, config.seed, config.progress
        )
        torch.manual_seed(config.seed)
        model = SegNet(NUM_CLASSES, config.width).to(self.device)
        self.layout = training_layout(
            model, config.width, self.loss, self._new_optimizer, self._trial_batch()
        )
        self.model = model.to(memory_format=self.layout)
        self.optimizer = self._new_optimizer(self.model.parameters())
        self.scaler = grad_scaler(self.device)
        self.epoch = 0
        self.best_value = -math.inf
        """The best validation figure so far, signed so that higher is better."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def _new_optimizer(self, parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Adam:
        """The recipe's optimizer: Adam with AMSGrad and weight decay."""
        config = self.config
        return torch.optim.Adam(
            parameters, lr=config.lr, weight_decay=config.weight_decay, amsgrad=True
        )

    def _trial_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Random images and labels shaped like the first training batch, for measuring the
        step's layout (drawn from their own generator: the run's random streams stay as the
        seed set them)."""
        generator = torch.Generator().manual_seed(0)
        count = min(self.config.batch, len(self.train_images))
        images = torch.rand(count, 3, *self.config.size, generator=generator)
        labels = torch.randint(0, NUM_CLASSES, (count, *self.config.size), generator=generator)
        return images.to(self.device), labels.to(self.device)

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, torch.Tensor]:
        images, labels = self._to_device(images, labels)
        loss, logits = training_step(
            self.model, self.loss, self.optimizer, self.scaler, images, labels
        )
        return float(loss), logits

    def _to_device(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images = images.to(self.device, non_blocking=True)
        images = images.contiguous(memory_format=self.layout)
        return images, labels.to(self.device, non_blocking=True)

    def _bar(self, loader: DataLoader, desc: str) -> tqdm:
        return tqdm(loader, desc=desc, leave=False, disable=not self.config.progress, unit="batch")

    def train_epoch(
        self, epoch: int, on_batch: Callable[[int, int], None] | None
    ) -> tuple[EpochMetrics, float]:
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr_at(epoch)
        metrics = EpochMetrics(self.train_set.annotated_classes)
        config = self.config
        loader = _loader(self.train_images, config.batch, True, config.seed, epoch, config.workers)
        start = time.perf_counter()
        bar = self._bar(loader, f"epoch {epoch}/{config.epochs} train")
        for index, (images, labels) in enumerate(bar):
            loss, logits = self._step(images, labels)
            metrics.update(loss, logits, labels)
            bar.set_postfix(
                loss=f"{metrics.loss:.4f}",
                wIoU=f"{metrics.weighted_iou:.3f}",
                mIoU=f"{metrics.mean_iou:.3f}",
            )
            if on_batch is not None:
                on_batch(epoch, index)
        return metrics, time.perf_counter() - start

    @torch.no_grad()
    def validate(self, epoch: int) -> EpochMetrics:
        self.model.eval()
        metrics = EpochMetrics(self.val_set.annotated_classes)
        config = self.config
        loader = _loader(self.val_images, config.batch, False, config.seed, epoch, config.workers)
        bar = self._bar(loader, f"epoch {epoch}/{config.epochs} val")
        for images, labels in bar:
            images, labels = self._to_device(images, labels)
            with autocast(self.device):
                logits = self.model(images)
            metrics.update(float(self.loss(logits, labels)), logits, labels)
            bar.set_postfix(loss=f"{metrics.loss:.4f}", wIoU=f"{metrics.weighted_iou:.3f}")
        return metrics

    def metadata(self, epoch: int, row: dict[str, Any]) -> CheckpointMetadata:
        config = self.config
        return CheckpointMetadata(
            width=config.width,
            num_classes=NUM_CLASSES,
            preprocessing=self.preprocessing,
            loss=config.loss,
            groups=config.groups,
            class_weights=tuple(float(w) for w in self.class_weights),
            training_data={
                **self.train_set.card(),
                "val_split": config.val_split,
                "train_images": len(self.train_images),
                "val_images": len(self.val_images),
                "limit": config.limit,
            },
            training={
                "optimizer": "Adam",
                "lr": config.lr,
                "lr_schedule": config.lr_schedule,
                "selected_by": config.select,
                "weight_decay": config.weight_decay,
                "amsgrad": True,
                "batch": config.batch,
                "epochs_requested": config.epochs,
                "seed": config.seed,
                "augmentation": f"p=0.5 rotation by an integer angle in ±{MAX_ROTATION}°, "
                "p=0.5 horizontal flip",
                "device": str(self.device),
                "amp": uses_amp(self.device),
                "channels_last": self.layout == torch.channels_last,
            },
            epochs=epoch,
            validation_metrics={k: v for k, v in row.items() if k.startswith("val_")},
            command=config.command,
        )

    def save_state(self, epoch: int) -> None:
        state = {
            "format": STATE_FORMAT,
            "epoch": epoch,
            "config": self.config.identity(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best_value": self.best_value,
            "torch_rng": torch.get_rng_state(),
        }
        temporary = self.paths.resume.with_name(f".{self.paths.resume.name}.tmp")
        torch.save(state, temporary)
        temporary.replace(self.paths.resume)

    def load_state(self) -> None:
        """Restore a previous run from its resume file."""
        path = self.paths.resume
        if not path.is_file():
            raise TrainingError(f"{path}: no resume state; run without --resume to start")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # any damage to the file: explain rather than crash
            raise TrainingError(f"{path}: unreadable resume state ({error})") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise TrainingError(f"{path}: not a resume state of models.train")
        saved, current = state["config"], self.config.identity()
        changed = [k for k in RESUME_KEYS if saved.get(k) != current.get(k)]
        if changed:
            listed = "; ".join(
                f"{k}: was {saved.get(k)!r}, now {current.get(k)!r}" for k in changed
            )
            raise TrainingError(f"{path}: cannot resume with different settings ({listed})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch = int(state["epoch"])
        self.best_value = float(state["best_value"])

    def _start_log(self) -> None:
        """A new log, or on resume the old one cut back to the epochs the state holds."""
        rows: list[dict[str, str]] = []
        if self.config.resume and self.paths.log.is_file():
            with self.paths.log.open(newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["epoch"]) <= self.epoch]
        self.paths.log.parent.mkdir(parents=True, exist_ok=True)
        with self.paths.log.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def _log(self, row: dict[str, Any]) -> None:
        with self.paths.log.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=CSV_COLUMNS).writerow(row)

    def run(self, on_batch: Callable[[int, int], None] | None = None) -> Path:
        """Train up to ``config.epochs``; returns the best checkpoint's path."""
        if self.config.resume:
            self.load_state()
        self._start_log()
        for epoch in range(self.epoch + 1, self.config.epochs + 1):
            train_metrics, seconds = self.train_epoch(epoch, on_batch)
            val_metrics = self.validate(epoch)
            value = (
                SELECTIONS[self.config.select]
                * {
                    "val_loss": val_metrics.loss,
                    "val_mean_iou": val_metrics.mean_iou,
                }[self.config.select]
            )
            improved = value > self.best_value
            row = {
                "epoch": epoch,
                "train_loss": round(train_metrics.loss, 6),
                "train_weighted_iou": round(train_metrics.weighted_iou, 6),
                "train_mean_iou": round(train_metrics.mean_iou, 6),
                "val_loss": round(val_metrics.loss, 6),
                "val_weighted_iou": round(val_metrics.weighted_iou, 6),
                "val_mean_iou": round(val_metrics.mean_iou, 6),
                "best": int(improved),
                "seconds": round(seconds, 3),
                "images_per_second": round(train_metrics.images / seconds, 3),
            }
            self._log(row)
            if improved:
                self.best_value = value
                save_checkpoint(self.paths.best, self.model, self.metadata(epoch, row))
            save_checkpoint(self.paths.last, self.model, self.metadata(epoch, row))
            self.save_state(epoch)
            self.epoch = epoch
            if self.config.progress:
                tqdm.write(
                    f"epoch {epoch}: train loss {row['train_loss']:.4f} "
                    f"wIoU {row['train_weighted_iou']:.3f}, val loss {row['val_loss']:.4f} "
                    f"wIoU {row['val_weighted_iou']:.3f} mIoU {row['val_mean_iou']:.3f}"
                    f"{' (best)' if improved else ''}, {row['images_per_second']:.1f} img/s"
                )
        return self.paths.best


def input_size(text: str) -> tuple[int, int]:
    """A network input ``HxW`` -> (H, W), as large as SegNet's five poolings need."""
    height, width = parse_size(text)
    if height < MIN_INPUT_SIZE or width < MIN_INPUT_SIZE:
        raise argparse.ArgumentTypeError(
            f"size {text!r}: SegNet needs at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}"
        )
    return height, width


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the dataset, its splits and how its files are read."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        type=Path,
        required=True,
        help="dataset folder: Cityscapes, KITTI or CamVid layout; 'demo' for the synthetic "
        "demo set (generated on first use)",
    )
    group.add_argument("--train-split", default="train", help="split to train on (default train)")
    group.add_argument(
        "--val-split",
        default="val",
        help="split for validation loss and checkpoint choice (default val)",
    )
    group.add_argument(
        "--limit",
        type=_positive_int,
        help="train on at most N images (a seeded random choice), for quick runs",
    )
    group.add_argument(
        "--interpolation",
        choices=tuple(INTERPOLATIONS),
        default="area",
        help="image resize method, recorded in the checkpoint (labels are always "
        "resized nearest); the recipe used nearest (default area)",
    )
    group.add_argument(
        "--no-dataset-cache",
        action="store_true",
        help="keep the cached class pixel counts out of the dataset folder, in "
        "$SEGBENCH_CACHE (default ~/.cache/segnet-review-bench); use for shared datasets",
    )
    group.add_argument(
        "--max-bad-share",
        type=float,
        default=DEFAULT_MAX_BAD_SHARE,
        metavar="SHARE",
        help="bad files (unreadable, wrong format) are skipped with a warning; stop when more "
        f"than this share of a split is bad (default {DEFAULT_MAX_BAD_SHARE:g})",
    )
    group.add_argument(
        "--workers",
        type=int,
        default=0,
        help="data-loading worker processes; 0 loads in the main process, "
        "best when the split is preloaded in memory (default 0)",
    )


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of what is trained and where it is written."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--loss",
        choices=LOSSES,
        required=True,
        help="ce: class-weighted cross-entropy; ial: importance-aware loss",
    )
    group.add_argument(
        "--out",
        type=Path,
        required=True,
        help="best checkpoint FILE.pt; also writes FILE.last.pt (last epoch), "
        "FILE.resume.pt (state to continue) and FILE.csv (per-epoch metrics)",
    )
    group.add_argument(
        "--width",
        type=float,
        default=1.0,
        help="channel width multiplier; 1.0 is the recipe's SegNet (29.5 M "
        "parameters), 0.25 or less suits a CPU (default 1.0)",
    )
    group.add_argument(
        "--size",
        type=input_size,
        default=(96, 96),
        help="network input HEIGHTxWIDTH; images and labels are resized to it "
        "(default 96x96, the recipe's)",
    )
    group.add_argument(
        "--groups", type=Path, help="TOML file of importance groups (default: the recipe's four)"
    )


def _add_optimiser_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the optimiser and its schedule."""
    group = parser.add_argument_group("optimisation")
    group.add_argument(
        "--epochs", type=_positive_int, default=100, help="epochs to train in total (default 100)"
    )
    group.add_argument("--batch", type=_positive_int, default=16, help="batch size (default 16)")
    group.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    group.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default="constant",
        help="constant: the recipe's fixed rate; cosine: decays from --lr to 0 over --epochs, "
        "so --resume must keep --epochs (default constant)",
    )
    group.add_argument(
        "--select",
        choices=tuple(SELECTIONS),
        default="val_loss",
        help="validation figure the best checkpoint is kept by: val_loss (lowest, the "
        "recipe's) or val_mean_iou (highest) (default val_loss)",
    )
    group.add_argument(
        "--weight-decay", type=float, default=2e-4, help="Adam weight decay (default 2e-4)"
    )


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of device, reproducibility and progress."""
    group = parser.add_argument_group("run")
    group.add_argument(
        "--device",
        choices=DEVICE_CHOICES,
        default="auto",
        help="auto: CUDA when available (with mixed precision and "
        "channels_last), else CPU (default auto)",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for initialisation, shuffling, augmentation and --limit; "
        "on the CPU the same seed gives the same weights (default 0)",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue from FILE.resume.pt after an interruption, or to train "
        "more epochs; the other settings must be the same",
    )
    group.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.train",
        description="Train SegNet with weighted cross-entropy (ce) or the importance-aware "
        "loss (ial) following the SegNet-IAL recipe (Adam, amsgrad, rotation +-10 degrees "
        "and horizontal flip, best checkpoint by validation loss).",
    )
    for add in (
        _add_model_arguments,
        _add_data_arguments,
        _add_optimiser_arguments,
        _add_run_arguments,
    ):
        add(parser)
    return parser


def config_from_args(argv: Sequence[str] | None = None) -> TrainConfig:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    groups = DEFAULT_GROUPS if args.groups is None else ImportanceGroups.load(args.groups)
    return TrainConfig(
        data=resolve_data(args.data),
        out=args.out,
        loss=args.loss,
        width=args.width,
        size=args.size,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        weight_decay=args.weight_decay,
        device=args.device,
        seed=args.seed,
        resume=args.resume,
        groups=groups,
        train_split=args.train_split,
        val_split=args.val_split,
        workers=args.workers,
        limit=args.limit,
        interpolation=args.interpolation,
        cache_in_dataset=not args.no_dataset_cache,
        progress=not args.quiet,
        command=shlex.join(["python", "-m", "models.train", *portable_arguments(argv)]),
        lr_schedule=args.lr_schedule,
        select=args.select,
        max_bad_share=args.max_bad_share,
    )


def portable_arguments(argv: Sequence[str]) -> list[str]:
    """The arguments with every local path cut to its last part, so that a recorded
    command names the data folder and output file without the training machine's paths."""
    result: list[str] = []
    follows_path_option = False
    for argument in argv:
        option, equals, value = argument.partition("=")
        if follows_path_option:
            argument = Path(argument).name or argument
        elif equals and option in PATH_OPTIONS:
            argument = f"{option}={Path(value).name or value}"
        follows_path_option = argument in PATH_OPTIONS
        result.append(argument)
    return result


def train(config: TrainConfig, on_batch: Callable[[int, int], None] | None = None) -> Path:
    """Run a training; ``on_batch(epoch, index)`` is called after every optimizer step."""
    return Trainer(config).run(on_batch)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = config_from_args(argv)
        trainer = Trainer(config)
    except (DatasetError, GroupsError, DeviceError, TrainingError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted while preparing the data; nothing saved.", file=sys.stderr)
        return 130
    try:
        best = trainer.run()
    except KeyboardInterrupt:
        paths = trainer.paths
        if trainer.epoch:
            print(
                f"\ninterrupted; epoch {trainer.epoch} is saved in {paths.resume}. "
                "Continue with the same command and --resume.",
                file=sys.stderr,
            )
        else:
            print("\ninterrupted before the first epoch finished; nothing saved.", file=sys.stderr)
        return 130
    except (TrainingError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"best checkpoint (by {trainer.config.select}): {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
