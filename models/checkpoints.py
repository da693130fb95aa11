"""One checkpoint file per model: the weights and everything needed to use and judge them.

The file is a ``torch.save`` of plain types only (dicts, lists, strings, numbers, tensors),
so it loads with ``torch.load(weights_only=True)``: a file that would need code execution to
unpickle is refused, never run. The recipe's bare ``state_dict`` also loads; its width and
class count come from the tensor shapes and its preprocessing is assumed to be the recipe's.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from models.labels import CLASS_NAMES, ImportanceGroups
from models.preprocess import RECIPE_PREPROCESSING, Preprocessing
from models.segnet import ENCODER_STAGES, SegNet

FORMAT = "segnet-review-bench/checkpoint"
FORMAT_VERSION = 1
ARCHITECTURE = "SegNet"
_FIRST_CONV = "conv1.conv.weight"
_OUT_CONV = "outconv1.conv.weight"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, unsafe or not matching SegNet."""


@dataclass(frozen=True)
class CheckpointMetadata:
    """What a checkpoint says about its model; ``None`` where a bare state_dict cannot say."""

    width: float
    num_classes: int
    preprocessing: Preprocessing
    architecture: str = ARCHITECTURE
    loss: str | None = None
    groups: ImportanceGroups | None = None
    class_weights: tuple[float, ...] | None = None
    class_names: tuple[str, ...] = CLASS_NAMES
    training_data: dict[str, Any] = field(default_factory=dict)
    """Dataset description, layout, root, splits and image counts used for training."""
    training: dict[str, Any] = field(default_factory=dict)
    """How it was trained: optimizer, learning rate, batch, augmentation, seed, device."""
    epochs: int | None = None
    validation_metrics: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    weights_sha256: str = ""
    created: str = ""

    @property
    def input_size(self) -> tuple[int, int]:
        return self.preprocessing.input_size

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible form, as stored in the file."""
        return {
            "architecture": self.architecture,
            "width": float(self.width),
            "num_classes": int(self.num_classes),
            "preprocessing": self.preprocessing.to_dict(),
            "loss": self.loss,
            "groups": None if self.groups is None else self.groups.to_dict(),
            "class_weights": None
            if self.class_weights is None
            else [float(w) for w in self.class_weights],
            "class_names": list(self.class_names),
            "training_data": dict(self.training_data),
            "training": dict(self.training),
            "epochs": self.epochs,
            "validation_metrics": dict(self.validation_metrics),
            "command": self.command,
            "weights_sha256": self.weights_sha256,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckpointMetadata:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown metadata fields: {', '.join(unknown)}")
        groups, weights = data.get("groups"), data.get("class_weights")
        values = dict(data)
        values["preprocessing"] = Preprocessing.from_dict(data["preprocessing"])
        values["groups"] = None if groups is None else ImportanceGroups.from_dict(groups)
        values["class_weights"] = None if weights is None else tuple(float(w) for w in weights)
        values["class_names"] = tuple(str(n) for n in data.get("class_names", CLASS_NAMES))
        values["width"] = float(data["width"])
        values["num_classes"] = int(data["num_classes"])
        return cls(**values)


@dataclass(frozen=True)
class LoadedCheckpoint:
    model: SegNet
    """In eval mode, on the CPU."""
    metadata: CheckpointMetadata
    file_hash: str
    """sha256 of the file's bytes: identifies exactly which file produced a result."""
    preprocessing: Preprocessing
    assumed_preprocessing: bool
    """True for a bare state_dict: the recipe's preprocessing is assumed, not recorded."""


def weights_hash(state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and values of the tensors, independent of layout."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(
    path: str | Path, model: SegNet, metadata: CheckpointMetadata
) -> CheckpointMetadata:
    """Write weights and metadata atomically (temporary file, then rename); returns the metadata
    as stored, with architecture, width, class count and weights hash taken from the model."""
    path = Path(path)
    state_dict = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = replace(
        metadata,
        architecture=ARCHITECTURE,
        width=float(model.width),
        num_classes=int(model.num_classes),
        weights_sha256=weights_hash(state_dict),
        created=metadata.created or datetime.now(UTC).isoformat(timespec="seconds"),
    )
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "metadata": metadata.to_dict(),
        "state_dict": state_dict,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return metadata


_CODE_EXECUTION_HINTS = ("global", "reduce", "class", "build")
"""Words in the safe loader's refusal when the pickle references functions or classes."""


