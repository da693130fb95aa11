"""Benchmark: full-resolution labels of the fast exact path against the bilinear reference.

    python -m bench.bench_upsample [--images 6] [--repeats 5]

The reference is ``argmax(F.interpolate(logits, size, mode="bilinear",
align_corners=False))``, first maximum winning (:func:`models.upsampling.reference_labels`).
For every shipped trained checkpoint (``models/checkpoints/*.pt``) and every image of the
set (the real Cityscapes sample frame of ``../shared/data`` resized to 2048x1024 where it
exists, and synthetic road scenes rendered at 2048x1024), the labels of
:func:`models.upsampling.upsampled_labels` are compared with the reference's, pixel for
pixel, at 2048x1024 and at 1920x1080 (fractional scales). Then the two are timed at
2048x1024 (20 classes), median of ``--repeats`` interleaved repeats over the set, and the
ratio printed beside the share of source cells whose corners disagree.

Goals (FAIL and exit status 1 otherwise): every label identical; at least 5x the
reference at 2048x1024.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
import torch

from bench.bench_inference import median_seconds
from models.datasets import open_dataset
from models.inference import InferenceEngine
from models.synthetic import render_scene
from models.upsampling import cells, reference_labels, upsampled_labels

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = sorted((ROOT / "models" / "checkpoints").glob("*.pt"))
CITYSCAPES_SAMPLE = ROOT.parent / "shared" / "data" / "cityscapes-sample"
TIMED_SIZE = (1024, 2048)
CHECKED_SIZES = (TIMED_SIZE, (1080, 1920))
MIN_SPEEDUP = 5.0


def images(count: int) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 RGB 1024x2048): the real Cityscapes sample frame resized, if present,
    then synthetic scenes up to ``count`` images."""
    found = []
    if CITYSCAPES_SAMPLE.is_dir():
        dataset = open_dataset(CITYSCAPES_SAMPLE, "val")
        for sample in dataset.samples:
            image = dataset.read_image(sample)
            resized = cv2.resize(image, TIMED_SIZE[::-1], interpolation=cv2.INTER_LINEAR)
            found.append((sample.id, resized))
    seed = 0
    while len(found) < count:
        found.append((f"synthetic-{seed}", render_scene(seed, TIMED_SIZE).image))
        seed += 1
    return found[:count]


def check_identity(logits: Sequence[torch.Tensor]) -> tuple[int, int]:
    """(differing pixels, pixels) of the fast labels against the reference's."""
    differing = total = 0
    for item in logits:
        for size in CHECKED_SIZES:
            ours, theirs = upsampled_labels(item, size), reference_labels(item, size)
            differing += int((ours != theirs).sum())
            total += theirs.numel()
    return differing, total


def open_share(logits: Sequence[torch.Tensor]) -> float:
    """Share of source cells whose four corners do not settle one class."""
    return float(np.mean([(~cells(item).decided).float().mean().item() for item in logits]))


def timed(logits: Sequence[torch.Tensor], repeats: int) -> tuple[float, float]:
    """Median seconds of the reference and of the fast path over all ``logits``."""
    return tuple(
        median_seconds(
            [
                lambda: [reference_labels(item, TIMED_SIZE) for item in logits],
                lambda: [upsampled_labels(item, TIMED_SIZE) for item in logits],
            ],
            repeats,
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=6, help="images per checkpoint (6)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats, median (5)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    engine = InferenceEngine(device="cpu")
    inputs = images(args.images)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}; images: "
        f"{', '.join(name for name, _ in inputs)}; median of {args.repeats}"
    )
    failures = []
    for path in CHECKPOINTS:
        model = engine.load(path)
        logits = [engine.predict(model, image, resolution="input").logits for _, image in inputs]
        differing, total = check_identity(logits)
        reference, fast = timed(logits, args.repeats)
        ratio = reference / fast
        verdict = "ok" if differing == 0 and ratio >= MIN_SPEEDUP else "FAIL"
        if verdict == "FAIL":
            failures.append(path.name)
        classes, height, width = logits[0].shape
        print(
            f"{path.name:>16} logits {classes}x{height}x{width}: differing pixels {differing} of "
            f"{total}; at {TIMED_SIZE[1]}x{TIMED_SIZE[0]} reference "
            f"{reference / len(logits) * 1e3:.0f} ms/image, fast {fast / len(logits) * 1e3:.0f} "
            f"ms/image: {ratio:.1f}x (goal {MIN_SPEEDUP:.0f}x); open cells "
            f"{open_share(logits):.1%}  {verdict}"
        )
    if failures:
        print(f"FAIL: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
