"""Metrics against hand-worked examples and independent per-pixel computations."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.confusion import ConfusionMatrix, confusion_matrix, joint_confusion
from models.instances import instance_scores
from models.labels import (
    BACKGROUND,
    CLASS_NAMES,
    DEFAULT_GROUPS,
    INSTANCE_CLASSES,
    LABEL_ID_TO_TRAIN_ID,
    ImportanceGroups,
    label_ids_to_train_ids,
    train_id_of,
)
from models.metrics import (
    critical_miss_rate,
    default_severity_matrix,
    disagreement,
    disagreement_map,
    error_map,
    expected_cost,
    false_alarm_rate,
    false_alarm_rate_per_group,
    frequency_weighted_iou,
    group_confusion,
    group_iou,
    mean_iou,
    miss_rate_per_group,
    per_class_iou,
    pixel_accuracy,
    safety_error_score,
)
from models.scoring import ModelImageScores, ModelScores, SplitEvaluator, score_image

NAN = math.nan
ROAD, SIDEWALK, SKY, PERSON, CAR = (
    train_id_of(n) for n in ("road", "sidewalk", "sky", "person", "car")
)

# A hand-worked 2x5 example (default groups: sky/background 0, road/sidewalk 2, person/car 3).
HAND_GT = np.array(
    [[ROAD, ROAD, SIDEWALK, BACKGROUND, SKY], [PERSON, PERSON, CAR, BACKGROUND, SKY]], np.uint8
)
HAND_PRED = np.array(
    [[ROAD, SIDEWALK, SIDEWALK, PERSON, CAR], [PERSON, BACKGROUND, CAR, ROAD, SKY]], np.uint8
)


def image_scores(gt: np.ndarray, pred: np.ndarray) -> ModelImageScores:
    return score_image(gt, {"model": pred}).scores["model"]


def hand_cm() -> np.ndarray:
    return ConfusionMatrix().update(HAND_GT, HAND_PRED).numpy()


def random_pair(rng: np.random.Generator, shape=(37, 53), error=0.3):
    gt = rng.integers(0, 20, shape, dtype=np.uint8)
    noise = rng.integers(0, 20, shape, dtype=np.uint8)
    return gt, np.where(rng.random(shape) < error, noise, gt).astype(np.uint8)


def reference_iou(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Plain per-class loop over pixels, the textbook definition with void gt ignored."""
    valid = gt != BACKGROUND
    out = []
    for c in range(19):
        tp = np.sum((gt == c) & (pred == c))
        fp = np.sum(valid & (gt != c) & (pred == c))
        fn = np.sum((gt == c) & (pred != c))
        out.append(tp / (tp + fp + fn) if tp + fp + fn else NAN)
    return np.array(out)


def test_hand_worked_example() -> None:
    cm = hand_cm()
    iou = per_class_iou(cm)
    expected = np.full(19, NAN)
    expected[[ROAD, SIDEWALK, SKY, PERSON, CAR]] = 0.5
    np.testing.assert_array_equal(iou, expected)
    assert mean_iou(cm) == 0.5
    assert pixel_accuracy(cm) == 5 / 8
    assert frequency_weighted_iou(cm) == 0.5
    assert critical_miss_rate(cm, DEFAULT_GROUPS) == pytest.approx(1 / 3)
    assert false_alarm_rate(cm, DEFAULT_GROUPS) == pytest.approx(1 / 5)
    np.testing.assert_array_equal(miss_rate_per_group(cm, DEFAULT_GROUPS), [NAN, NAN, 0, 1 / 3])
    np.testing.assert_array_equal(false_alarm_rate_per_group(cm, DEFAULT_GROUPS), [NAN, 0, 0, 0.2])
    np.testing.assert_array_equal(
        group_confusion(cm, DEFAULT_GROUPS),
        [[1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 3, 0], [1, 0, 0, 2]],
    )
    np.testing.assert_array_equal(group_iou(cm, DEFAULT_GROUPS), [0.5, NAN, 0.5, 0.5])
    # person->background costs 1 + 2*3, road->sidewalk 1, sky->car 1 + 3.
    assert expected_cost(cm, default_severity_matrix(DEFAULT_GROUPS)) == 12 / 8
    # errors weighted by (true level + 1) / 4: 0.75 + 1 + 0.25.
    assert safety_error_score(cm, DEFAULT_GROUPS) == 2 / 8
    np.testing.assert_array_equal(
        error_map(HAND_GT, HAND_PRED), [[0, 3, 0, 255, 2], [0, 1, 0, 255, 0]]
    )


