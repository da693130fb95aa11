"""The error taxonomy and Boundary IoU against hand-built masks whose answers are worked out
here, and against plain one-class-at-a-time transcriptions of their definitions."""

from __future__ import annotations

import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from models.comparison import compare_split
from models.confusion import confusion_matrix
from models.labels import BACKGROUND, NUM_EVALUATED, train_id_of
from models.maps import TAXONOMY_MAP
from models.metrics import pixel_accuracy
from models.scoring import SplitEvaluator, score_image
from models.taxonomy import (
    COUNT_KEYS,
    KINDS,
    band_pixels,
    boundary_iou,
    critical_segment_share,
    error_rate,
    error_taxonomy,
    mean_boundary_iou,
)

ROAD, SIDEWALK, PERSON, CAR = (train_id_of(n) for n in ("road", "sidewalk", "person", "car"))
BOUNDARY, EXTENT, SEGMENT, CORRECT, IGNORED = (
    TAXONOMY_MAP.value(k) for k in ("boundary", "extent", "segment", "correct", "ignored")
)


def band_of(shape: tuple[int, int], pixels: int) -> float:
    """The share of the diagonal that gives a band of ``pixels``."""
    return pixels / math.hypot(*shape)


def counts_of(taxonomy) -> dict[str, int]:
    return taxonomy.to_dict()


def block(shape, rows, cols, inside, outside=ROAD) -> np.ndarray:
    labels = np.full(shape, outside, np.uint8)
    labels[rows[0] : rows[1], cols[0] : cols[1]] = inside
    return labels


def test_a_person_missed_whole_is_a_segment_error_and_a_critical_segment_miss() -> None:
    gt = block((12, 12), (4, 7), (4, 7), PERSON)
    pred = np.full_like(gt, ROAD)
    taxonomy = error_taxonomy(gt, pred)
    expected = np.where(gt == PERSON, SEGMENT, CORRECT)
    np.testing.assert_array_equal(taxonomy.codes, expected)
    counts = counts_of(taxonomy)
    assert (counts["segment_errors"], counts["extent_errors"], counts["boundary_errors"]) == (
        9,
        0,
        0,
    )
    # person (most important) predicted as road (important): all 9 are critical misses
    assert (counts["critical_misses"], counts["critical_segment_misses"]) == (9, 9)
    assert critical_segment_share(taxonomy.counts) == 1.0
    assert error_rate(taxonomy.counts, "segment") == 9 / 144


def test_an_outline_one_pixel_off_is_boundary_errors_only() -> None:
    gt = block((16, 16), (3, 9), (3, 9), PERSON)
    pred = block((16, 16), (3, 9), (4, 10), PERSON)  # the person shifted right by 1
    taxonomy = error_taxonomy(gt, pred, band=band_of(gt.shape, 1))
    wrong = gt != pred  # column 3 (person missed) and column 9 (person hallucinated)
    np.testing.assert_array_equal(taxonomy.codes, np.where(wrong, BOUNDARY, CORRECT))
    counts = counts_of(taxonomy)
    assert counts["boundary_errors"] == 12
    assert (counts["critical_misses"], counts["critical_segment_misses"]) == (6, 0)
    assert critical_segment_share(taxonomy.counts) == 0.0


def test_a_region_too_small_beyond_the_band_is_extent_and_within_it_boundary() -> None:
    gt = block((12, 12), (2, 10), (2, 10), PERSON)  # 8x8 person
    pred = block((12, 12), (5, 7), (5, 7), PERSON)  # only its central 2x2 found
    ring = (gt == PERSON) & (pred != PERSON)  # 60 pixels, 3 wide around the found part
    # band 1: no ring pixel is within 1 px of both the found part and the road outside
    narrow = error_taxonomy(gt, pred, band=band_of(gt.shape, 1))
    np.testing.assert_array_equal(narrow.codes, np.where(ring, EXTENT, CORRECT))
    assert counts_of(narrow)["extent_errors"] == 60
    # band 2: the middle of the ring is within 2 px of both, and the ring within 2 px of it
    wide = error_taxonomy(gt, pred, band=band_of(gt.shape, 2))
    np.testing.assert_array_equal(wide.codes, np.where(ring, BOUNDARY, CORRECT))


