"""Our per-class IoU and mIoU equal the official Cityscapes evaluation's, to 1e-6.

Predictions are written as labelId PNGs and scored by ``cityscapesscripts``'
``evalPixelLevelSemanticLabeling``; ours are computed in memory from the same arrays.
cityscapesscripts 2.3 calls ``np.in1d`` (removed in numpy 2.4) in its instance-level and
pixel-accuracy paths, so those are switched off here; its class-level IoU path is the one
compared.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.confusion import ConfusionMatrix
from models.labels import (
    CLASS_NAMES,
    LABEL_ID_BY_NAME,
    NUM_EVALUATED,
    label_ids_to_train_ids,
    train_id_of,
    train_ids_to_label_ids,
)
from models.metrics import mean_iou, per_class_iou


@pytest.fixture
def official(monkeypatch: pytest.MonkeyPatch):
    """The official pixel-level module, configured for class IoU only (restored afterwards)."""
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as module

    settings = {
        "evalInstLevelScore": False,
        "evalPixelAccuracy": False,
        "JSONOutput": False,
        "quiet": True,
        "evalLabels": [],
    }
    for name, value in settings.items():
        monkeypatch.setattr(module.args, name, value)
    return module


def _read_label_ids(path: Path) -> np.ndarray:
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert array is not None and array.ndim == 2, path
    return array


def _corruptions(train_ids: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Predictions wrong in known ways: shifted, classes swapped, noise blobs."""
    height, width = train_ids.shape
    shifted = np.roll(train_ids, (max(1, height // 20), -max(1, width // 15)), axis=(0, 1))
    swap = np.arange(20, dtype=np.uint8)
    for a, b in (("car", "truck"), ("road", "sidewalk"), ("person", "background")):
        swap[train_id_of(a)], swap[train_id_of(b)] = train_id_of(b), train_id_of(a)
    swapped = swap[train_ids]
    blobs = train_ids.copy()
    for _ in range(12):
        y, x = rng.integers(0, height), rng.integers(0, width)
        h, w = rng.integers(1, height // 3 + 2), rng.integers(1, width // 3 + 2)
        blobs[y : y + h, x : x + w] = rng.integers(0, 20)
    return [shifted, swapped, blobs]


def _evaluate_both(
    official, tmp_path: Path, pairs: list[tuple[Path, np.ndarray]]
) -> tuple[dict, np.ndarray]:
    """Write each prediction (label ids) beside its ground truth; score with both."""
    prediction_dir = tmp_path / "predictions"
    prediction_dir.mkdir(exist_ok=True)
    ours = ConfusionMatrix()
    gt_files, prediction_files = [], []
    for index, (gt_path, prediction_label_ids) in enumerate(pairs):
        prediction_path = prediction_dir / f"pred_{index:03d}.png"
        assert cv2.imwrite(str(prediction_path), prediction_label_ids)
        gt_files.append(str(gt_path))
        prediction_files.append(str(prediction_path))
        ours.update(
            label_ids_to_train_ids(_read_label_ids(gt_path)),
            label_ids_to_train_ids(_read_label_ids(prediction_path)),
        )
    result = official.evaluateImgLists(prediction_files, gt_files, official.args)
    return result, ours.matrix


def _assert_same_scores(result: dict, cm: np.ndarray) -> None:
    iou = per_class_iou(cm)
    for train_id in range(NUM_EVALUATED):
        theirs = result["classScores"][CLASS_NAMES[train_id]]
        if math.isnan(theirs):
            assert math.isnan(iou[train_id]), CLASS_NAMES[train_id]
        else:
            assert iou[train_id] == pytest.approx(theirs, abs=1e-6), CLASS_NAMES[train_id]
    assert mean_iou(cm) == pytest.approx(result["averageScoreClasses"], abs=1e-6)


def test_real_cityscapes_sample(official, cityscapes_root: Path, tmp_path: Path) -> None:
    gt_path = next(cityscapes_root.glob("gtFine/val/*/*_gtFine_labelIds.png"))
    gt_train_ids = label_ids_to_train_ids(_read_label_ids(gt_path))
    predictions = _corruptions(gt_train_ids, np.random.default_rng(1))
    pairs = [(gt_path, train_ids_to_label_ids(p)) for p in predictions]
    result, cm = _evaluate_both(official, tmp_path, pairs)
    assert np.isnan(per_class_iou(cm)).any(), "the sample lacks some classes: NaN path tested"
    _assert_same_scores(result, cm)


def test_unevaluated_predicted_ids_count_like_the_official(
    official, cityscapes_root: Path, tmp_path: Path
) -> None:
    """Predicting void/parking/guard rail ids (not only 'unlabeled') on evaluated pixels."""
    gt_path = next(cityscapes_root.glob("gtFine/val/*/*_gtFine_labelIds.png"))
    label_ids = _read_label_ids(gt_path)
    prediction = label_ids.copy()
    prediction[::3] = LABEL_ID_BY_NAME["parking"]
    prediction[:, ::5] = LABEL_ID_BY_NAME["guard rail"]
    prediction[::7, ::2] = LABEL_ID_BY_NAME["dynamic"]
    prediction[label_ids == LABEL_ID_BY_NAME["static"]] = LABEL_ID_BY_NAME["car"]
    result, cm = _evaluate_both(official, tmp_path, [(gt_path, prediction)])
    _assert_same_scores(result, cm)


def test_random_label_maps(official, tmp_path: Path) -> None:
    """Blocky random maps over every label id 0..33, of differing sizes, as one split."""
    rng = np.random.default_rng(7)
    gt_dir = tmp_path / "gtFine" / "val" / "testcity"
    gt_dir.mkdir(parents=True)
    pairs = []
    for index, (height, width) in enumerate([(40, 72), (64, 64), (33, 50)]):
        blocks = rng.integers(0, 34, (height // 8 + 1, width // 8 + 1), dtype=np.uint8)
        label_ids = np.kron(blocks, np.ones((8, 8), np.uint8))[:height, :width]
        gt_path = gt_dir / f"testcity_000000_{index:06d}_gtFine_labelIds.png"
        assert cv2.imwrite(str(gt_path), label_ids)
        noise = rng.integers(0, 34, label_ids.shape, dtype=np.uint8)
        prediction = np.where(rng.random(label_ids.shape) < 0.3, noise, label_ids)
        pairs.append((gt_path, prediction.astype(np.uint8)))
    result, cm = _evaluate_both(official, tmp_path, pairs)
    _assert_same_scores(result, cm)


def test_synthetic_set(official, tmp_path: Path) -> None:
    from models.synthetic import generate_dataset

    root = tmp_path / "synthetic"
    generate_dataset(root, {"val": 4}, seed=0, size=(64, 128), progress=False)
    gt_paths = sorted(root.glob("gtFine/val/*/*_gtFine_labelIds.png"))
    assert len(gt_paths) == 4
    rng = np.random.default_rng(3)
    pairs = []
    for gt_path in gt_paths:
        gt_train_ids = label_ids_to_train_ids(_read_label_ids(gt_path))
        pairs += [(gt_path, train_ids_to_label_ids(p)) for p in _corruptions(gt_train_ids, rng)]
    result, cm = _evaluate_both(official, tmp_path, pairs)
    _assert_same_scores(result, cm)