def test_per_class_iou_matches_per_pixel_loops() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        gt, pred = random_pair(rng)
        gt[gt == 5] = 6  # one class absent from gt, still predicted
        pred[pred == 7] = 8
        gt[gt == 7] = 8  # one class absent from both: NaN
        iou = per_class_iou(confusion_matrix(gt, pred))
        np.testing.assert_allclose(iou, reference_iou(gt, pred), rtol=0, atol=1e-15)
        assert math.isnan(iou[7]) and iou[5] == 0.0
        assert mean_iou(confusion_matrix(gt, pred)) == pytest.approx(
            np.nanmean(reference_iou(gt, pred)), abs=1e-12
        )


def test_frequency_weighted_iou_and_accuracy_independent() -> None:
    gt, pred = random_pair(np.random.default_rng(1))
    cm = confusion_matrix(gt, pred)
    valid = gt != BACKGROUND
    counts = np.array([np.sum(gt == c) for c in range(19)])
    ref = reference_iou(gt, pred)
    assert frequency_weighted_iou(cm) == pytest.approx(
        np.nansum(counts * ref) / counts.sum(), abs=1e-12
    )
    assert pixel_accuracy(cm) == pytest.approx(np.mean(gt[valid] == pred[valid]), abs=1e-12)


def test_streaming_equals_one_shot_and_merge() -> None:
    rng = np.random.default_rng(2)
    pairs = [random_pair(rng, shape) for shape in [(10, 20), (31, 7), (64, 48), (5, 5)]]
    stream = ConfusionMatrix()
    for gt, pred in pairs:
        stream.update(gt, pred)
    one_shot = confusion_matrix(
        np.concatenate([g.ravel() for g, _ in pairs]), np.concatenate([p.ravel() for _, p in pairs])
    ).numpy()
    np.testing.assert_array_equal(stream.matrix, one_shot)
    first, second = ConfusionMatrix(), ConfusionMatrix()
    for gt, pred in pairs[:2]:
        first.update(gt, pred)
    for gt, pred in pairs[2:]:
        second.update(gt, pred)
    np.testing.assert_array_equal(first.merge(second).matrix, one_shot)
    assert one_shot.sum() == sum(g.size for g, _ in pairs)
    stream.reset()
    assert stream.matrix.sum() == 0


def test_tensor_inputs_of_any_integer_dtype_and_batches() -> None:
    gt, pred = random_pair(np.random.default_rng(3))
    expected = confusion_matrix(gt, pred).numpy()
    as_long = confusion_matrix(torch.from_numpy(gt).long(), torch.from_numpy(pred).long())
    np.testing.assert_array_equal(as_long.numpy(), expected)
    np.testing.assert_array_equal(
        confusion_matrix(gt.astype(np.int32), pred.astype(np.int64)).numpy(), expected
    )
    batch = ConfusionMatrix().update(np.stack([gt, gt]), np.stack([pred, pred]))
    np.testing.assert_array_equal(batch.numpy(), 2 * expected)


def test_bad_inputs_are_named() -> None:
    gt, pred = random_pair(np.random.default_rng(4))
    raw = gt.copy()
    raw[0, 0] = 255
    with pytest.raises(ValueError, match="ground truth: value 255 is not a trainId"):
        confusion_matrix(raw, pred)
    with pytest.raises(ValueError, match=r"prediction: .*float32"):
        confusion_matrix(gt, pred.astype(np.float32))
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(gt, pred[:-1])
    with pytest.raises(ValueError, match="prediction: value -1"):
        confusion_matrix(gt, torch.full(gt.shape, -1))
    with pytest.raises(ValueError, match="20x20"):
        per_class_iou(np.zeros((19, 19)))
    with pytest.raises(ValueError, match="severity"):
        expected_cost(confusion_matrix(gt, pred), np.ones((20, 20)) * -1)
    with pytest.raises(ValueError, match="cannot be added"):
        ConfusionMatrix().add(np.zeros((19, 19), np.int64))
    with pytest.raises(ValueError, match="img7: prediction of ial: value 255"):
        SplitEvaluator(["ce", "ial"]).add("img7", gt, {"ce": pred, "ial": raw})


