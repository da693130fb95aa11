"""How one batch is run through a network, shared by the engine and the CPU tuner."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

from models.device import autocast


@dataclass(frozen=True)
class Execution:
    """How one batch is run: memory layout, BatchNorm folding, autocast dtype and the most
    images per forward call (``None``: the whole batch at once)."""

    channels_last: bool
    fold_batchnorm: bool
    autocast: torch.dtype | None
    chunk: int | None = None
    """Images per forward call."""

    def context(self, device: torch.device) -> AbstractContextManager:
        """The autocast to run under: the project's float16 AMP on CUDA, else this dtype's."""
        if self.autocast is None:
            return nullcontext()
        if device.type == "cuda":
            return autocast(device)
        return torch.autocast(device_type=device.type, dtype=self.autocast)

    def describe(self) -> str:
        """In a word for logs and tables: plain, or its folding, layout and images per call
        (fold = BatchNorm folded, NHWC = channels_last, /N = N images per call)."""
        if not (self.channels_last or self.fold_batchnorm):
            return "plain" if self.chunk is None else f"plain/{self.chunk}"
        parts = ["fold"] * self.fold_batchnorm + ["NHWC" if self.channels_last else "NCHW"]
        return "+".join(parts) + (f"/{self.chunk}" if self.chunk else "")


PLAIN = Execution(channels_last=False, fold_batchnorm=False, autocast=None)
"""The recipe's way: eager float32 NCHW with BatchNorm as its own layer."""
