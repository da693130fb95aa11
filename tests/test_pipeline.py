"""The evaluation pipeline: reading ahead in order and bounded, scoring behind in order,
and a split evaluated through it scoring exactly as image by image."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from models.datasets import open_dataset
from models.evaluate import evaluate_split
from models.inference import InferenceEngine
from models.pipeline import Behind, read_ahead
from models.scoring import score_image
from models.suspects import suspects_of_pair

CHECKPOINTS = Path(__file__).resolve().parents[1] / "models" / "checkpoints"


def test_read_ahead_keeps_order_and_stays_within_its_depth():
    started: list[int] = []

    def read(item: int) -> int:
        started.append(item)
        return item * 10

    with read_ahead(range(20), read, depth=3) as reads:
        for consumed, value in enumerate(reads, start=1):
            assert value == (consumed - 1) * 10
            assert len(started) <= consumed + 3
    assert started == list(range(20))


def test_read_ahead_reads_in_another_thread():
    threads = set()
    with read_ahead(range(3), lambda item: threads.add(threading.get_ident()), 1) as reads:
        list(reads)
    assert threads and threading.get_ident() not in threads


def test_behind_runs_jobs_in_order_and_raises_their_failure():
    done: list[int] = []
    with Behind(depth=2) as behind:
        for n in range(6):
            behind.submit(lambda n=n: done.append(n))
    assert done == list(range(6))

    def fail() -> None:
        raise RuntimeError("scoring broke")

    behind = Behind()
    behind.submit(fail)
    with pytest.raises(RuntimeError, match="scoring broke"):
        behind.finish()


def test_split_scores_equal_image_by_image_scoring(tiny_synthetic: Path):
    dataset = open_dataset(tiny_synthetic, "val")
    engine = InferenceEngine(device="cpu")
    models = {name: engine.load(CHECKPOINTS / f"{name}.pt") for name in ("segnet-ce", "segnet-ial")}
    progress: list[tuple[int, int]] = []
    result = evaluate_split(
        dataset, engine, models, batch_size=3, progress=lambda *p: progress.append(p)
    )
    assert progress == [(3, 4), (4, 4)]
    for sample, image_result in zip(dataset.samples, result.images, strict=True):
        image, gt = dataset.read_image(sample), dataset.read_label(sample)
        predictions = {name: engine.predict(model, image) for name, model in models.items()}
        preds = {name: prediction.labels for name, prediction in predictions.items()}
        pair = tuple(predictions.values())
        suspects = suspects_of_pair(gt, pair, dataset.annotated_classes).regions
        expected = score_image(
            gt,
            preds,
            annotated=dataset.annotated_classes,
            instance_ids=dataset.read_instances(sample),
            sample_id=sample.id,
            suspects=suspects,
        )
        ours, theirs = image_result.to_dict(), expected.to_dict()
        for key in ("sample_id", "scores", "disagreement", "instances", "suspects"):
            assert ours[key] == theirs[key]
        assert ours["suspect_pixels"] == sum(region.pixels for region in suspects)