def test_joint_count_marginals_and_disagreement() -> None:
    rng = np.random.default_rng(5)
    gt, pred_a = random_pair(rng)
    _, pred_b = random_pair(rng)
    pred_b = np.where(rng.random(gt.shape) < 0.6, gt, pred_b).astype(np.uint8)
    joint = joint_confusion(gt, pred_a, pred_b)
    np.testing.assert_array_equal(joint.sum(2), confusion_matrix(gt, pred_a))
    np.testing.assert_array_equal(joint.sum(1), confusion_matrix(gt, pred_b))

    critical = np.isin(gt, DEFAULT_GROUPS.members[-1])
    right_a, right_b = pred_a == gt, pred_b == gt
    assert disagreement(gt, pred_a, pred_b) == {
        "both_right": int(np.sum(critical & right_a & right_b)),
        "only_a": int(np.sum(critical & right_a & ~right_b)),
        "only_b": int(np.sum(critical & ~right_a & right_b)),
        "both_wrong": int(np.sum(critical & ~right_a & ~right_b)),
    }
    codes = disagreement_map(gt, pred_a, pred_b)
    assert codes.dtype == np.uint8
    assert np.all(codes[~critical] == 255)
    expected = np.select(
        [right_a & right_b, right_a & ~right_b, ~right_a & right_b], [0, 1, 2], default=3
    )
    np.testing.assert_array_equal(codes[critical], expected[critical])


CUSTOM = ImportanceGroups(
    names=("rest", "vulnerable"),
    members=(
        tuple(c for c in range(20) if c not in (PERSON, train_id_of("rider"), BACKGROUND)),
        (PERSON, train_id_of("rider"), BACKGROUND),
    ),
)


def test_custom_groups_against_pixels() -> None:
    """Background in the top group still carries no truth; predicting it is a vulnerable hit."""
    gt, pred = random_pair(np.random.default_rng(6), shape=(60, 70))
    cm = confusion_matrix(gt, pred)
    top = np.isin(np.arange(20), CUSTOM.members[1])
    valid = gt != BACKGROUND
    critical = valid & top[gt]
    low = valid & ~top[gt]
    assert critical_miss_rate(cm, CUSTOM) == pytest.approx(
        np.sum(critical & ~top[pred]) / critical.sum(), abs=1e-12
    )
    assert false_alarm_rate(cm, CUSTOM) == pytest.approx(
        np.sum(low & top[pred]) / low.sum(), abs=1e-12
    )
    ref = reference_iou(gt, pred)
    assert group_iou(cm, CUSTOM)[1] == pytest.approx(np.mean(ref[[PERSON, train_id_of("rider")]]))
    levels = CUSTOM.group_of
    codes = error_map(gt, pred, CUSTOM)
    expected = np.where(
        ~valid,
        255,
        np.where(
            gt == pred,
            0,
            np.where(levels[pred] < levels[gt], 1, np.where(levels[pred] > levels[gt], 2, 3)),
        ),
    )
    np.testing.assert_array_equal(codes, expected)
    weights = (levels + 1) / 2
    assert safety_error_score(cm, CUSTOM) == pytest.approx(
        np.sum(weights[gt] * (valid & (gt != pred))) / valid.sum(), abs=1e-12
    )


def test_expected_cost_with_custom_severity() -> None:
    rng = np.random.default_rng(8)
    gt, pred = random_pair(rng)
    severity = rng.random((20, 20)) * 5
    valid = gt != BACKGROUND
    assert expected_cost(confusion_matrix(gt, pred), severity) == pytest.approx(
        severity[gt[valid], pred[valid]].mean(), abs=1e-12
    )
    default = default_severity_matrix(DEFAULT_GROUPS)
    assert np.all(np.diag(default) == 0)
    assert default[PERSON, SKY] > default[SKY, PERSON] > default[CAR, PERSON] > 0


