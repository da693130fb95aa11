"""Device choice and the speed features that depend on it, shared by training and inference.

On CUDA the bench uses mixed precision (float16 autocast) and channels_last tensors, which
are faster on tensor cores. On the CPU mixed precision is off, so CPU runs stay exact and
reproducible, and the layout is measured per machine where it is chosen (``models.train_step``
for training, ``models.cpu_tuning`` for inference); :func:`memory_format` is the default one.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from models.options import DEVICE_CHOICES


class DeviceError(ValueError):
    """A requested device that this machine does not have."""


def select_device(choice: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; asking for ``cuda`` without it is a clear error."""
    if choice not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {choice!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "device 'cuda' was requested but no CUDA GPU is usable here "
            f"(torch {torch.__version__}, built with CUDA: {torch.version.cuda or 'no'}); "
            "use --device cpu or auto"
        )
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def uses_amp(device: torch.device) -> bool:
    """Mixed precision only where it pays off and float16 kernels exist: CUDA."""
    return device.type == "cuda"


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA (faster convolutions), the default layout elsewhere."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def autocast(device: torch.device) -> AbstractContextManager:
    """float16 autocast on CUDA, a no-op elsewhere."""
    if uses_amp(device):
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return nullcontext()


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for float16 training; disabled (a pass-through) without AMP."""
    return torch.amp.GradScaler(device.type, enabled=uses_amp(device))
