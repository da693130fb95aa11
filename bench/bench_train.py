"""Benchmark: SegNet training throughput on the CPU, per width and input size.

A training step is the one ``models.train`` runs (float32 NCHW forward, the real loss with
the recipe's class weights, backward, AMSGrad Adam step) on a batch of demo images. Its
images/s are printed beside two references measured in the same run: the eager float32
forward pass alone (``no_grad``, the recipe's inference) at the same batch, and this
machine's dense float32 matmul GFLOP/s, with the step's achieved GFLOP/s (3 x the forward's
FLOPs: forward, gradient of the inputs and of the weights) as a share of it. Figures are
medians of ``--repeats`` interleaved repeats after a warm-up step.

Run: ``python -m bench.bench_train [--repeats 5] [--batch 8] [--loss ial]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
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
from models.datasets import open_dataset
from models.labels import NUM_CLASSES
from models.losses import LOSSES, SegmentationLoss, class_weights
from models.preprocess import Preprocessing
from models.segnet import SegNet
from models.synthetic import ensure_demo_dataset

CASES = ("0.25@128x256", "0.5@128x256", "0.25@96x96", "0.5@96x96")
BACKWARD_FACTOR = 3
"""A training step costs about three forward passes: forward, input and weight gradients."""


def demo_batch(
    count: int, preprocessing: Preprocessing
) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    """Images (N, 3, H, W) and trainId labels (N, H, W) of ``count`` demo training samples."""
    dataset = open_dataset(ensure_demo_dataset(progress=False), "train")
    samples = [dataset[n % len(dataset)] for n in range(count)]
    images = [dataset.read_image(s) for s in samples]
    labels = [preprocessing.resize_label(dataset.read_label(s)) for s in samples]
    return preprocessing.image_to_tensor(images), torch.from_numpy(np.stack(labels)), images


def measure(
    width: float, size: tuple[int, int], batch: int, loss_name: str, repeats: int
) -> tuple[float, float]:
    """Images/s of a training step and of the eager forward pass alone."""
    preprocessing = Preprocessing(input_size=size, channel_order="BGR", interpolation="area")
    images, labels, raw = demo_batch(batch, preprocessing)
    network = calibrated_network(width, preprocessing, raw)
    counts = np.bincount(labels.flatten().numpy(), minlength=NUM_CLASSES)
    loss = SegmentationLoss(loss_name, class_weights(counts))
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4, amsgrad=True)

    def step() -> None:
        network.train()
        value = loss(network(images), labels)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()

    def forward() -> None:
        network.eval()
        with torch.no_grad():
            network(images)

    train_seconds, forward_seconds = median_seconds([step, forward], repeats)
    return batch / train_seconds, batch / forward_seconds


def build_parser() -> argparse.ArgumentParser:
    parser = case_parser(__doc__, CASES)
    parser.add_argument("--batch", type=int, default=8, help="images per step (default 8)")
    parser.add_argument("--loss", choices=LOSSES, default="ial", help="loss to train with")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed repeats per figure, median reported"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        raise SystemExit("--batch and --repeats must be at least 1")
    cases = args.case or [parse_case(c) for c in CASES]
    reference = matmul_gflops(args.repeats)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average "
        f"{os.getloadavg()[0]:.1f}; dense fp32 matmul "
        f"{MATMUL_SIZE}x{MATMUL_SIZE}: {reference:.1f} GFLOP/s; batch {args.batch}, "
        f"loss {args.loss}, median of {args.repeats}"
    )
    print(
        f"{'case':>13} | {'train':>7} {'forward':>8} {'ratio':>6} | {'GFLOP/s':>7} {'%mm':>5}"
        "  (images/s; train = full step, forward = eager no_grad forward only)"
    )
    for width, size in cases:
        train_rate, forward_rate = measure(width, size, args.batch, args.loss, args.repeats)
        gflops = BACKWARD_FACTOR * conv_flops(SegNet(width=width), size) * train_rate / 1e9
        print(
            f"{f'{width}@{size[0]}x{size[1]}':>13} | {train_rate:7.1f} {forward_rate:8.1f} "
            f"{train_rate / forward_rate:5.2f}x | {gflops:7.1f} {gflops / reference:5.1%}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