def test_a_hallucinated_car_is_a_segment_error_but_no_critical_miss() -> None:
    gt = np.full((10, 10), ROAD, np.uint8)
    pred = block(gt.shape, (3, 6), (3, 6), CAR)
    taxonomy = error_taxonomy(gt, pred)
    np.testing.assert_array_equal(taxonomy.codes, np.where(pred == CAR, SEGMENT, CORRECT))
    assert counts_of(taxonomy)["critical_misses"] == 0
    assert math.isnan(critical_segment_share(taxonomy.counts))  # no critical miss to share


def test_a_missed_person_near_a_found_one_is_a_segment_error_not_a_boundary() -> None:
    """Within the band of a found person, but not touching it: still a whole person missed."""
    gt = np.full((9, 12), ROAD, np.uint8)
    gt[2:7, 2:5] = PERSON  # found
    gt[2:7, 6:9] = PERSON  # missed, one road column away
    pred = block(gt.shape, (2, 7), (2, 5), PERSON)
    taxonomy = error_taxonomy(gt, pred, band=band_of(gt.shape, 3))
    missed = (gt == PERSON) & (pred != PERSON)
    np.testing.assert_array_equal(taxonomy.codes, np.where(missed, SEGMENT, CORRECT))
    assert counts_of(taxonomy)["critical_segment_misses"] == 15


def test_ground_truth_background_is_not_judged() -> None:
    gt = block((8, 8), (0, 8), (0, 3), BACKGROUND)
    pred = np.full_like(gt, CAR)
    taxonomy = error_taxonomy(gt, pred)
    assert (taxonomy.codes[gt == BACKGROUND] == IGNORED).all()
    assert (taxonomy.codes[gt != BACKGROUND] != IGNORED).all()
    counts = counts_of(taxonomy)
    assert counts["judged_pixels"] == 40
    assert sum(counts[f"{kind}_errors"] for kind in KINDS) == 40