def _refusal_detail(message: str) -> str:
    """The informative part of torch's weights-only error (between its boilerplate)."""
    detail = message.split("WeightsUnpickler error:")[-1]
    detail = detail.split("Check the documentation of torch.load")[0]
    if "Weights only load failed" in detail:
        detail = detail.split("trusted source.")[-1]
    return " ".join(detail.split())[:300]


def _unpickle(path: Path, data: bytes) -> Any:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        message = str(error)
        if "Weights only load failed" not in message:
            raise CheckpointError(
                f"{path}: corrupt file, not a PyTorch checkpoint ({error})"
            ) from None
        detail = _refusal_detail(message)
        if any(hint in detail.lower() for hint in _CODE_EXECUTION_HINTS):
            raise CheckpointError(
                f"{path}: refused: unpickling this file would execute code or build objects "
                f"other than tensors and plain data ({detail}). Nothing in it was executed; "
                "only checkpoints of plain weights and metadata are accepted."
            ) from None
        raise CheckpointError(
            f"{path}: refused: the safe loader cannot read it, so it is corrupt or holds "
            f"content that would need code execution ({detail}). Nothing in it was executed."
        ) from None
    except Exception as error:  # torch raises many types for damaged archives
        text = " ".join(str(error).split()).split(". ")[0][:200]
        reason = f"{type(error).__name__}: {text}" if text else type(error).__name__
        raise CheckpointError(
            f"{path}: corrupt or truncated file, not a readable PyTorch checkpoint ({reason})"
        ) from None


def _infer_shape(path: Path, state_dict: Mapping[str, Any]) -> tuple[float, int]:
    """Width and class count of a bare state_dict from its first and last conv."""
    first, last = state_dict.get(_FIRST_CONV), state_dict.get(_OUT_CONV)
    if not isinstance(first, torch.Tensor) or not isinstance(last, torch.Tensor):
        raise CheckpointError(
            f"{path}: not a SegNet checkpoint: no {_FIRST_CONV!r}/{_OUT_CONV!r} tensors "
            f"(found keys: {', '.join(list(state_dict)[:6])}...)"
        )
    if first.ndim != 4 or last.ndim != 4:
        raise CheckpointError(f"{path}: {_FIRST_CONV} and {_OUT_CONV} must be 4-D conv weights")
    return first.shape[0] / ENCODER_STAGES[0][0], int(last.shape[0])


def _build_model(path: Path, state_dict: Mapping[str, Any], width: float, classes: int) -> SegNet:
    try:
        model = SegNet(num_classes=classes, width=width)
        model.load_state_dict(state_dict, strict=True)
    except (RuntimeError, ValueError, TypeError, AttributeError) as error:
        details = " ".join(str(error).split())[:600]
        raise CheckpointError(
            f"{path}: weights do not match a SegNet of width {width:g} with {classes} classes: "
            f"{details}"
        ) from None
    return model.eval()


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Load a bench checkpoint or a recipe bare state_dict, without executing any code."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read checkpoint ({error.strerror})") from None
    if not data:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    file_hash = hashlib.sha256(data).hexdigest()
    content = _unpickle(path, data)
    if not isinstance(content, Mapping):
        raise CheckpointError(f"{path}: not a checkpoint: holds a {type(content).__name__}")

    if content.get("format") == FORMAT:
        if content.get("version") != FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format version {content.get('version')!r} is not supported "
                f"(this version reads {FORMAT_VERSION})"
            )
        state_dict = content.get("state_dict")
        if not isinstance(state_dict, Mapping):
            raise CheckpointError(f"{path}: checkpoint has no state_dict")
        try:
            metadata = CheckpointMetadata.from_dict(content.get("metadata") or {})
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{path}: invalid checkpoint metadata ({error})") from None
        if metadata.architecture != ARCHITECTURE:
            raise CheckpointError(f"{path}: architecture {metadata.architecture!r} is not SegNet")
        if weights_hash(state_dict) != metadata.weights_sha256:
            raise CheckpointError(
                f"{path}: weights do not match the hash recorded in the file (corrupt or altered)"
            )
        model = _build_model(path, state_dict, metadata.width, metadata.num_classes)
        return LoadedCheckpoint(model, metadata, file_hash, metadata.preprocessing, False)

    width, classes = _infer_shape(path, content)
    model = _build_model(path, content, width, classes)
    metadata = CheckpointMetadata(
        width=width,
        num_classes=classes,
        preprocessing=RECIPE_PREPROCESSING,
        weights_sha256=weights_hash(content),
        training_data={"description": "unknown: bare state_dict without metadata"},
    )
    return LoadedCheckpoint(model, metadata, file_hash, RECIPE_PREPROCESSING, True)