def test_no_critical_pixels_and_empty_images_give_none_without_warnings() -> None:
    gt = np.full((8, 8), ROAD, np.uint8)
    pred = gt.copy()
    pred[:2] = PERSON
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = image_scores(gt, pred)
        assert scores["critical_miss_rate"] is None
        assert scores["false_alarm_rate"] == pytest.approx(16 / 64)
        assert scores.critical_pixels == 0
        empty = image_scores(np.full((4, 4), BACKGROUND, np.uint8), pred[:4, :4])
        assert empty["miou"] is None and empty["pixel_accuracy"] is None
        assert empty["critical_miss_rate"] is None and empty["expected_cost"] is None
        model = ModelScores.compute(confusion_matrix(gt, pred))
        assert model["critical_miss_rate"] is None
        json.dumps(model.to_dict(), allow_nan=False)


def test_classes_not_annotated_are_flagged_not_zero() -> None:
    gt, pred = random_pair(np.random.default_rng(9))
    annotated = {ROAD, SIDEWALK, SKY, PERSON, CAR, train_id_of("building")}
    gt = np.where(np.isin(gt, list(annotated)), gt, BACKGROUND).astype(np.uint8)
    cm = confusion_matrix(gt, pred)
    assert per_class_iou(cm)[train_id_of("truck")] == 0.0  # predicted, never annotated
    scores = ModelScores.compute(cm, annotated_classes=annotated)
    ref = reference_iou(gt, pred)
    assert scores["miou"] == pytest.approx(np.mean(ref[sorted(annotated)]), abs=1e-12)
    classes = scores.to_dict()["classes"]
    truck = classes[train_id_of("truck")]
    assert truck["iou"] is None and truck["annotated"] is False
    assert classes[CAR]["annotated"] is True and classes[CAR]["iou"] == pytest.approx(ref[CAR])
    assert "not annotated" in scores.report()


def read_png(path: Path) -> np.ndarray:
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert array is not None, path
    return array


def test_instance_ids_beyond_the_counted_range_change_no_score() -> None:
    """A car and a person, scored alike whether the map also holds an id far beyond any
    Cityscapes id (the scores then come from sorting, not counting the ids)."""
    car, person = train_id_of("car"), train_id_of("person")
    instances = np.zeros((40, 60), np.int32)
    instances[5:15, 10:30] = 26001
    instances[20:35, 40:50] = 24000
    pred = np.zeros((40, 60), np.uint8)
    pred[5:15, 10:20] = car
    pred[20:35, 40:50] = person
    plain = instance_scores(instances, {"m": pred})
    odd = instances.copy()
    odd[0, 0] = 2_000_000_000
    assert [s.instance_id for s in plain] == [24000, 26001]
    assert [s.recall["m"] for s in plain] == [1.0, 100 / 200]
    assert instance_scores(odd, {"m": pred}) == plain


