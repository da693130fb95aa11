"""Benchmark: evaluating two models on one split, official workflow against ours.

The same model outputs (ground truth corrupted in known ways, 2048x1024 by default) are
scored (a) the official way: each model's predictions written as labelId PNGs, then
``cityscapesscripts``' ``evalPixelLevelSemanticLabeling`` (class IoU path) run once per
model; (b) ours: ground truth read through ``models.datasets`` and both models accumulated
in memory by ``SplitEvaluator`` (confusion matrices, per-image scores, disagreement).
The per-class IoUs and mIoUs must be identical; the speed ratio is printed, with the metric
cost per image set against a SegNet inference (forward at 96x96, logits upsampled to the
label size, argmax) measured in the same run.

Run: ``python -m bench.bench_metrics [--images 20] [--height 1024 --width 2048]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from models.datasets import open_dataset
from models.labels import (
    CLASS_NAMES,
    NUM_CLASSES,
    NUM_EVALUATED,
    label_ids_to_train_ids,
    train_ids_to_label_ids,
)
from models.scoring import SplitEvaluator
from models.segnet import SegNet

SAMPLE = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "cityscapes-sample"
    / "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png"
)
MODELS = ("ce", "ial")


def _base_label_ids(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Real Cityscapes layout upscaled when the sample is present, random blocks otherwise."""
    sample = cv2.imread(str(SAMPLE), cv2.IMREAD_UNCHANGED) if SAMPLE.is_file() else None
    if sample is not None:
        return cv2.resize(sample, (width, height), interpolation=cv2.INTER_NEAREST)
    blocks = rng.integers(0, 34, (height // 32 + 1, width // 32 + 1), dtype=np.uint8)
    return np.kron(blocks, np.ones((32, 32), np.uint8))[:height, :width]


def _make_split(root: Path, count: int, height: int, width: int) -> dict[str, list[np.ndarray]]:
    """Write a Cityscapes-layout val split; return the two models' trainId outputs."""
    rng = np.random.default_rng(0)
    base = _base_label_ids(height, width, rng)
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in MODELS}
    image = np.zeros((height, width, 3), np.uint8)
    for index in range(count):
        stem = f"benchcity_000000_{index:06d}"
        label_ids = np.roll(base, index * 37, axis=1)
        for folder, suffix, array in (
            ("leftImg8bit", "leftImg8bit", image),
            ("gtFine", "gtFine_labelIds", label_ids),
        ):
            path = root / folder / "val" / "benchcity" / f"{stem}_{suffix}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), array)
        truth = label_ids_to_train_ids(label_ids)
        for shift, name in ((3, "ce"), (9, "ial")):
            pred = np.roll(truth, shift, axis=0)
            for _ in range(10):
                y, x = rng.integers(0, height - 64), rng.integers(0, width - 64)
                pred[y : y + rng.integers(8, 64), x : x + rng.integers(8, 64)] = rng.integers(0, 20)
            outputs[name].append(pred)
    return outputs


def _official(root: Path, outputs: dict[str, list[np.ndarray]]) -> tuple[float, dict]:
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    official.args.evalInstLevelScore = False  # np.in1d, gone in numpy 2.4
    official.args.evalPixelAccuracy = False
    official.args.JSONOutput = False
    official.args.quiet = True
    gt_files = sorted(str(p) for p in root.glob("gtFine/val/*/*_gtFine_labelIds.png"))
    results = {}
    start = time.perf_counter()
    for name, predictions in outputs.items():
        folder = root / "results" / name
        folder.mkdir(parents=True)
        files = []
        for gt_file, pred in zip(gt_files, predictions, strict=True):
            path = folder / Path(gt_file).name.replace("gtFine_labelIds", "pred")
            cv2.imwrite(str(path), train_ids_to_label_ids(pred))
            files.append(str(path))
        results[name] = official.evaluateImgLists(files, gt_files, official.args)
    return time.perf_counter() - start, results


def _ours(root: Path, outputs: dict[str, list[np.ndarray]]) -> tuple[float, float, dict]:
    """Total time, and the part of it spent in metric work (not reading)."""
    dataset = open_dataset(root, "val")
    evaluator = SplitEvaluator(list(MODELS), annotated_classes=dataset.annotated_classes)
    metric_time = 0.0
    start = time.perf_counter()
    for index, sample in enumerate(dataset.samples):
        gt = dataset.read_label(sample)
        tick = time.perf_counter()
        evaluator.add(sample.id, gt, {name: outputs[name][index] for name in MODELS})
        metric_time += time.perf_counter() - tick
    tick = time.perf_counter()
    scores = evaluator.result()
    metric_time += time.perf_counter() - tick
    return time.perf_counter() - start, metric_time, scores.models


def _inference_time(height: int, width: int, repeats: int = 3) -> float:
    """Seconds per image for the recipe's SegNet at 96x96 with logits upsampled and argmaxed."""
    network = SegNet().eval()
    batch = torch.rand(1, 3, 96, 96)
    with torch.inference_mode():
        network(batch)
        start = time.perf_counter()
        for _ in range(repeats):
            logits = network(batch)
            up = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
            torch.softmax(up, dim=1).argmax(dim=1).to(torch.uint8)
    return (time.perf_counter() - start) / repeats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20, help="images in the split (20)")
    parser.add_argument("--height", type=int, default=1024, help="label height in pixels (1024)")
    parser.add_argument("--width", type=int, default=2048, help="label width in pixels (2048)")
    args = parser.parse_args(argv)
    if args.images < 1 or args.height < 96 or args.width < 96:
        parser.error("need at least one image of at least 96x96 pixels")

    with tempfile.TemporaryDirectory(prefix="bench_metrics_") as tmp:
        root = Path(tmp)
        print(f"writing {args.images} ground truths of {args.width}x{args.height} ...")
        outputs = _make_split(root, args.images, args.height, args.width)
        official_time, official_results = _official(root, outputs)
        our_time, metric_time, ours = _ours(root, outputs)

    worst = 0.0
    for name in MODELS:
        for train_id in range(NUM_EVALUATED):
            theirs = official_results[name]["classScores"][CLASS_NAMES[train_id]]
            mine = ours[name].iou[train_id]
            if math.isnan(theirs) != (mine is None):
                print(f"MISMATCH {name} {CLASS_NAMES[train_id]}: official {theirs}, ours {mine}")
                return 1
            if not math.isnan(theirs):
                worst = max(worst, abs(theirs - mine))
        worst = max(worst, abs(official_results[name]["averageScoreClasses"] - ours[name]["miou"]))
        print(
            f"{name}: mIoU official {official_results[name]['averageScoreClasses']:.6f}, "
            f"ours {ours[name]['miou']:.6f}"
        )
    if worst > 1e-6:
        print(f"MISMATCH: largest IoU difference {worst:.3g}")
        return 1

    inference = _inference_time(args.height, args.width)
    per_image = metric_time / args.images
    print(f"largest IoU difference: {worst:.3g} (classes: {NUM_CLASSES - 1} + background)")
    print(
        f"official (write PNGs + evaluate, 2 models): {official_time:.2f} s "
        f"({1000 * official_time / args.images:.1f} ms/image)"
    )
    print(
        f"ours (read gt + evaluate, 2 models):        {our_time:.2f} s "
        f"({1000 * our_time / args.images:.1f} ms/image)"
    )
    print(f"speed ratio official/ours: {official_time / our_time:.1f}x")
    print(
        f"metric work per image for 2 models: {1000 * per_image:.1f} ms; "
        f"inference of 2 models: {2000 * inference:.0f} ms "
        f"-> metrics add {100 * per_image / (2 * inference):.1f}% to inference"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
