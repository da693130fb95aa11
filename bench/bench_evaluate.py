"""Benchmark: split evaluation at Cityscapes size, the pipeline against the previous path.

    python -m bench.bench_evaluate [--images 24] [--repeats 3] [--no-taxonomy]

Two shipped models (``segnet-ce.pt`` and ``segnet-ial.pt``) score a synthetic val split of
2048x1024 images (generated once into the cache folder) with
:func:`models.evaluate.evaluate_split`: loader threads reading ahead, batches for the
network, exact fast full-resolution labels, scoring behind the network in a thread of its
own. The reference, measured in the same run, is the path before it, kept here only:
each batch read, then predicted with labels from ``F.interpolate`` and argmax, then
scored (with the suspect ground-truth search the scoring gained since), one step after
the other, the error taxonomy by the implementation and OpenCV threading of that time
(``bench/reference_taxonomy.py``, put in the scoring for the reference's run only).
Both start from an empty inference cache each time; the figure is images/s, median of
``--repeats`` interleaved repeats, and the scores of the two must be identical. With the
taxonomy on, ``error_taxonomy`` and the reference are also timed alone on the first
images' predictions (ms per model and image) and their codes compared.

Goals (FAIL and exit status 1 otherwise): identical scores (and taxonomy codes); at least
3x the reference's images/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

# As models.evaluate chooses it for its command: OpenMP threads wait passively (both paths).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.reference_taxonomy import as_it_was, compare_with_reference
from models.datasets import SegmentationDataset, open_dataset
from models.evaluate import evaluate_split
from models.inference import InferenceEngine, LoadedModel, Prediction
from models.scoring import SplitEvaluator, SplitScores
from models.suspects import suspects_of_pair
from models.synthetic import default_cache_dir, generate_dataset
from models.upsampling import reference_labels

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = [
    ROOT / "models" / "checkpoints" / f"{name}.pt" for name in ("segnet-ce", "segnet-ial")
]
SIZE = (1024, 2048)
BATCH = 8
MIN_SPEEDUP = 3.0


def cityscapes_sized_split(images: int) -> SegmentationDataset:
    """A synthetic val split of ``images`` scenes at 2048x1024, generated on first use."""
    folder = default_cache_dir() / f"bench-evaluate-{SIZE[1]}x{SIZE[0]}-{images}"
    if not (folder / "synthetic.json").exists():
        generate_dataset(folder, {"val": images}, seed=16, size=SIZE, progress=False)
    return open_dataset(folder, "val")


def previous_path(
    dataset: SegmentationDataset,
    engine: InferenceEngine,
    models: Mapping[str, LoadedModel],
    taxonomy: bool,
) -> SplitScores:
    """The evaluation as it was: read a batch, predict it with the reference labels, score
    it (with the error taxonomy of that time), in turn."""
    with as_it_was():
        return _previous_scores(dataset, engine, models, taxonomy)


def _previous_scores(
    dataset: SegmentationDataset,
    engine: InferenceEngine,
    models: Mapping[str, LoadedModel],
    taxonomy: bool,
) -> SplitScores:
    evaluator = SplitEvaluator(
        list(models),
        annotated_classes=dataset.annotated_classes,
        device=engine.device,
        taxonomy=taxonomy,
    )
    samples = dataset.samples
    for start in range(0, len(samples), BATCH):
        batch = samples[start : start + BATCH]
        images = [dataset.read_image(s) for s in batch]
        ids = [s.id for s in batch]
        predictions = {
            name: [
                Prediction(reference_labels(p.logits, image.shape[:2]).numpy(), p.logits)
                for p, image in zip(
                    engine.predict_batch(m, images, ids, "input"), images, strict=True
                )
            ]
            for name, m in models.items()
        }
        for n, sample in enumerate(batch):
            preds = {name: predictions[name][n] for name in models}
            gt, instances = dataset.read_label(sample), dataset.read_instances(sample)
            pair = tuple(preds.values())[:2]
            suspects = suspects_of_pair(gt, pair, dataset.annotated_classes).regions
            labels = {name: prediction.labels for name, prediction in preds.items()}
            evaluator.add(sample.id, gt, labels, instances, suspects=suspects)
    return evaluator.result()


def taxonomy_alone(
    dataset: SegmentationDataset, engine: InferenceEngine, models: Mapping[str, LoadedModel]
) -> tuple[float, float, bool]:
    """``error_taxonomy`` against the reference on the first two images' predictions."""
    pairs = []
    for sample in dataset.samples[:2]:
        image, gt = dataset.read_image(sample), dataset.read_label(sample)
        for model in models.values():
            prediction = engine.predict_batch(model, [image], [sample.id], "input")[0]
            pairs.append((gt, reference_labels(prediction.logits, image.shape[:2]).numpy()))
    return compare_with_reference(pairs)


def timed(run: Callable[[], SplitScores], engine: InferenceEngine) -> tuple[float, SplitScores]:
    engine.clear_cache()
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--images",
        type=int,
        default=24,
        help="images in the split (24: three batches, so that reading, the network and "
        "scoring overlap as in a real split; one batch shows only its start and end)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (3)")
    parser.add_argument(
        "--no-taxonomy", action="store_true", help="both paths without the error taxonomy"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dataset = cityscapes_sized_split(args.images)
    engine = InferenceEngine(device="cpu")
    models = {path.stem: engine.load(path) for path in CHECKPOINTS}
    taxonomy = not args.no_taxonomy
    runs = {
        "pipeline": lambda: evaluate_split(
            dataset, engine, models, batch_size=BATCH, taxonomy=taxonomy
        ),
        "previous": lambda: previous_path(dataset, engine, models, taxonomy),
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, SplitScores] = {}
    for repeat in range(args.repeats):
        order = list(runs) if repeat % 2 == 0 else list(reversed(runs))
        for name in order:
            elapsed, results[name] = timed(runs[name], engine)
            seconds[name].append(elapsed)
    rates = {name: len(dataset) / statistics.median(s) for name, s in seconds.items()}
    ratio = rates["pipeline"] / rates["previous"]
    identical = results["pipeline"].to_dict() == results["previous"].to_dict()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY="
        f"{os.environ['OMP_WAIT_POLICY']}, load average {os.getloadavg()[0]:.1f}; "
        f"{len(dataset)} images "
        f"{SIZE[1]}x{SIZE[0]}, models {', '.join(models)}, taxonomy {'on' if taxonomy else 'off'}, "
        f"median of {args.repeats}"
    )
    if taxonomy:
        new_ms, old_ms, same_codes = taxonomy_alone(dataset, engine, models)
        identical &= same_codes
        print(
            f"error_taxonomy alone: {new_ms:.0f} ms per model and image, previous implementation "
            f"{old_ms:.0f} ms ({old_ms / new_ms:.2f}x; both with OpenCV in the calling thread); "
            f"codes and counts identical: {same_codes}"
        )
    verdict = "ok" if identical and ratio >= MIN_SPEEDUP else "FAIL"
    print(
        f"pipeline {rates['pipeline']:.3f} images/s, previous path {rates['previous']:.3f} "
        f"images/s: {ratio:.2f}x (goal {MIN_SPEEDUP:.0f}x); scores identical: {identical}  "
        f"{verdict}"
    )
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