def test_instance_scores_on_real_cityscapes(cityscapes_root: Path) -> None:
    instance_path = next(cityscapes_root.glob("gtFine/val/*/*_gtFine_instanceIds.png"))
    label_path = Path(str(instance_path).replace("instanceIds", "labelIds"))
    instances = read_png(instance_path).astype(np.int32)
    gt = label_ids_to_train_ids(read_png(label_path))
    shifted = np.roll(gt, 4, axis=1)
    no_people = np.where(gt == PERSON, BACKGROUND, gt).astype(np.uint8)
    scores = instance_scores(instances, {"shifted": shifted, "no_people": no_people}, 0.5)

    expected = {}
    for instance_id in np.unique(instances[instances >= 1000]):
        train_id = int(LABEL_ID_TO_TRAIN_ID[instance_id // 1000])
        if train_id not in INSTANCE_CLASSES:
            continue
        mask = instances == instance_id
        ys, xs = np.nonzero(mask)
        expected[int(instance_id)] = (
            train_id,
            int(mask.sum()),
            (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1),
            float(np.mean(shifted[mask] == train_id)),
            float(np.mean(no_people[mask] == train_id)),
        )
    assert {s.instance_id for s in scores} == set(expected)
    names = {s.class_name for s in scores}
    assert {"person", "car"} <= names
    for s in scores:
        train_id, pixels, box, recall_shifted, recall_none = expected[s.instance_id]
        assert (s.train_id, s.pixels, s.box) == (train_id, pixels, box)
        assert s.class_name == CLASS_NAMES[train_id]
        assert s.recall["shifted"] == pytest.approx(recall_shifted, abs=1e-12)
        assert s.recall["no_people"] == pytest.approx(recall_none, abs=1e-12)
        assert s.missed["shifted"] == (recall_shifted < 0.5)
        assert s.missed["no_people"] == (train_id == PERSON)


def test_split_evaluator_two_models(cityscapes_root: Path) -> None:
    instance_path = next(cityscapes_root.glob("gtFine/val/*/*_gtFine_instanceIds.png"))
    instances = read_png(instance_path).astype(np.int32)
    base = label_ids_to_train_ids(
        read_png(Path(str(instance_path).replace("instanceIds", "labelIds")))
    )
    rng = np.random.default_rng(10)
    evaluator = SplitEvaluator(["ce", "ial"])
    reference = {"ce": ConfusionMatrix(), "ial": ConfusionMatrix()}
    images = []
    for index in range(3):
        gt = np.roll(base, index * 5, axis=1)
        _, ce = random_pair(rng, gt.shape, error=0.1 * (index + 1))
        ce = np.where(rng.random(gt.shape) < 0.5, gt, ce).astype(np.uint8)
        ial = np.where(gt == PERSON, BACKGROUND if index == 2 else PERSON, ce).astype(np.uint8)
        result = evaluator.add(
            f"img{index}", gt, {"ce": ce, "ial": torch.from_numpy(ial)}, instances
        )
        reference["ce"].update(gt, ce)
        reference["ial"].update(gt, ial)
        for name, pred in (("ce", ce), ("ial", ial)):
            alone = image_scores(gt, pred)
            assert result.scores[name].to_dict() == alone.to_dict()
            np.testing.assert_array_equal(result.scores[name].confusion, confusion_matrix(gt, pred))
        assert result.disagreement == disagreement(gt, ce, ial)
        assert len(result.instances) == len(instance_scores(instances, {"ce": ce}))
        images.append(result)
    split = evaluator.result()
    for name in ("ce", "ial"):
        np.testing.assert_array_equal(split.models[name].confusion, reference[name].matrix)
        assert split.models[name]["miou"] == mean_iou(reference[name].matrix)
    worst = split.worst("ial", "safety_error", n=3)
    values = [image.scores["ial"]["safety_error"] for image in worst]
    assert values == sorted(values, reverse=True) and len(worst) == 3
    best_miou_last = [image.scores["ce"]["miou"] for image in split.worst("ce", "miou")]
    assert best_miou_last == sorted(best_miou_last)
    missed = split.missed_instances("ial")
    assert missed and all(instance.missed["ial"] for _, instance in missed)
    assert [i.pixels for _, i in missed] == sorted((i.pixels for _, i in missed), reverse=True)
    json.loads(split.to_json())
    report = split.report()
    assert "mIoU (pooled, Cityscapes)" in report and "frequency-weighted IoU" in report
    with pytest.raises(ValueError, match="expected"):
        evaluator.add("bad", base, {"ce": base})
    with pytest.raises(ValueError, match="cannot rank"):
        split.worst("ce", "colour")


def test_split_evaluator_single_model() -> None:
    gt, pred = random_pair(np.random.default_rng(11))
    evaluator = SplitEvaluator(["only"])
    result = evaluator.add("a", gt, {"only": pred})
    assert result.disagreement is None and result.instances == ()
    np.testing.assert_array_equal(
        evaluator.result().models["only"].confusion, confusion_matrix(gt, pred)
    )
