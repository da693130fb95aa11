"""Suspect ground truth: hand-built regions worked out here, probabilities asked only where
needed, and a wrong label planted in a demo scene that the shipped pair finds first."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from db.store import ReviewStore
from models.catalogue import ModelCatalogue
from models.datasets import Sample, open_dataset
from models.inference import InferenceEngine, Prediction
from models.labels import BACKGROUND, LABEL_ID_TO_TRAIN_ID, label_ids_to_train_ids, train_id_of
from models.ranking import ORDERS_BY_LABEL, rank
from models.scoring import score_image
from models.suspects import find_suspects, suspect_pixels, suspects_of_pair
from models.synthetic import generate_dataset, render_scene
from models.upsampling import upsampled_labels
from reviewer.handlers import (
    AGREEMENT_SCOPES,
    ERROR_MAP_MODES,
    FLAG_HEADERS,
    FlagDesk,
    ReviewDesk,
    suspect_flag,
)
from reviewer.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]
ROAD, SIDEWALK, CAR, TRUCK, PERSON, TERRAIN, VEGETATION = (
    train_id_of(n) for n in ("road", "sidewalk", "car", "truck", "person", "terrain", "vegetation")
)
SUSPECT_ORDER = ORDERS_BY_LABEL["suspect ground truth"]
CAR_LABEL_ID, ROAD_LABEL_ID = 26, 7


class Asked:
    """A model's top-class probabilities as a map, recording which pixels were asked."""

    def __init__(self, confidence: np.ndarray) -> None:
        self.confidence = confidence
        self.asked = np.zeros(confidence.shape, bool)

    def __call__(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        self.asked[rows, columns] = True
        return self.confidence[rows, columns]


def _hand_scene():
    """Road labelled everywhere, both models right at 0.99 except in these rectangles:
    R1 (rows 0-5, columns 0-4): both see a car, A at 0.95, B at 0.92; its labels are road on
        rows 0-3 and sidewalk on rows 4-5 (20 against 10 pixels): suspect, 30 px at 0.92.
    R2 (rows 10-13, columns 0-3): both see a person over sidewalk at 0.99: 16 px, suspect.
    R3 (rows 10-14, columns 10-14): both see a car, but A only at 0.5: not suspect, and B
        is never asked about it.
    R4 (rows 0-2, columns 10-14): both see a car at 0.99 but 15 px only: too small.
    R5 (rows 0-5, columns 20-24): A sees a car, B a truck: they do not agree.
    R6 (rows 10-14, columns 20-24): both see a car where the label is void: not judged.
    R7 (rows 16-19, columns 0-5): both see terrain over vegetation, 24 px at 0.99.
    """
    gt = np.full((20, 30), ROAD, np.uint8)
    a = gt.copy()
    conf_a = np.full(gt.shape, 0.99)
    conf_b = conf_a.copy()
    gt[4:6, 0:5] = SIDEWALK
    a[0:6, 0:5] = CAR
    conf_a[0:6, 0:5], conf_b[0:6, 0:5] = 0.95, 0.92
    gt[10:14, 0:4] = SIDEWALK
    a[10:14, 0:4] = PERSON
    a[10:15, 10:15] = CAR
    conf_a[10:15, 10:15] = 0.5
    a[0:3, 10:15] = CAR
    gt[10:15, 20:25] = BACKGROUND
    a[10:15, 20:25] = CAR
    gt[16:20, 0:6] = VEGETATION
    a[16:20, 0:6] = TERRAIN
    b = a.copy()
    a[0:6, 20:25], b[0:6, 20:25] = CAR, TRUCK
    return gt, (a, b), (conf_a, conf_b)


def test_regions_where_both_models_confidently_contradict_the_label() -> None:
    gt, labels, (conf_a, conf_b) = _hand_scene()
    asked_a, asked_b = Asked(conf_a), Asked(conf_b)
    found = find_suspects(gt, labels, (asked_a, asked_b))
    summary = [(r.predicted, r.annotated, r.pixels, r.box) for r in found.regions]
    assert summary == [
        (CAR, ROAD, 30, (0, 0, 5, 6)),
        (TERRAIN, VEGETATION, 24, (0, 16, 6, 20)),
        (PERSON, SIDEWALK, 16, (0, 10, 4, 14)),
    ]
    assert [r.confidence for r in found.regions] == pytest.approx([0.92, 0.99, 0.99])
    assert suspect_pixels(found.regions) == 70
    expected_map = np.zeros(gt.shape, np.int32)
    expected_map[0:6, 0:5], expected_map[16:20, 0:6], expected_map[10:14, 0:4] = 1, 2, 3
    np.testing.assert_array_equal(found.region_map, expected_map)
    candidates = expected_map > 0
    candidates[10:15, 10:15] = True
    np.testing.assert_array_equal(asked_a.asked, candidates)
    np.testing.assert_array_equal(asked_b.asked, expected_map > 0)


def test_only_annotated_classes_count_and_the_threshold_is_a_parameter() -> None:
    gt, labels, confidence = _hand_scene()
    without_terrain = set(range(19)) - {TERRAIN}
    found = find_suspects(gt, labels, tuple(map(Asked, confidence)), without_terrain)
    assert [r.predicted for r in found.regions] == [CAR, PERSON]
    strict = find_suspects(gt, labels, tuple(map(Asked, confidence)), threshold=0.95)
    assert [r.predicted for r in strict.regions] == [TERRAIN, PERSON]
    assert find_suspects(gt, labels, tuple(map(Asked, confidence)), threshold=1.0).regions == ()
    with pytest.raises(ValueError, match="threshold"):
        find_suspects(gt, labels, tuple(map(Asked, confidence)), threshold=1.5)


def _regions_class_by_class(gt, labels_a, labels_b, min_pixels=16) -> list[np.ndarray]:
    """Masks of the candidate regions, one class at a time over the whole image."""
    agree = (labels_a == labels_b) & (labels_a != gt) & (gt != BACKGROUND)
    agree &= labels_a < BACKGROUND
    regions = []
    for train_id in range(BACKGROUND):
        mask = (agree & (labels_a == train_id)).astype(np.uint8)
        count, labels = cv2.connectedComponents(mask, connectivity=8)
        for k in range(1, count):
            if (labels == k).sum() >= min_pixels:
                regions.append(labels == k)
    return regions


@pytest.mark.parametrize("seed", range(4))
def test_region_numbers_match_a_class_by_class_labelling(seed: int) -> None:
    """Every candidate region is found and mapped as a whole-image labelling of each class
    finds them, ranked largest first, then by box (the models are sure everywhere, so every
    candidate is suspect)."""
    rng = np.random.default_rng(seed)

    def blocks(cells: tuple[int, int]) -> np.ndarray:
        values = rng.integers(0, 20, cells, dtype=np.uint8)
        return cv2.resize(values, (96, 64), interpolation=cv2.INTER_NEAREST)

    gt, noise = blocks((4, 6)), blocks((8, 12))
    labels_a = np.where(blocks((16, 24)) < 8, noise, gt)
    labels_b = np.where(rng.random(gt.shape) < 0.05, blocks((2, 3)), labels_a)
    sure = (lambda rows, columns: np.ones(rows.size, np.float32),) * 2
    found = find_suspects(gt, (labels_a, labels_b), sure)
    expected = _regions_class_by_class(gt, labels_a, labels_b)

    def order(mask: np.ndarray) -> tuple:
        ys, xs = np.nonzero(mask)
        return -mask.sum(), xs.min(), ys.min(), xs.max() + 1, ys.max() + 1

    assert len(found.regions) == len(expected) > 3
    for place, mask in enumerate(sorted(expected, key=order), start=1):
        np.testing.assert_array_equal(found.region_map == place, mask)
    assert (found.region_map > 0).sum() == sum(mask.sum() for mask in expected)


def test_confidence_at_pixels_equals_the_full_resolution_confidence() -> None:
    torch.manual_seed(0)
    for size in ((45, 61), (12, 16), (7, 9)):
        logits = torch.randn(20, 12, 16) * 3
        prediction = Prediction(upsampled_labels(logits, size).numpy(), logits)
        rows, columns = np.nonzero(np.ones(size, bool))
        np.testing.assert_allclose(
            prediction.confidence_at(rows, columns),
            prediction.confidence[rows, columns],
            atol=1e-3,
        )


def test_a_wrong_label_planted_in_a_demo_scene_is_found_first() -> None:
    """A car the shipped pair both segment is relabelled road in one of three scenes: that
    scene comes first in the "suspect ground truth" order, the car first in its regions."""
    engine = InferenceEngine(device="cpu")
    pair = [engine.load(ROOT / f"models/checkpoints/segnet-{loss}.pt") for loss in ("ce", "ial")]
    results, planted_mask = [], None
    for seed in (0, 1, 2):
        scene = render_scene(seed)
        gt = label_ids_to_train_ids(scene.label_ids)
        if seed == 2:
            planted_mask = scene.instance_ids.astype(np.int64) == _largest_car(scene.instance_ids)
            gt[planted_mask] = ROAD
        predictions = tuple(engine.predict(model, scene.image) for model in pair)
        found = suspects_of_pair(gt, predictions)
        labels = {"A": predictions[0].labels, "B": predictions[1].labels}
        results.append(
            (score_image(gt, labels, sample_id=f"scene{seed}", suspects=found.regions), found)
        )
    ranked = rank([result for result, _ in results], SUSPECT_ORDER)
    assert ranked[0][0].sample_id == "scene2"
    planted, found = results[2]
    first = planted.suspects[0]
    assert (first.predicted, first.annotated) == (CAR, ROAD) and first.confidence >= 0.9
    overlap = np.sum((found.region_map == 1) & planted_mask)
    assert overlap >= 0.95 * planted_mask.sum() and overlap >= 0.85 * first.pixels
    assert planted.suspect_pixels > max(result.suspect_pixels for result, _ in results[:2])
    assert suspect_flag([first.box], 0) == (", ".join(map(str, first.box)), "ground truth")


def _largest_car(instance_ids: np.ndarray) -> int:
    ids, counts = np.unique(instance_ids[instance_ids >= 1000], return_counts=True)
    cars = LABEL_ID_TO_TRAIN_ID[ids // 1000] == CAR
    return int(ids[cars][np.argmax(counts[cars])])


def _plant_road_over_a_car(bench: Workbench, sample: Sample, pair: tuple[str, str]) -> np.ndarray:
    """Relabel road (in the labelIds file) the car both models segment best; its mask."""
    image = bench.dataset.read_image(sample)
    both_car = np.logical_and.reduce(
        [bench.engine.predict(bench.views.model(name), image).labels == CAR for name in pair]
    )
    instances = bench.dataset.read_instances(sample).astype(np.int64)
    cars = [i for i in np.unique(instances[instances >= 1000]) if i // 1000 == CAR_LABEL_ID]
    best = max(cars, key=lambda i: int(np.sum(both_car & (instances == i))))
    mask = instances == best
    label_ids = cv2.imread(str(sample.label_path), cv2.IMREAD_UNCHANGED)
    label_ids[mask] = ROAD_LABEL_ID
    cv2.imwrite(str(sample.label_path), label_ids)
    return mask


def test_the_queue_and_the_review_tab_lead_with_a_planted_label(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path / "set", {"val": 3}, seed=5, progress=False)
    bench = Workbench(
        dataset=open_dataset(root, "val"),
        engine=InferenceEngine(device="cpu"),
        store=ReviewStore.open(f"sqlite:///{tmp_path / 'review.db'}"),
        catalogue=ModelCatalogue.discover([], shipped=True),
        upload_dir=tmp_path / "uploads",
    )
    pair = ("segnet-ce", "segnet-ial")
    planted = bench.dataset[0]
    mask = _plant_road_over_a_car(bench, planted, pair)
    result = bench.scores.evaluate(*pair)
    by_id = {image.sample_id: image.suspect_pixels for image in result.images}
    rows = bench.queue.rows(*pair, "suspect ground truth")
    assert rows[0].sample_id == planted.id
    assert {row.sample_id: row.value for row in rows} == by_id
    assert by_id[planted.id] > max(v for k, v in by_id.items() if k != planted.id)

    desk = ReviewDesk(bench, FlagDesk(bench))
    looks = (0.5, list(bench.groups.names), [], AGREEMENT_SCOPES[0], ERROR_MAP_MODES[0])
    shown = desk.board(pair, ("suspect ground truth", "any", "any", "any"), looks, "")
    details = desk.details(shown)
    assert details.suspect_rows[0][:3] == [1, "car", "road"]
    assert details.suspect_picture.shape == bench.dataset.read_image(planted).shape
    x0, y0, x1, y1 = details.suspect_boxes[0]
    ys, xs = np.nonzero(mask)
    assert x0 <= xs.min() and y0 <= ys.min() and x1 > xs.max() and y1 > ys.max()
    region, target = suspect_flag(list(details.suspect_boxes), 0)
    judgement = ("ana", target, "major", bench.store.categories()[0], "car labelled road")
    _, flags = desk.flags.save_on_board(shown, judgement, region)
    flag = dict(zip(FLAG_HEADERS, flags[0], strict=True))
    assert (flag["target"], flag["region"]) == ("ground truth", region)
