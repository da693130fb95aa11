"""Benchmark: the split evaluation with the error taxonomy against the same evaluation without.

The demo set's val split (256x512 synthetic scenes; ``--images`` of them, all by default) is
evaluated with the two shipped demo checkpoints by ``models.evaluate.evaluate_split``, as
the evaluate command and the app do: inference, confusion matrices, instances, and the error
taxonomy with Boundary IoU (``taxonomy=True``) or without it (``taxonomy=False``, the
reference), in the same run. The split is cut into chunks of ``--chunk`` images (one
inference batch); each chunk is evaluated both ways back to back, alternating which goes
first, ``--repeats`` times, with the inference cache cleared before each evaluation so both
pay the same inference. The load of other users drifts slowly on this shared machine, so
the ratio is taken per chunk (medians over the repeats) and its median over the chunks is
judged. Also printed: the total times and the taxonomy's own cost per image and model
(``models.taxonomy.error_taxonomy`` on the same predictions) beside that of the previous
implementation (``bench/reference_taxonomy.py``), whose codes and counts it must equal.

Goal (FAIL and exit status 1 otherwise): with the taxonomy, at most 1.5x the time without;
the same codes and counts as the previous implementation.

Run: ``python -m bench.bench_taxonomy [--images 200] [--chunk 8] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.reference_taxonomy import compare_with_reference
from models.datasets import SegmentationDataset, open_dataset
from models.evaluate import evaluate_split
from models.inference import InferenceEngine, LoadedModel
from models.synthetic import ensure_demo_dataset

GOAL_RATIO = 1.5
CHECKPOINTS = Path(__file__).resolve().parents[1] / "models" / "checkpoints"
DEMO_PAIR = {"A": CHECKPOINTS / "segnet-ce.pt", "B": CHECKPOINTS / "segnet-ial.pt"}


def _evaluation_seconds(
    dataset: SegmentationDataset,
    engine: InferenceEngine,
    models: dict[str, LoadedModel],
    taxonomy: bool,
) -> float:
    engine.clear_cache()
    start = time.perf_counter()
    evaluate_split(dataset, engine, models, taxonomy=taxonomy)
    return time.perf_counter() - start


def _taxonomy_alone(
    dataset: SegmentationDataset, engine: InferenceEngine, models: dict[str, LoadedModel]
) -> tuple[float, float, bool]:
    """Median ms of one ``error_taxonomy`` call (one image, one model) and of the previous
    implementation's, and whether they agree on every image and model."""
    pairs = []
    for sample in dataset.samples:
        gt = dataset.read_label(sample)
        image = dataset.read_image(sample)
        for model in models.values():
            pairs.append((gt, engine.predict(model, image, sample.id).labels))
    return compare_with_reference(pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="default: the whole split")
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    dataset = open_dataset(ensure_demo_dataset(), "val")
    if args.images is not None:
        dataset = replace(dataset, samples=dataset.samples[: args.images])
    engine = InferenceEngine(device="cpu")
    models = {name: engine.load(path) for name, path in DEMO_PAIR.items()}
    samples = dataset.samples
    chunks = [
        replace(dataset, samples=samples[start : start + args.chunk])
        for start in range(0, len(samples), args.chunk)
    ]
    for taxonomy in (True, False):
        _evaluation_seconds(chunks[0], engine, models, taxonomy)
    times = {flag: [[] for _ in chunks] for flag in (True, False)}
    for repeat in range(args.repeats):
        for index, chunk in enumerate(chunks):
            order = (True, False) if (repeat + index) % 2 == 0 else (False, True)
            for taxonomy in order:
                seconds = _evaluation_seconds(chunk, engine, models, taxonomy)
                times[taxonomy][index].append(seconds)
    medians = {flag: [statistics.median(t) for t in times[flag]] for flag in times}
    ratio = statistics.median(
        with_taxonomy / without
        for with_taxonomy, without in zip(medians[True], medians[False], strict=True)
    )
    new_ms, old_ms, identical = _taxonomy_alone(dataset, engine, models)
    images = len(dataset)
    print(
        f"demo val, {images} images at 256x512 in {len(chunks)} chunks of {args.chunk}, "
        f"two models, {args.repeats} repeats"
    )
    for label, flag in (("without", False), ("with", True)):
        seconds = sum(medians[flag])
        print(
            f"  evaluation {label:>7} the taxonomy: {seconds:7.2f} s "
            f"({seconds / images * 1e3:.0f} ms/image)"
        )
    print(
        f"  error_taxonomy alone: {new_ms:.1f} ms per image and model, previous implementation "
        f"{old_ms:.1f} ms; codes and counts identical: {identical}"
    )
    verdict = "PASS" if ratio <= GOAL_RATIO and identical else "FAIL"
    print(
        f"ratio with / without, median over chunks: {ratio:.2f}x (goal <= {GOAL_RATIO}x): {verdict}"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
