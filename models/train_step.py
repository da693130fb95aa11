"""The training step ``models.train`` runs, and its memory layout on the CPU, measured once.

One step is float16 autocast on CUDA (with loss scaling), then the loss in float32, zeroed
gradients (``set_to_none``), backward and the optimizer's step: :func:`training_step`, shared
by the trainer and ``bench/bench_train.py`` so both time the same thing.

On CUDA the layout is channels_last, always (``models.device``). On the CPU channels_last
(oneDNN's NHWC kernels for forward and backward) is the one candidate that computes the same
step up to float rounding; whether it pays depends on the CPU, the width and the input size,
so :func:`training_layout` measures it against the plain NCHW step at the start of a run, on
copies of the network and optimizer (the run's weights, BatchNorm statistics, optimizer state
and random streams stay untouched), with :class:`~models.cpu_tuning.CpuTuner`'s budget and
per-machine cache, and keeps it only when ``TRAINING_MARGIN`` faster. Not candidates:
bfloat16 autocast (its loss leaves float noise), fused or foreach Adam and ``torch.compile``
(``bench/bench_train.py`` measures them all beside the plain step; README has the figures).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import torch
from torch import nn

from models.cpu_tuning import CpuTuner, tuning_key
from models.device import autocast, grad_scaler, memory_format
from models.execution import PLAIN, Execution

TRAINING_MARGIN = 1.2
"""How much faster than the plain step a candidate must be to be used for training."""
TRAINING_OPTIONS = [PLAIN, Execution(channels_last=True, fold_batchnorm=False, autocast=None)]
"""The plain NCHW step first (the reference), then channels_last."""

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def training_step(
    model: nn.Module,
    loss_function: LossFunction,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    images: torch.Tensor,
    labels: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a batch already on the model's device and in its layout; the
    detached loss and logits."""
    with autocast(images.device):
        logits = model(images)
    loss = loss_function(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), logits.detach()


def layout_of(execution: Execution) -> torch.memory_format:
    return torch.channels_last if execution.channels_last else torch.contiguous_format


def training_layout(
    model: nn.Module,
    width: float,
    loss_function: LossFunction,
    new_optimizer: OptimizerFactory,
    batch: tuple[torch.Tensor, torch.Tensor],
    tuner: CpuTuner | None = None,
) -> torch.memory_format:
    """The memory layout to train ``model`` in on its device: measured on the CPU (on copies,
    with a batch shaped like the run's), channels_last on CUDA."""
    images, labels = batch
    if images.device.type != "cpu":
        return memory_format(images.device)
    trials: dict[Execution, tuple[nn.Module, torch.optim.Optimizer, torch.Tensor]] = {}
    scaler = grad_scaler(images.device)

    def prepare(option: Execution) -> None:
        trial = copy.deepcopy(model).train().to(memory_format=layout_of(option))
        trials[option] = (
            trial,
            new_optimizer(trial.parameters()),
            images.contiguous(memory_format=layout_of(option)),
        )

    def run(option: Execution) -> None:
        trial, optimizer, trial_images = trials[option]
        training_step(trial, loss_function, optimizer, scaler, trial_images, labels)

    key = "train " + tuning_key(width, (images.shape[-2], images.shape[-1]), len(images))
    tuner = tuner if tuner is not None else CpuTuner()
    return layout_of(tuner.execution(key, TRAINING_OPTIONS, run, prepare, TRAINING_MARGIN))
