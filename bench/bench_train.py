"""Benchmark: the training step's candidates against the plain eager step, per width and size.

A step is ``models.train_step.training_step`` (forward, the real loss with the recipe's class
weights, zeroed gradients, backward, AMSGrad Adam step) on a batch of demo images, each
candidate on its own copy of one calibrated network. Printed per case: images/s of the plain
float32 NCHW step, then every candidate's images/s as a ratio against it, all measured in the
same run (median of ``--repeats`` interleaved repeats after a warm-up). Candidates: channels_last,
foreach and fused Adam, channels_last with fused Adam, oneDNN off (PyTorch's own kernels),
bfloat16 autocast in both layouts, and with ``--compile`` torch.compile (its compile time
printed: a cost at every start). Threads are not a candidate: ``torch.set_num_threads`` is
process-wide. Beside each ratio, the relative difference of its loss from the plain step's at
the first and the last of ``LOSS_STEPS`` steps from the same weights on the same batch, with a
float64 step's as the measure of float noise; and the layout ``models.train`` measures for this
case (fresh cache, its margin).

Run: ``python -m bench.bench_train [--repeats 5] [--batch 8] [--loss ial] [--compile]``.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from bench.bench_inference import (
    MATMUL_SIZE,
    calibrated_network,
    case_parser,
    conv_flops,
    matmul_gflops,
    median_seconds,
    parse_case,
)
from models.cpu_tuning import CpuTuner
from models.datasets import open_dataset
from models.device import grad_scaler
from models.labels import NUM_CLASSES
from models.losses import LOSSES, SegmentationLoss, class_weights
from models.preprocess import Preprocessing
from models.segnet import SegNet
from models.synthetic import ensure_demo_dataset
from models.train import TrainConfig
from models.train_step import TRAINING_MARGIN, training_layout, training_step

CASES = ("0.25@128x256", "0.5@128x256", "0.25@96x96", "0.5@96x96")
BACKWARD_FACTOR = 3
"""A training step costs about three forward passes: forward, input and weight gradients."""
LOSS_STEPS = 3
"""Steps from the same weights (after one warm-up step) whose losses are compared: the first
shows the step's own precision (float rounding: ~1e-7), the last how Adam amplifies it."""


@dataclass(frozen=True)
class Candidate:
    """One way to run the step: layout, optimizer implementation, autocast, kernels."""

    name: str
    channels_last: bool = False
    adam: str = "default"
    bfloat16: bool = False
    onednn: bool = True
    compiled: bool = False

    def context(self) -> AbstractContextManager:
        if self.bfloat16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext() if self.onednn else torch.backends.mkldnn.flags(enabled=False)


PLAIN_STEP = Candidate("plain")
CANDIDATES = (
    Candidate("channels_last", channels_last=True),
    Candidate("foreach Adam", adam="foreach"),
    Candidate("fused Adam", adam="fused"),
    Candidate("channels_last + fused", channels_last=True, adam="fused"),
    Candidate("oneDNN off", onednn=False),
    Candidate("bf16 autocast", bfloat16=True),
    Candidate("bf16 + channels_last", channels_last=True, bfloat16=True),
)
COMPILED = Candidate("torch.compile", compiled=True)


def demo_batch(
    count: int, preprocessing: Preprocessing
) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    """Images (N, 3, H, W) and trainId labels (N, H, W) of ``count`` demo training samples."""
    dataset = open_dataset(ensure_demo_dataset(progress=False), "train")
    samples = [dataset[n % len(dataset)] for n in range(count)]
    images = [dataset.read_image(s) for s in samples]
    labels = [preprocessing.resize_label(dataset.read_label(s)) for s in samples]
    return preprocessing.image_to_tensor(images), torch.from_numpy(np.stack(labels)), images


def new_adam(parameters, implementation: str = "default") -> torch.optim.Adam:
    """models.train's optimizer (Adam, AMSGrad, its default lr and weight decay)."""
    flags = {"foreach": {"foreach": True}, "fused": {"fused": True}}.get(implementation, {})
    return torch.optim.Adam(
        parameters, lr=TrainConfig.lr, weight_decay=TrainConfig.weight_decay, amsgrad=True, **flags
    )


def stepper(
    candidate: Candidate,
    network: torch.nn.Module,
    loss: SegmentationLoss,
    batch: tuple[torch.Tensor, torch.Tensor],
    dtype: torch.dtype = torch.float32,
) -> Callable[[], float]:
    """A step on a copy of ``network`` in this candidate's way, returning its loss."""
    layout = torch.channels_last if candidate.channels_last else torch.contiguous_format
    trial = copy.deepcopy(network).to(dtype=dtype, memory_format=layout).train()
    optimizer = new_adam(trial.parameters(), candidate.adam)
    model = torch.compile(trial) if candidate.compiled else trial
    images = batch[0].to(dtype).contiguous(memory_format=layout)
    scaler = grad_scaler(images.device)

    def step() -> float:
        with candidate.context():
            value, _ = training_step(model, loss, optimizer, scaler, images, batch[1])
        return float(value)

    return step


