"""Benchmark: exact full-resolution labels against argmax(F.interpolate(bilinear)).

For every shipped checkpoint (``models/checkpoints/*.pt``), demo images upscaled to the
Cityscapes size (2048x1024) are run through the engine at the network's input size; the
logits are turned into labels at 2048x1024 by ``models.inference.exact_upsampled_labels`` and by
the reference ``argmax(F.interpolate(logits, bilinear, align_corners=False))``, checked
identical on every image and timed against each other in the same run (median of
``--repeats`` interleaved repeats after a warm-up; the machine is shared, so only the ratio
counts).

Goal (FAIL and exit status 1 otherwise): identical labels everywhere, and every trained
checkpoint's labels at least 5x faster than the reference.

Run: ``python -m bench.bench_upsample [--repeats 5] [--images 4]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.bench_inference import demo_images, median_seconds
from models.catalogue import SHIPPED_CHECKPOINTS
from models.checkpoints import CheckpointError
from models.inference import InferenceEngine, exact_upsampled_labels, upsampled_labels

SIZE = (1024, 2048)
"""Output (height, width): Cityscapes' annotation size."""
MIN_SPEEDUP = 5.0


def real_size_images(count: int) -> list[np.ndarray]:
    """``count`` demo images (256x512) upscaled to :data:`SIZE`, the real-size input."""
    return [cv2.resize(i, SIZE[::-1], interpolation=cv2.INTER_LINEAR) for i in demo_images(count)]


def shipped_checkpoints() -> list[Path]:
    """The shipped model files (not the ``.last.pt``/``.resume.pt`` training states)."""
    return [p for p in sorted(SHIPPED_CHECKPOINTS.glob("*.pt")) if p.suffixes == [".pt"]]


def compare(logits: Sequence[torch.Tensor], repeats: int) -> tuple[bool, float, float]:
    """Whether labels match the reference on every image, and the median seconds per image
    of ours and of the reference."""
    identical = all(
        torch.equal(exact_upsampled_labels(item, SIZE), upsampled_labels(item, SIZE))
        for item in logits
    )
    ours, theirs = median_seconds(
        [
            lambda: [exact_upsampled_labels(item, SIZE) for item in logits],
            lambda: [upsampled_labels(item, SIZE) for item in logits],
        ],
        repeats,
    )
    return identical, ours / len(logits), theirs / len(logits)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed repeats per figure, median reported"
    )
    parser.add_argument(
        "--images", type=int, default=4, help="demo images upscaled to 2048x1024 (default 4)"
    )
    return parser


def report(name: str, result: tuple[bool, float, float], goal: bool) -> str | None:
    """Print one line; return its failure, if any."""
    identical, ours, theirs = result
    failure = None
    if not identical:
        failure = f"{name}: labels differ from the reference"
    elif goal and theirs / ours < MIN_SPEEDUP:
        failure = f"{name}: {theirs / ours:.2f}x < {MIN_SPEEDUP}x"
    print(
        f"{name:>22} | {ours * 1e3:8.1f} {theirs * 1e3:8.1f} {theirs / ours:6.2f}x | "
        f"{'identical' if identical else 'DIFFERENT'}  "
        f"{'FAIL' if failure else 'PASS' if goal else 'info'}",
        flush=True,
    )
    return failure


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    images = real_size_images(args.images)
    engine = InferenceEngine(device="cpu")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, load average {os.getloadavg()[0]:.1f}; "
        f"{len(images)} demo images at {SIZE[1]}x{SIZE[0]}, median of {args.repeats}\n"
        f"{'checkpoint':>22} | {'ours ms':>8} {'ref ms':>8} {'ratio':>7} |\n"
        "  ms per image; ref = argmax(F.interpolate(bilinear)) in the same run; random logits "
        "have no regions, so the reference path is taken (information only)"
    )
    failures = []
    for path in shipped_checkpoints():
        try:
            model = engine.load(path)
        except CheckpointError as error:
            print(f"{path.name:>22} | skipped: {error}")
            continue
        logits = [p.logits for p in engine.predict_batch(model, images, resolution="input")]
        failures.append(report(path.name, compare(logits, args.repeats), goal=True))
    generator = torch.Generator().manual_seed(0)
    noise = [torch.randn(20, 128, 256, generator=generator)]
    failures.append(report("random logits", compare(noise, args.repeats), goal=False))
    failures = [f for f in failures if f]
    for failure in failures:
        print(f"FAIL {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
