"""Objects by size: COCO's area bins, the split's misses per class and size, and the paired
bootstrap of B - A of the miss rates, on hand-built instance maps worked out here."""

from __future__ import annotations

import numpy as np
import pytest

from models.comparison import CONFIDENCE
from models.instances import SIZE_BINS, instance_scores, size_of
from models.labels import train_id_of
from models.object_sizes import objects_by_size
from models.scoring import score_image

ROAD, PERSON, CAR = (train_id_of(n) for n in ("road", "person", "car"))
PERSON_LABEL_ID, CAR_LABEL_ID, ROAD_LABEL_ID = 24, 26, 7
SIZE = (220, 220)


def _scene(objects: list[tuple[int, tuple[int, int, int, int]]]) -> np.ndarray:
    """An instance map of road with rectangles (label id, (y0, x0, height, width)), the k-th
    object of a label id numbered label_id * 1000 + k."""
    ids = np.full(SIZE, ROAD_LABEL_ID, np.int32)
    seen: dict[int, int] = {}
    for label_id, (y0, x0, height, width) in objects:
        k = seen.get(label_id, 0)
        seen[label_id] = k + 1
        ids[y0 : y0 + height, x0 : x0 + width] = label_id * 1000 + k
    return ids


def _truth(instances: np.ndarray) -> np.ndarray:
    gt = np.full(SIZE, ROAD, np.uint8)
    gt[instances // 1000 == PERSON_LABEL_ID] = PERSON
    gt[instances // 1000 == CAR_LABEL_ID] = CAR
    return gt


def _found(gt: np.ndarray, instances: np.ndarray, found: dict[int, int]) -> np.ndarray:
    """Road, except the first ``found[id]`` pixels (row-major) of each listed instance,
    predicted as their class."""
    pred = np.full(SIZE, ROAD, np.uint8)
    for instance_id, pixels in found.items():
        ys, xs = np.nonzero(instances == instance_id)
        pred[ys[:pixels], xs[:pixels]] = gt[ys[0], xs[0]]
    return pred


# Image 0: a 31x33 person (1023 px, small), a 32x32 person (1024 px, medium), a 96x96 car
# (9216 px, large) and a 4x4 person (small). A finds the car and 511 of the medium person's
# 1024 pixels (recall just below 0.5: missed); B finds the small 31x33 person, exactly 512
# pixels of the medium one (recall 0.5: found) and misses the car. Nobody finds the 4x4 one.
IMAGE_0 = [
    (PERSON_LABEL_ID, (0, 0, 31, 33)),
    (PERSON_LABEL_ID, (40, 0, 32, 32)),
    (CAR_LABEL_ID, (100, 100, 96, 96)),
    (PERSON_LABEL_ID, (0, 60, 4, 4)),
]
FOUND_0 = {"A": {26000: 9216, 24001: 511}, "B": {24000: 1023, 24001: 512}}
# Image 1: a 10x10 person only B finds, a 95x97 car (9215 px, medium) both find.
IMAGE_1 = [(PERSON_LABEL_ID, (0, 0, 10, 10)), (CAR_LABEL_ID, (50, 50, 95, 97))]
FOUND_1 = {"A": {26000: 9215}, "B": {24000: 100, 26000: 9215}}
# Image 2: an instance map with no object at all.
MISSES = [
    # (class, size, missed by A, missed by B) of each object, image by image
    [
        ("person", "small", 1, 0),
        ("person", "medium", 1, 0),
        ("car", "large", 0, 1),
        ("person", "small", 1, 1),
    ],
    [("person", "small", 1, 0), ("car", "medium", 0, 0)],
    [],
]


def _split(same_b: bool = False):
    images = []
    for index, (objects, found) in enumerate(((IMAGE_0, FOUND_0), (IMAGE_1, FOUND_1), ([], {}))):
        instances = _scene(objects)
        gt = _truth(instances)
        preds = {side: _found(gt, instances, found.get(side, {})) for side in "AB"}
        if same_b:
            preds["B"] = preds["A"]
        images.append(score_image(gt, preds, instance_ids=instances, sample_id=f"img{index}"))
    return images


def test_sizes_are_binned_by_area_at_coco_thresholds() -> None:
    assert [(s.name, s.low, s.high) for s in SIZE_BINS] == [
        ("small", 0, 1024),
        ("medium", 1024, 9216),
        ("large", 9216, None),
    ]
    assert [size_of(a) for a in (0, 1023, 1024, 9215, 9216, 10**7)] == [
        "small",
        "small",
        "medium",
        "medium",
        "large",
        "large",
    ]
    instances = _scene(IMAGE_0)
    gt = _truth(instances)
    scores = instance_scores(instances, {"A": _found(gt, instances, FOUND_0["A"])})
    by_id = {s.instance_id: (s.pixels, s.size, s.missed["A"]) for s in scores}
    assert by_id == {
        24000: (1023, "small", True),
        24001: (1024, "medium", True),
        24002: (16, "small", True),
        26000: (9216, "large", False),
    }


def test_sizes_count_the_annotation_pixels_when_scored_on_a_smaller_map() -> None:
    instances = _scene([(PERSON_LABEL_ID, (0, 0, 20, 20))])
    gt = _truth(instances)
    (alone,) = instance_scores(instances, {"A": gt})
    (shrunk,) = instance_scores(instances, {"A": gt}, area_scale=4.0)
    assert (alone.pixels, alone.size) == (400, "small")
    assert (shrunk.pixels, shrunk.size) == (400, "medium"), "1600 annotation pixels"
    with pytest.raises(ValueError, match="area_scale"):
        instance_scores(instances, {"A": gt}, area_scale=0.0)


def test_split_counts_misses_per_class_and_size() -> None:
    objects = objects_by_size(_split(), ["A", "B"], resamples=50)
    assert objects.annotated
    cells = {(c.label, c.objects, c.missed["A"], c.missed["B"]) for c in objects.cells}
    assert cells == {
        ("small persons", 3, 3, 1),
        ("medium persons", 1, 1, 0),
        ("medium cars", 1, 0, 0),
        ("large cars", 1, 0, 1),
    }
    by_key = {d.key: d for d in objects.differences}
    small = by_key["miss_rate/person/small"]
    assert (small.a, small.b) == (1.0, pytest.approx(1 / 3))
    assert small.difference == pytest.approx(-2 / 3)
    assert by_key["miss_rate/car/large"].difference == 1.0
    assert objects.headline(PERSON) == (
        "small persons missed: A 100.0%, B 33.3% of 3 · medium persons missed: A 100.0%, "
        "B 0.0% of 1"
    )
    assert objects.headline(train_id_of("rider")) == "No riders in the split."
    row = next(r for r in objects.rows() if r[0] == "small persons")
    assert row[:5] == ["small persons", 3, "100.0% (3)", "33.3% (1)", "-66.7%"]
    document = objects.to_dict()
    person_small = next(c for c in document["cells"] if c["size"] == "small")
    assert person_small["recall"] == {"A": 0.0, "B": pytest.approx(2 / 3)}
    assert document["bins"][-1] == {"name": "large", "min_area": 9216, "max_area": None}


def _loop_interval(resamples: int, seed: int, cls: str, size: str) -> tuple[float, float]:
    """The bootstrap transcribed as a loop: draw images, add up their objects and misses."""
    draws = np.random.default_rng(seed).integers(0, len(MISSES), (resamples, len(MISSES)))
    spread = []
    for draw in draws:
        objects = missed_a = missed_b = 0
        for image in draw:
            for name, bin_name, a, b in MISSES[image]:
                if (name, bin_name) == (cls, size):
                    objects, missed_a, missed_b = objects + 1, missed_a + a, missed_b + b
        if objects:
            spread.append(missed_b / objects - missed_a / objects)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(spread, [tail, 100 - tail])
    return float(low), float(high)


def test_miss_rate_intervals_equal_a_plain_loop_over_the_resamples() -> None:
    objects = objects_by_size(_split(), ["A", "B"], resamples=300, seed=7)
    for difference in objects.differences:
        _, cls, size = difference.key.split("/")
        low, high = _loop_interval(300, 7, cls, size)
        assert (difference.low, difference.high) == (pytest.approx(low), pytest.approx(high))
    small = next(d for d in objects.differences if d.key == "miss_rate/person/small")
    assert small.high < 0 and small.verdict == "B better"


def test_identical_misses_give_a_zero_width_interval_at_zero() -> None:
    objects = objects_by_size(_split(same_b=True), ["A", "B"], resamples=100)
    assert objects.differences
    for difference in objects.differences:
        assert (difference.difference, difference.low, difference.high) == (0.0, 0.0, 0.0)
        assert difference.verdict == "within noise"


def test_a_split_without_instance_maps_is_not_annotated() -> None:
    gt = _truth(_scene(IMAGE_0))
    images = [score_image(gt, {"A": gt, "B": gt}, sample_id="camvid-like")]
    objects = objects_by_size(images, ["A", "B"])
    assert not objects.annotated and objects.cells == () and objects.rows() == []
    assert "not annotated" in objects.headline(PERSON)
    assert objects.to_dict()["annotated"] is False