def _dilated(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _reference_view(classes: np.ndarray, gt, pred, band: int) -> np.ndarray:
    """One class at a time, with cv2 per class: the module docstring's definition."""
    kind = np.zeros(gt.shape, np.uint8)
    for c in np.unique(classes[gt != pred]):
        errors = (classes == c) & (gt != pred)
        right = (gt == c) & (pred == c)
        neither = (gt != c) & (pred != c)
        seeds = errors & _dilated(right, band) & _dilated(neither, band)
        grown = errors & _dilated(seeds, band)
        _, runs = cv2.connectedComponents(errors.astype(np.uint8), connectivity=8)
        for run in range(1, runs.max() + 1):
            pixels = runs == run
            found = (pixels & _dilated(right, 1)).any()
            between = found and (pixels & _dilated(neither, 1)).any()
            kind[pixels] = 2 if found else 3
            if between:
                kind[pixels & grown] = 1
    return kind


def _reference_codes(gt: np.ndarray, pred: np.ndarray, band: int) -> np.ndarray:
    kinds = np.maximum(_reference_view(gt, gt, pred, band), _reference_view(pred, gt, pred, band))
    table = np.array([CORRECT, BOUNDARY, EXTENT, SEGMENT], np.uint8)
    return np.where(gt == BACKGROUND, IGNORED, table[kinds])


def _blocks(rng, cells: tuple[int, int], shape: tuple[int, int], high: int = 20) -> np.ndarray:
    values = rng.integers(0, high, cells, dtype=np.uint8)
    return cv2.resize(values, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


@pytest.mark.parametrize("seed", range(4))
def test_kinds_match_a_class_by_class_transcription(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gt = _blocks(rng, (4, 5), (48, 80))
    noise = _blocks(rng, (8, 10), (48, 80))
    where = _blocks(rng, (16, 20), (48, 80), 10) < 3
    pred = np.roll(np.where(where, noise, gt), 1, axis=1).astype(np.uint8)
    taxonomy = error_taxonomy(gt, pred, band=0.02)
    assert all(taxonomy.counts[1:4] > 10)  # every kind occurs
    np.testing.assert_array_equal(
        taxonomy.codes, _reference_codes(gt, pred, band_pixels(gt.shape, 0.02))
    )
    judged = gt != BACKGROUND
    cm = confusion_matrix(gt, pred).numpy()
    rates = sum(error_rate(taxonomy.counts, kind) for kind in KINDS)
    assert rates == pytest.approx(1 - pixel_accuracy(cm), abs=1e-12)
    assert taxonomy.counts[0] == judged.sum()


@pytest.mark.parametrize(
    ("shape", "band"), [((37, 61), 1), ((64, 48), 2), ((50, 90), 3), ((29, 120), 5), ((96, 72), 8)]
)
def test_kinds_match_the_transcription_on_scattered_errors_to_the_edges(
    shape: tuple[int, int], band: int
) -> None:
    """Regions of a few classes, a prediction off by blocks, shifted outlines and lone
    pixels anywhere (the image's edges too), in bands from 1 to 8 px."""
    assert band_pixels(shape, band_of(shape, band)) == band
    for seed in range(6):
        rng = np.random.default_rng(seed)
        gt = (_blocks(rng, (3, 4), shape, 6) * 3).astype(np.uint8)
        pred = np.where(_blocks(rng, (6, 8), shape, 10) < 2, _blocks(rng, (5, 7), shape), gt)
        pred = np.roll(pred, (rng.integers(-2, 3), rng.integers(-2, 3)), axis=(0, 1))
        speckles = rng.random(shape) < 0.02
        pred = np.where(speckles, rng.integers(0, 20, shape), pred).astype(np.uint8)
        taxonomy = error_taxonomy(gt, pred, band=band_of(shape, band))
        np.testing.assert_array_equal(taxonomy.codes, _reference_codes(gt, pred, band))
        wrong = np.count_nonzero((gt != pred) & (gt != BACKGROUND))
        assert taxonomy.counts[1:4].sum() == wrong


def test_kinds_match_the_transcription_on_tiny_images_one_pixel_wide_too() -> None:
    """Random maps of a few classes from 1x1 to 15x15 px, bands up to 4 px: windows that
    cross every edge, blocks of rows longer than the image."""
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(400):
        shape = tuple(int(n) for n in rng.integers(1, 16, 2))
        classes, band = int(rng.integers(2, 6)), int(rng.integers(1, 5))
        if band_pixels(shape, band_of(shape, band)) != band:
            continue
        gt = rng.integers(0, classes, shape).astype(np.uint8)
        noise = rng.integers(0, classes, shape).astype(np.uint8)
        pred = np.where(rng.random(shape) < 0.3, noise, gt)
        taxonomy = error_taxonomy(gt, pred, band=band_of(shape, band))
        np.testing.assert_array_equal(taxonomy.codes, _reference_codes(gt, pred, band))
        checked += 1
    assert checked > 300


def test_a_prediction_without_errors_has_only_correct_and_ignored_pixels() -> None:
    gt = _blocks(np.random.default_rng(9), (3, 3), (30, 40))
    taxonomy = error_taxonomy(gt, gt.copy())
    np.testing.assert_array_equal(taxonomy.codes, np.where(gt == BACKGROUND, IGNORED, CORRECT))
    assert taxonomy.counts[1:6].tolist() == [0] * 5


def test_boundary_iou_of_a_shifted_edge_worked_by_hand() -> None:
    gt = np.full((10, 10), SIDEWALK, np.uint8)
    gt[:, :5] = ROAD
    pred = np.full_like(gt, SIDEWALK)
    pred[:, :6] = ROAD  # the road/sidewalk edge moved right by one
    # d = max(1, round(0.02 x 14.1)) = 1: a band is the mask's outer ring of pixels.
    # road: truth's ring 26 px, prediction's 28, shared 18 (top, bottom, left edge)
    # sidewalk: truth's ring 26, prediction's 24, shared 16 (top, bottom, right edge)
    taxonomy = error_taxonomy(gt, pred)
    iou = boundary_iou(taxonomy.counts)
    assert iou[ROAD] == 18 / (26 + 28 - 18)
    assert iou[SIDEWALK] == 16 / (26 + 24 - 16)
    assert np.isnan(np.delete(iou, [ROAD, SIDEWALK])).all()
    assert mean_boundary_iou(taxonomy.counts) == pytest.approx((18 / 36 + 16 / 34) / 2)
    assert mean_boundary_iou(taxonomy.counts, [SIDEWALK]) == 16 / 34


def _cheng_boundary(mask: np.ndarray, dilation: int) -> np.ndarray:
    """The Boundary IoU API's mask_to_boundary: pad by one, erode d times with 3x3."""
    height, width = mask.shape
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=dilation)
    return mask.astype(bool) & ~eroded[1 : height + 1, 1 : width + 1].astype(bool)


@pytest.mark.parametrize("seed", range(3))
def test_boundary_iou_counts_match_the_official_band_class_by_class(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gt = cv2.resize(rng.integers(0, 20, (5, 7), dtype=np.uint8), (140, 100), interpolation=0)
    pred = cv2.resize(rng.integers(0, 20, (6, 9), dtype=np.uint8), (140, 100), interpolation=0)
    dilation = max(1, round(0.02 * math.hypot(100, 140)))
    judged = gt != BACKGROUND
    taxonomy = error_taxonomy(gt, pred)
    expected_i, expected_u = [], []
    for c in range(NUM_EVALUATED):
        band_gt = _cheng_boundary((gt == c).astype(np.uint8), dilation) & judged
        band_pred = _cheng_boundary((pred == c).astype(np.uint8), dilation) & judged
        expected_i.append(int((band_gt & band_pred).sum()))
        expected_u.append(int((band_gt | band_pred).sum()))
    counts = taxonomy.to_dict()
    assert counts["boundary_iou_intersection"] == expected_i
    assert counts["boundary_iou_union"] == expected_u


def test_counts_of_images_pool_by_addition() -> None:
    gt_a = block((12, 12), (4, 7), (4, 7), PERSON)
    gt_b = block((16, 16), (3, 9), (3, 9), PERSON)
    a = error_taxonomy(gt_a, np.full_like(gt_a, ROAD))
    b = error_taxonomy(gt_b, block((16, 16), (3, 9), (4, 10), PERSON), band=band_of((16, 16), 1))
    stack = np.stack([a.counts, b.counts])
    # 9 segment critical misses in the first image, 6 boundary ones in the second
    assert critical_segment_share(stack.sum(axis=0)) == 9 / 15
    np.testing.assert_array_equal(critical_segment_share(stack), [1.0, 0.0])
    assert list(counts_of(a)) == [*COUNT_KEYS, "boundary_iou_intersection", "boundary_iou_union"]


def _two_images() -> list[tuple[np.ndarray, np.ndarray]]:
    """The whole-person miss and the one-pixel shift above, as a two-image split."""
    gt_a = block((16, 16), (4, 7), (4, 7), PERSON)
    gt_b = block((16, 16), (3, 9), (3, 9), PERSON)
    return [(gt_a, np.full_like(gt_a, ROAD)), (gt_b, block((16, 16), (3, 9), (4, 10), PERSON))]


def test_image_and_split_scores_come_from_the_taxonomy_counts() -> None:
    evaluator = SplitEvaluator(["A"])
    for n, (gt, pred) in enumerate(_two_images()):
        image = evaluator.add(f"image{n}", gt, {"A": pred}).scores["A"]
        counts = error_taxonomy(gt, pred).counts
        np.testing.assert_array_equal(image.taxonomy, counts)
        assert image["critical_segment_share"] == critical_segment_share(counts)
        assert image["segment_error_rate"] == counts[3] / counts[0]
    split = evaluator.result().models["A"]
    # 9 pixels of the first person are missed whole, 6 of the second's are its shifted edge
    assert split["critical_segment_share"] == 9 / 15
    assert split.to_dict()["taxonomy"]["critical_misses"] == 15
    person = split.to_dict()["classes"][PERSON]
    assert person["boundary_iou"] == split.boundary_iou[PERSON] is not None


def test_without_the_taxonomy_its_scores_are_undefined() -> None:
    evaluator = SplitEvaluator(["A"], taxonomy=False)
    for n, (gt, pred) in enumerate(_two_images()):
        assert evaluator.add(f"image{n}", gt, {"A": pred}).scores["A"].taxonomy is None
    split = evaluator.result().models["A"]
    assert split["critical_segment_share"] is None and split["boundary_iou"] is None
    assert split["critical_miss_rate"] == 15 / 45
    assert split.to_dict()["taxonomy"] is None


def test_the_view_keeps_the_maps_only_when_asked() -> None:
    gt, pred = _two_images()[0]
    assert score_image(gt, {"A": pred}).taxonomy_maps is None
    kept = score_image(gt, {"A": pred}, keep_maps=True).taxonomy_maps
    np.testing.assert_array_equal(kept["A"], error_taxonomy(gt, pred).codes)


def test_the_bootstrap_resamples_taxonomy_counts_with_the_same_draws() -> None:
    rng = np.random.default_rng(5)
    images = []
    for _ in range(6):
        gt = cv2.resize(rng.integers(0, 19, (3, 4), dtype=np.uint8), (32, 24), interpolation=0)
        noise = cv2.resize(rng.integers(0, 19, (6, 8), dtype=np.uint8), (32, 24), interpolation=0)
        a, b = (np.where(rng.random(gt.shape) < p, noise, gt).astype(np.uint8) for p in (0.4, 0.2))
        images.append((gt, a, b))
    evaluator = SplitEvaluator(["A", "B"])
    for n, (gt, a, b) in enumerate(images):
        evaluator.add(f"image{n}", gt, {"A": a, "B": b})
    result = evaluator.result()
    comparison = compare_split(result, resamples=200, seed=2)
    by_key = {d.key: d for d in comparison.differences}
    counts = {
        name: np.stack([image.scores[name].taxonomy for image in result.images]) for name in "AB"
    }
    draws = np.random.default_rng(2).integers(0, 6, (200, 6))
    spread = []
    for row in draws:
        pooled = {name: counts[name][row].sum(axis=0) for name in "AB"}
        share = {name: pooled[name][5] / pooled[name][4] for name in "AB" if pooled[name][4]}
        if len(share) == 2:
            spread.append(share["B"] - share["A"])
    assert len(spread) > 100
    low, high = np.percentile(spread, [2.5, 97.5])
    difference = by_key["critical_segment_share"]
    assert (difference.low, difference.high) == pytest.approx((low, high), abs=1e-12)
    same = SplitEvaluator(["A", "B"])
    for n, (gt, a, _) in enumerate(images):
        same.add(f"image{n}", gt, {"A": a, "B": a})
    for key in ("critical_segment_share", "boundary_iou", "segment_error_rate"):
        identical = {d.key: d for d in compare_split(same.result(), resamples=100).differences}
        assert (identical[key].low, identical[key].high) == (0.0, 0.0), key


def test_the_band_of_the_split_evaluation_decides_boundary_against_extent() -> None:
    """The 8x8 person found only in its middle: extent errors in a 1 px band, boundary in 2."""
    gt = block((12, 12), (2, 10), (2, 10), PERSON)
    pred = block((12, 12), (5, 7), (5, 7), PERSON)
    rates = {}
    for pixels in (1, 2):
        evaluator = SplitEvaluator(["A"], band=band_of(gt.shape, pixels))
        evaluator.add("image", gt, {"A": pred})
        split = evaluator.result().models["A"]
        rates[pixels] = (split["boundary_error_rate"], split["extent_error_rate"])
    assert rates == {1: (0.0, 60 / 144), 2: (60 / 144, 0.0)}


def test_the_warm_up_compiles_what_scoring_an_image_runs() -> None:
    """In a fresh interpreter, the app's warm-up (``compile_taxonomy``,
    ``compile_fast_labels``) leaves nothing for a real image's taxonomy and full-resolution
    labels to compile: the app's first image then waits for no compiler."""
    script = """
import numpy as np, torch
from models.taxonomy import compile_taxonomy, error_taxonomy
from models.taxonomy_passes import band_counts, error_kinds
from models.upsampling import compile_fast_labels, upsampled_labels
from models.upsampling_pass import rough_labels
compiled = (error_kinds, band_counts, rough_labels)
compile_taxonomy()
compile_fast_labels()
before = [len(f.signatures) for f in compiled]
rng = np.random.default_rng(0)
gt = rng.integers(0, 20, (64, 96)).astype(np.uint8)
error_taxonomy(gt, np.roll(gt, 3, axis=1))
upsampled_labels(torch.randn(20, 128, 256).cumsum(1), (1024, 2048))
after = [len(f.signatures) for f in compiled]
print(before, after)
assert before == after and min(before) == 1, (before, after)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
