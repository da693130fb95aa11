"""Benchmark: the paired bootstrap of B - A, vectorised against a plain loop over resamples.

Two models' per-image confusion matrices over a split (random, with every evaluated class
present; 500 images by default) are compared with ``models.comparison.compare`` (1000
resamples by default). The reference, measured in the same run, is the plain loop: each
resample pooled with a Python sum and scored with one metric call per quantity and model;
it is timed on a share of the resamples and scaled. Printed: the median seconds of the
vectorised comparison, its speed ratio against the loop, and PASS/FAIL against the goal of
2 s for 500 images and 1000 resamples. The two give the same intervals (tests/test_comparison.py).

Run: ``python -m bench.bench_comparison [--images 500] [--resamples 1000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from models.comparison import compare, compared_quantities
from models.labels import DEFAULT_GROUPS, NUM_CLASSES
from models.metrics import default_severity_matrix
from models.scores import ConfusionStats

GOAL_SECONDS = 2.0


def _matrices(images: int, rng: np.random.Generator) -> np.ndarray:
    """(images, 20, 20) counts: mostly right, some confusions, like a trained model's."""
    diagonal = np.eye(NUM_CLASSES) * rng.integers(1_000, 50_000, (images, NUM_CLASSES, 1))
    return (diagonal + rng.integers(0, 300, (images, NUM_CLASSES, NUM_CLASSES))).astype(np.int64)


def _loop(a: np.ndarray, b: np.ndarray, template: ConfusionStats, resamples: int) -> None:
    """The reference: one resample at a time, one metric call per quantity and model."""
    quantities = compared_quantities(template.groups, template.annotated)
    draws = np.random.default_rng(0).integers(0, len(a), (resamples, len(a)))
    for row in draws:
        stats = [
            ConfusionStats(m[row].sum(axis=0), template.groups, template.severity, None)
            for m in (a, b)
        ]
        for quantity in quantities:
            quantity.compute(stats[1]) - quantity.compute(stats[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--loop-share", type=float, default=0.05, help="share of resamples the loop is timed on"
    )
    args = parser.parse_args(argv)
    rng = np.random.default_rng(1)
    a, b = _matrices(args.images, rng), _matrices(args.images, rng)
    template = ConfusionStats(a[0], DEFAULT_GROUPS, default_severity_matrix(DEFAULT_GROUPS), None)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        compare(a, b, template, resamples=args.resamples)
        times.append(time.perf_counter() - start)
    vectorised = statistics.median(times)
    loop_resamples = max(1, int(args.resamples * args.loop_share))
    start = time.perf_counter()
    _loop(a, b, template, loop_resamples)
    loop = (time.perf_counter() - start) * args.resamples / loop_resamples
    goal = GOAL_SECONDS * (args.images / 500) * (args.resamples / 1000)
    verdict = "PASS" if vectorised <= goal else "FAIL"
    print(
        f"{args.images} images x {args.resamples} resamples: vectorised {vectorised:.2f} s "
        f"(median of {args.repeats}), plain loop {loop:.1f} s (scaled from {loop_resamples}), "
        f"{loop / vectorised:.0f}x faster; goal {goal:.1f} s: {verdict}"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
