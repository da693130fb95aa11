"""The paired bootstrap of B - A: equal to a plain loop over resamples, zero-width for
identical models, and a verdict that follows each score's direction."""

from __future__ import annotations

import numpy as np
import pytest

from models.comparison import compare, compared_quantities, resample_counts
from models.confusion import confusion_matrix
from models.labels import BACKGROUND, DEFAULT_GROUPS, NUM_EVALUATED
from models.metrics import default_severity_matrix
from models.scores import ConfusionStats

ANNOTATED = [0, 1, 2, 5, 8, 10, 11, 13]


def _split(seed: int, images: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Per-image matrices of two noisy models on random label maps of the annotated classes."""
    rng = np.random.default_rng(seed)
    a, b = [], []
    for _ in range(images):
        truth = rng.choice([*ANNOTATED, BACKGROUND], size=(24, 32))
        noisy = [np.where(rng.random(truth.shape) < p, rng.choice(ANNOTATED, truth.shape), truth)
                 for p in (0.3, 0.2)]  # fmt: skip
        a.append(confusion_matrix(truth, noisy[0]))
        b.append(confusion_matrix(truth, noisy[1]))
    return np.stack(a), np.stack(b)


def _template() -> ConfusionStats:
    return ConfusionStats(
        np.zeros((20, 20)), DEFAULT_GROUPS, default_severity_matrix(DEFAULT_GROUPS), ANNOTATED
    )


def _loop_iou(matrix: np.ndarray, train_id: int) -> float:
    tp = matrix[train_id, train_id]
    fn = matrix[train_id].sum() - tp
    fp = matrix[:NUM_EVALUATED, train_id].sum() - tp
    return np.nan if tp + fp + fn == 0 else tp / (tp + fp + fn)


def _loop_miou(matrix: np.ndarray) -> float:
    values = [_loop_iou(matrix, c) for c in ANNOTATED]
    defined = [v for v in values if not np.isnan(v)]
    return np.mean(defined) if defined else np.nan


def test_resample_counts_are_the_draws_counted() -> None:
    counts = resample_counts(7, 50, seed=4)
    draws = np.random.default_rng(4).integers(0, 7, (50, 7))
    for row in range(50):
        assert counts[row].tolist() == np.bincount(draws[row], minlength=7).tolist()


def test_intervals_equal_a_plain_loop_over_the_resamples() -> None:
    matrices_a, matrices_b = _split(1)
    resamples, seed = 200, 3
    comparison = compare(matrices_a, matrices_b, _template(), resamples=resamples, seed=seed)
    by_key = {d.key: d for d in comparison.differences}
    draws = np.random.default_rng(seed).integers(0, len(matrices_a), (resamples, len(matrices_a)))
    loop = {"miou": [], "class_iou/person": []}
    for row in draws:
        pooled_a, pooled_b = matrices_a[row].sum(axis=0), matrices_b[row].sum(axis=0)
        loop["miou"].append(_loop_miou(pooled_b) - _loop_miou(pooled_a))
        loop["class_iou/person"].append(_loop_iou(pooled_b, 11) - _loop_iou(pooled_a, 11))
    for key, values in loop.items():
        values = np.array(values)
        low, high = np.percentile(values[~np.isnan(values)], [2.5, 97.5])
        assert (by_key[key].low, by_key[key].high) == pytest.approx((low, high), abs=1e-12), key
    whole_a, whole_b = matrices_a.sum(axis=0), matrices_b.sum(axis=0)
    assert by_key["miou"].a == pytest.approx(_loop_miou(whole_a), abs=1e-12)
    assert by_key["miou"].difference == pytest.approx(
        _loop_miou(whole_b) - _loop_miou(whole_a), abs=1e-12
    )


def test_every_quantity_equals_its_single_split_computation_per_resample() -> None:
    matrices_a, matrices_b = _split(2, images=5)
    template = _template()
    comparison = compare(matrices_a, matrices_b, template, resamples=60, seed=8)
    draws = np.random.default_rng(8).integers(0, 5, (60, 5))
    for quantity, difference in zip(
        compared_quantities(template.groups, template.annotated),
        comparison.differences,
        strict=True,
    ):
        spread = []
        for row in draws:
            stats = [
                ConfusionStats(m[row].sum(axis=0), template.groups, template.severity, ANNOTATED)
                for m in (matrices_a, matrices_b)
            ]
            spread.append(float(quantity.compute(stats[1])) - float(quantity.compute(stats[0])))
        spread = np.array(spread)
        spread = spread[~np.isnan(spread)]
        if spread.size == 0:
            assert difference.low is None and difference.verdict == "undefined"
            continue
        assert (difference.low, difference.high) == pytest.approx(
            tuple(np.percentile(spread, [2.5, 97.5])), abs=1e-12
        ), quantity.key


def test_identical_models_give_a_zero_width_interval_at_zero() -> None:
    matrices, _ = _split(3)
    comparison = compare(matrices, matrices.copy(), _template(), resamples=300)
    for difference in comparison.differences:
        if difference.low is None:
            continue
        assert (difference.low, difference.high, difference.difference) == (0.0, 0.0, 0.0)
        assert difference.verdict == "within noise"


def test_verdict_follows_the_direction_of_each_score() -> None:
    rng = np.random.default_rng(5)
    a, b = [], []
    for _ in range(12):
        truth = rng.choice(ANNOTATED, size=(16, 16))
        a.append(confusion_matrix(truth, np.where(truth == 11, 10, truth)))  # persons as sky
        b.append(confusion_matrix(truth, truth))
    comparison = compare(np.stack(a), np.stack(b), _template(), resamples=200)
    verdicts = {d.key: d.verdict for d in comparison.differences}
    assert verdicts["miou"] == "B better"
    assert verdicts["critical_miss_rate"] == "B better", "lower is better"
    assert verdicts["class_iou/road"] == "within noise"
    swapped = compare(np.stack(b), np.stack(a), _template(), resamples=200)
    assert {d.key: d.verdict for d in swapped.differences}["critical_miss_rate"] == "A better"
    row = next(d for d in comparison.differences if d.key == "critical_miss_rate").row()
    assert row[0] == "critical-miss rate" and row[2] == "0.0%" and row[-1] == "B better"
