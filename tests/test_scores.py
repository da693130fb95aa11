"""The table of scores and the ranking: labels, formats, None for undefined, and the
worst-first orders against per-pixel computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.labels import BACKGROUND, DEFAULT_GROUPS, train_id_of
from models.ranking import ORDERS_BY_LABEL, PAIR_ORDERS, rank
from models.scores import BY_KEY, IMAGE_KEYS, SCORES, SPLIT_SCORES, format_value
from models.scoring import ImageResult, ModelScores, score_image, split_rows, text_table

PERSON = train_id_of("person")


def _safety(gt: np.ndarray, pred: np.ndarray) -> float | None:
    """Importance-weighted error per evaluated pixel, pixel by pixel."""
    valid = gt != BACKGROUND
    if not valid.any():
        return None
    weight = (DEFAULT_GROUPS.group_of[gt] + 1) / DEFAULT_GROUPS.num_groups
    return float(np.sum(weight * (valid & (gt != pred))) / valid.sum())


def _images(rng: np.random.Generator) -> tuple[list[ImageResult], dict[str, tuple]]:
    """Eight random images scored under A and B, one without any evaluated pixel."""
    images, maps = [], {}
    for index in range(8):
        gt = rng.integers(0, 20, (24, 32), dtype=np.uint8)
        if index == 5:
            gt[:] = BACKGROUND
        a = np.where(rng.random(gt.shape) < 0.2 + 0.05 * index, 11, gt).astype(np.uint8)
        b = np.where(rng.random(gt.shape) < 0.5 - 0.05 * index, 0, gt).astype(np.uint8)
        sample_id = f"img{7 - index}"
        images.append(score_image(gt, {"A": a, "B": b}, sample_id=sample_id))
        maps[sample_id] = (gt, a, b)
    return images, maps


def _expected_order(values: dict[str, float | None], high_first: bool) -> list[str]:
    defined = sorted(
        (k for k, v in values.items() if v is not None),
        key=lambda k: (-values[k] if high_first else values[k], k),
    )
    return defined + sorted(k for k, v in values.items() if v is None)


def test_the_table_names_each_score_once_with_distinct_miou_labels() -> None:
    keys = [score.key for score in SCORES]
    assert len(set(keys)) == len(keys)
    assert IMAGE_KEYS == (
        "miou",
        "pixel_accuracy",
        "critical_miss_rate",
        "critical_segment_share",
        "false_alarm_rate",
        "safety_error",
        "expected_cost",
        "boundary_iou",
        "boundary_error_rate",
        "extent_error_rate",
        "segment_error_rate",
    )
    miou = BY_KEY["miou"]
    assert miou.label_of_split == "mIoU (pooled, Cityscapes)"
    assert miou.label_of_mean == "mean image mIoU"
    assert miou.label_of_image == "mIoU (this image)"
    assert "frequency_weighted_iou" in [s.key for s in SPLIT_SCORES]
    assert "frequency_weighted_iou" not in IMAGE_KEYS
    assert BY_KEY["critical_miss_rate"].text(0.1234) == "12.3%"
    assert BY_KEY["expected_cost"].text(1.23456) == "1.235"
    assert format_value(None) == format_value(None, percent=True) == "n/a"


def test_undefined_scores_are_none_and_written_as_n_a() -> None:
    gt = np.full((6, 6), train_id_of("road"), np.uint8)
    scores = score_image(gt, {"A": gt, "B": gt}).scores["A"]
    assert scores["critical_miss_rate"] is None and scores["false_alarm_rate"] == 0.0
    empty = ModelScores.compute(np.zeros((20, 20), np.int64))
    assert all(empty[s.key] is None for s in SPLIT_SCORES)
    assert all(value is None for value in empty.iou + empty.group_iou)
    assert {row[1] for row in split_rows({"A": empty})} == {"n/a"}
    assert not any(isinstance(v, float) and math.isnan(v) for v in empty.to_dict().values())
    assert "n/a" in text_table({"A": empty})


def test_orders_rank_worst_first_as_the_pixels_say_and_unscored_images_last() -> None:
    images, maps = _images(np.random.default_rng(12))
    safety = {k: (_safety(gt, a), _safety(gt, b)) for k, (gt, a, b) in maps.items()}
    expected = {
        "safety error of either model": (
            {k: max(v) if v[0] is not None else None for k, v in safety.items()},
            True,
        ),
        "safety error of B": ({k: v[1] for k, v in safety.items()}, True),
        "improvement of B over A": (
            {k: v[0] - v[1] if v[0] is not None else None for k, v in safety.items()},
            True,
        ),
        "regression of B against A": (
            {k: v[1] - v[0] if v[0] is not None else None for k, v in safety.items()},
            True,
        ),
    }
    for label, (values, high_first) in expected.items():
        ranked = rank(images, ORDERS_BY_LABEL[label])
        assert [image.sample_id for image, _ in ranked] == _expected_order(values, high_first)
        for image, value in ranked:
            assert value == pytest.approx(values[image.sample_id], abs=1e-12), label
    assert rank(images, ORDERS_BY_LABEL["safety error of A"])[-1][0].sample_id == "img2"


def test_miou_ranks_lowest_first_and_disagreement_counts_critical_pixels() -> None:
    images, maps = _images(np.random.default_rng(13))
    miou = {image.sample_id: image.value("A", "miou") for image in images}
    ranked = rank(images, ORDERS_BY_LABEL["mIoU of A"])
    assert [image.sample_id for image, _ in ranked] == _expected_order(miou, high_first=False)
    disagreement = {}
    critical = DEFAULT_GROUPS.group_of == DEFAULT_GROUPS.most_important
    for sample_id, (gt, a, b) in maps.items():
        judged = critical[gt] & (gt != BACKGROUND)
        one_right = judged & ((a == gt) != (b == gt))
        disagreement[sample_id] = float(one_right.sum())
    ranked = rank(images, ORDERS_BY_LABEL["disagreement on critical pixels"])
    assert {image.sample_id: value for image, value in ranked} == disagreement
    assert [image.sample_id for image, _ in ranked] == _expected_order(disagreement, True)
    by_name = rank(images, ORDERS_BY_LABEL["name"])
    assert [image.sample_id for image, _ in by_name] == sorted(maps)
    assert PAIR_ORDERS[0].label == "safety error of either model"