def first_call_seconds(step: Callable[[], float]) -> float:
    """Seconds of a step's first call (torch.compile compiles in it)."""
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def loss_curve(step: Callable[[], float]) -> np.ndarray:
    """The losses of ``LOSS_STEPS`` steps from the copied weights."""
    return np.array([step() for _ in range(LOSS_STEPS)])


def measure_case(
    width: float, size: tuple[int, int], args: argparse.Namespace, candidates: Sequence[Candidate]
) -> list[tuple[Candidate, float, np.ndarray, float]]:
    """Per step (plain first): images/s, relative loss differences from the plain step's
    curve, first-call seconds; the float64 step's loss differences last."""
    preprocessing = Preprocessing(input_size=size, channel_order="BGR", interpolation="area")
    images, labels, raw = demo_batch(args.batch, preprocessing)
    network = calibrated_network(width, preprocessing, raw)
    counts = np.bincount(labels.flatten().numpy(), minlength=NUM_CLASSES)
    loss = SegmentationLoss(args.loss, class_weights(counts))
    everyone = [PLAIN_STEP, *candidates]
    curves = [loss_curve(stepper(c, network, loss, (images, labels))) for c in everyone]
    exact = loss_curve(stepper(PLAIN_STEP, network, loss, (images, labels), torch.float64))
    differences = [np.abs(curve - curves[0]) / curves[0] for curve in [*curves, exact]]
    timed = [stepper(c, network, loss, (images, labels)) for c in everyone]
    firsts = [first_call_seconds(step) for step in timed]
    seconds = median_seconds(timed, args.repeats)
    rates = [args.batch / s for s in seconds]
    rows = list(zip(everyone, rates, differences[:-1], firsts, strict=True))
    return [*rows, (PLAIN_STEP, 0.0, differences[-1], 0.0)]


def chosen_layout(width: float, size: tuple[int, int], args: argparse.Namespace) -> str:
    """The layout models.train measures for this case, into a fresh cache file."""
    preprocessing = Preprocessing(input_size=size, channel_order="BGR", interpolation="area")
    images, labels, raw = demo_batch(args.batch, preprocessing)
    loss = SegmentationLoss(args.loss, class_weights(np.ones(NUM_CLASSES)))
    network = calibrated_network(width, preprocessing, raw)
    with tempfile.TemporaryDirectory() as folder:
        tuner = CpuTuner(Path(folder) / "cpu-executions.json")
        start = time.perf_counter()
        layout = training_layout(network, width, loss, new_adam, (images, labels), tuner)
    name = "channels_last" if layout == torch.channels_last else "plain NCHW"
    return f"{name} (measured in {time.perf_counter() - start:.1f} s)"


def build_parser() -> argparse.ArgumentParser:
    parser = case_parser(__doc__, CASES)
    parser.add_argument("--batch", type=int, default=8, help="images per step (default 8)")
    parser.add_argument("--loss", choices=LOSSES, default="ial", help="loss to train with")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed repeats per figure, median reported"
    )
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile (compiles per case)"
    )
    return parser


def print_case(
    name: str, rows: list[tuple[Candidate, float, np.ndarray, float]], gflops: float, chosen: str
) -> None:
    (plain, rate, _, _), noise = rows[0], rows[-1][2]
    print(
        f"{name:>13} | {plain.name:>22} {rate:7.1f} img/s {gflops:6.1f} GFLOP/s | "
        f"float64 loss diff {noise[0]:.0e} / {noise[-1]:.0e} | models.train uses: {chosen}"
    )
    for candidate, ours, difference, first in rows[1:-1]:
        cost = f", first step {first:.1f} s" if candidate.compiled else ""
        print(
            f"{'':>13} | {candidate.name:>22} {ours:7.1f} img/s {ours / rate:5.2f}x | "
            f"loss diff {difference[0]:.0e} / {difference[-1]:.0e}{cost}",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        raise SystemExit("--batch and --repeats must be at least 1")
    cases = args.case or [parse_case(c) for c in CASES]
    candidates = [*CANDIDATES, COMPILED] if args.compile else list(CANDIDATES)
    reference = matmul_gflops(args.repeats)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average {os.getloadavg()[0]:.1f}; "
        f"dense fp32 matmul {MATMUL_SIZE}x{MATMUL_SIZE}: {reference:.1f} GFLOP/s; batch "
        f"{args.batch}, loss {args.loss}, median of {args.repeats}\n  ratios against the plain "
        f"step of the same run; loss diff = |loss - plain's| / plain's at the first / last of "
        f"{LOSS_STEPS} steps from the same weights (float64's = float noise); models.train "
        f"uses a candidate at >= {TRAINING_MARGIN}x, measured"
    )
    for width, size in cases:
        rows = measure_case(width, size, args, candidates)
        gflops = BACKWARD_FACTOR * conv_flops(SegNet(width=width), size) * rows[0][1] / 1e9
        name = f"{width}@{size[0]}x{size[1]}"
        print_case(name, rows, gflops, chosen_layout(width, size, args))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
