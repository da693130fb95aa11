"""CE and IAL against plain loop transcriptions of the recipe's formulas, and class weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.datasets import open_dataset
from models.labels import (
    BACKGROUND,
    DEFAULT_GROUPS,
    NUM_CLASSES,
    PALETTE,
    TRAIN_ID_TO_LABEL_ID,
    ImportanceGroups,
    train_id_of,
)
from models.losses import (
    SegmentationLoss,
    class_pixel_counts,
    class_weights,
    importance_aware_loss,
    weighted_cross_entropy,
)


def write_tiny_cityscapes(
    root: Path, counts: dict[str, int], size: tuple[int, int] = (64, 128), seed: int = 0
) -> dict[str, list[np.ndarray]]:
    """A Cityscapes-layout folder of blocky scenes whose colours follow the labels (so a
    network can learn them); returns the trainId maps written, per split."""
    rng = np.random.default_rng(seed)
    height, width = size
    written: dict[str, list[np.ndarray]] = {}
    for split, count in counts.items():
        written[split] = []
        for index in range(count):
            blocks = rng.integers(0, NUM_CLASSES, size=(4, 8)).astype(np.uint8)
            train_ids = cv2.resize(blocks, (width, height), interpolation=cv2.INTER_NEAREST)
            noise = rng.integers(-20, 21, size=(height, width, 3))
            image = np.clip(PALETTE[train_ids].astype(int) + noise, 0, 255).astype(np.uint8)
            stem = f"town_{index:06d}_000019"
            image_dir = root / "leftImg8bit" / split / "town"
            label_dir = root / "gtFine" / split / "town"
            image_dir.mkdir(parents=True, exist_ok=True)
            label_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(image_dir / f"{stem}_leftImg8bit.png"), image[..., ::-1])
            label_ids = TRAIN_ID_TO_LABEL_ID[train_ids]
            cv2.imwrite(str(label_dir / f"{stem}_gtFine_labelIds.png"), label_ids)
            written[split].append(train_ids)
    return written


def reference_recipe_ial(
    logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, groups: ImportanceGroups
) -> torch.Tensor:
    """The reference page's four-group formulas, one pixel and one class at a time."""
    assert groups.num_groups == 4
    members = [set(m) for m in groups.members]
    batch, classes, height, width = logits.shape
    pixels = [(n, i, j) for n in range(batch) for i in range(height) for j in range(width)]
    count = len(pixels)

    def probability_of_true(n: int, i: int, j: int) -> torch.Tensor:
        scores = logits[n, :, i, j]
        exp = [torch.exp(scores[c]) for c in range(classes)]
        total = exp[0]
        for value in exp[1:]:
            total = total + value
        return exp[int(target[n, i, j])] / total

    group_losses = []
    for k in range(4):
        numerator, denominator = 0.0, 0.0
        for n, i, j in pixels:
            c = int(target[n, i, j])
            w = weights[c] if c in members[k] else 0.0
            numerator = numerator + w * -torch.log(probability_of_true(n, i, j))
            denominator = denominator + w
        group_losses.append(numerator / denominator if denominator > 0 else 0.0)

    m1_sum, m2_sum = 0.0, 0.0
    f1, f2, f3 = 0.0, 0.0, 0.0
    for n, i, j in pixels:
        c = int(target[n, i, j])
        m1 = 1.0 if c not in members[0] else 0.0
        m2 = 1.0 if c in members[2] or c in members[3] else 0.0
        m3 = 1.0 if c in members[3] else 0.0
        x = probability_of_true(n, i, j)
        f1 = f1 + ((m1 + 0.5) ** 0.5 * (x - m1)) ** 2
        f2 = f2 + ((m2 + 0.5) ** 0.5 * (x - m2) * m1) ** 2
        f3 = f3 + ((m3 + 0.5) ** 0.5 * (x - m3) * m2) ** 2
        m1_sum += m1
        m2_sum += m2
    f1 = f1 / (2 * count)
    f2 = f2 / (2 * m1_sum) if m1_sum else 0.0
    f3 = f3 / (2 * m2_sum) if m2_sum else 0.0
    l1, l2, l3, l4 = group_losses
    return l1 + l2 * (f1 + 1) + l3 * (f1 + 1) * (f2 + 1) + l4 * (f1 + 1) * (f2 + 1) * (f3 + 1)


def reference_general_ial(
    logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, groups: ImportanceGroups
) -> torch.Tensor:
    """The G-group generalisation, one pixel at a time: M_j = [group >= j], f_j over the
    pixels of M_{j-1} (all pixels for j = 1), total = sum_k L_k prod_{j<k} (f_j + 1)."""
    probabilities = torch.softmax(logits, dim=1)
    group_of = {c: g for g, members in enumerate(groups.members) for c in members}
    batch, _, height, width = logits.shape
    pixels = [(n, i, j) for n in range(batch) for i in range(height) for j in range(width)]
    count_groups = groups.num_groups
    numerators = [0.0] * count_groups
    denominators = [0.0] * count_groups
    penalties = [0.0] * (count_groups - 1)
    parents = [0.0] * (count_groups - 1)
    for n, i, j in pixels:
        c = int(target[n, i, j])
        g = group_of[c]
        x = probabilities[n, c, i, j]
        numerators[g] = numerators[g] + weights[c] * -torch.log(x)
        denominators[g] = denominators[g] + weights[c]
        for level in range(1, count_groups):
            mask = 1.0 if g >= level else 0.0
            parent = 1.0 if g >= level - 1 else 0.0
            penalties[level - 1] = penalties[level - 1] + (mask + 0.5) * (x - mask) ** 2 * parent
            parents[level - 1] += parent
    total, factor = 0.0, 1.0
    for k in range(count_groups):
        if denominators[k] > 0:
            total = total + numerators[k] / denominators[k] * factor
        if k < count_groups - 1:
            f = penalties[k] / (2 * parents[k]) if parents[k] else 0.0
            factor = factor * (f + 1)
    return total


def _random_case(seed: int, classes_used: list[int] | None = None):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, NUM_CLASSES, 3, 4, generator=generator, dtype=torch.float64) * 2
    pool = torch.tensor(classes_used or list(range(NUM_CLASSES)))
    target = pool[torch.randint(len(pool), (2, 3, 4), generator=generator)]
    weights = torch.rand(NUM_CLASSES, generator=generator, dtype=torch.float64) * 19 + 1
    return logits, target, weights


def _value_and_grad(function, logits: torch.Tensor, *args) -> tuple[float, torch.Tensor]:
    leaf = logits.clone().requires_grad_(True)
    loss = function(leaf, *args)
    loss.backward()
    return float(loss.detach()), leaf.grad


def _ial(groups: ImportanceGroups):
    def loss(logits, target, weights):
        group_of = torch.as_tensor(groups.group_of)
        return importance_aware_loss(logits, target, weights, group_of, groups.num_groups)

    return loss


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ial_matches_the_recipe_formulas_value_and_gradients(seed):
    logits, target, weights = _random_case(seed)
    value, grad = _value_and_grad(_ial(DEFAULT_GROUPS), logits, target, weights)
    expected_value, expected_grad = _value_and_grad(
        lambda x, t, w: reference_recipe_ial(x, t, w, DEFAULT_GROUPS), logits, target, weights
    )
    assert value == pytest.approx(expected_value, abs=1e-5)
    torch.testing.assert_close(grad, expected_grad, atol=1e-5, rtol=0)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize(
    "groups",
    [
        ImportanceGroups(("all",), (tuple(range(NUM_CLASSES)),)),
        ImportanceGroups(("background", "rest"), ((BACKGROUND,), tuple(range(BACKGROUND)))),
        ImportanceGroups(
            ("low", "mid", "high"),
            (tuple(range(0, 7)), tuple(range(7, 13)), tuple(range(13, NUM_CLASSES))),
        ),
        DEFAULT_GROUPS,
    ],
    ids=lambda g: f"{g.num_groups}-groups",
)
def test_ial_generalises_to_any_number_of_groups(groups):
    logits, target, weights = _random_case(4)
    value, grad = _value_and_grad(_ial(groups), logits, target, weights)
    expected_value, expected_grad = _value_and_grad(
        lambda x, t, w: reference_general_ial(x, t, w, groups), logits, target, weights
    )
    assert value == pytest.approx(expected_value, abs=1e-5)
    torch.testing.assert_close(grad, expected_grad, atol=1e-5, rtol=0)


def test_single_group_ial_is_weighted_cross_entropy():
    logits, target, weights = _random_case(5)
    groups = ImportanceGroups(("all",), (tuple(range(NUM_CLASSES)),))
    assert float(_ial(groups)(logits, target, weights)) == pytest.approx(
        float(weighted_cross_entropy(logits, target, weights)), abs=1e-9
    )


@pytest.mark.parametrize(
    "classes",
    [
        [train_id_of("sky"), BACKGROUND],
        [train_id_of("sky"), train_id_of("building"), train_id_of("vegetation")],
        [train_id_of("car"), train_id_of("person")],
    ],
    ids=["only-unimportant", "no-important", "only-most-important"],
)
def test_ial_is_finite_when_groups_are_missing_from_the_batch(classes):
    logits, target, weights = _random_case(6, classes)
    value, grad = _value_and_grad(_ial(DEFAULT_GROUPS), logits, target, weights)
    assert math.isfinite(value)
    assert torch.isfinite(grad).all()
    expected_value, expected_grad = _value_and_grad(
        lambda x, t, w: reference_recipe_ial(x, t, w, DEFAULT_GROUPS), logits, target, weights
    )
    assert value == pytest.approx(expected_value, abs=1e-5)
    torch.testing.assert_close(grad, expected_grad, atol=1e-5, rtol=0)


def test_ial_penalises_missing_an_important_class_more_than_the_reverse():
    """One person pixel and one sky pixel; in case A the person is called sky, in case B the
    sky is called person, with the same confidence. Equal class weights make CE symmetric."""
    person, sky = train_id_of("person"), train_id_of("sky")
    target = torch.tensor([[[person, sky]]])
    weights = torch.ones(NUM_CLASSES, dtype=torch.float64)

    def logits_for(predicted: tuple[int, int]) -> torch.Tensor:
        logits = torch.zeros(1, NUM_CLASSES, 1, 2, dtype=torch.float64)
        for column, cls in enumerate(predicted):
            logits[0, cls, 0, column] = 4.0
        return logits

    person_as_sky = logits_for((sky, sky))
    sky_as_person = logits_for((person, person))
    ce_a = float(weighted_cross_entropy(person_as_sky, target, weights))
    ce_b = float(weighted_cross_entropy(sky_as_person, target, weights))
    assert ce_a == pytest.approx(ce_b)
    ial = SegmentationLoss("ial", weights.numpy(), DEFAULT_GROUPS)
    assert float(ial(person_as_sky, target)) > 1.5 * float(ial(sky_as_person, target))


def test_ce_loss_module_is_pytorch_weighted_cross_entropy():
    logits, target, weights = _random_case(7)
    ce = SegmentationLoss("ce", weights.numpy().astype(np.float32))
    log_probs = torch.log_softmax(logits, 1)
    numerator = sum(
        -weights[int(target[n, i, j])] * log_probs[n, int(target[n, i, j]), i, j]
        for n in range(2)
        for i in range(3)
        for j in range(4)
    )
    denominator = sum(weights[int(c)] for c in target.flatten())
    assert float(ce(logits, target)) == pytest.approx(float(numerator / denominator), rel=1e-6)


def test_unknown_loss_name_is_refused():
    with pytest.raises(ValueError, match="unknown loss 'dice'"):
        SegmentationLoss("dice", np.ones(NUM_CLASSES, np.float32))


def test_class_weights_follow_the_recipe_formula():
    counts = np.zeros(NUM_CLASSES, dtype=np.int64)
    counts[0], counts[10] = 300, 100
    weights = class_weights(counts)
    assert weights.dtype == np.float32
    assert weights[0] == pytest.approx(1 / math.log(1.05 + 0.75))
    assert weights[10] == pytest.approx(1 / math.log(1.05 + 0.25))
    assert weights[5] == pytest.approx(1 / math.log(1.05))
    with pytest.raises(ValueError):
        class_weights(np.zeros(NUM_CLASSES))


def test_class_pixel_counts_counts_resizes_and_caches_in_the_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "user-cache"))
    written = write_tiny_cityscapes(tmp_path / "data", {"train": 3}, size=(64, 128))
    dataset = open_dataset(tmp_path / "data", "train")
    native = class_pixel_counts(dataset, progress=False)
    expected = sum(np.bincount(t.ravel(), minlength=NUM_CLASSES) for t in written["train"])
    assert native.dtype == np.int64
    np.testing.assert_array_equal(native, expected)

    small = class_pixel_counts(dataset, size=(32, 64), progress=False)
    expected_small = sum(
        np.bincount(t[::2, ::2].ravel(), minlength=NUM_CLASSES) for t in written["train"]
    )
    np.testing.assert_array_equal(small, expected_small)

    cache_files = sorted(p.name for p in (tmp_path / "data").glob(".segbench-class-counts-*"))
    assert cache_files == [
        ".segbench-class-counts-train-32x64.json",
        ".segbench-class-counts-train-native.json",
    ]
    cached = json.loads((tmp_path / "data" / cache_files[1]).read_text())
    assert cached["counts"] == expected.tolist()

    monkeypatch.setattr(
        "models.losses.count_class_pixels", lambda *a, **k: pytest.fail("cache not used")
    )
    np.testing.assert_array_equal(class_pixel_counts(dataset, progress=False), expected)


def test_class_pixel_counts_recounts_when_a_label_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "user-cache"))
    write_tiny_cityscapes(tmp_path / "data", {"train": 2}, size=(32, 64))
    before = class_pixel_counts(open_dataset(tmp_path / "data", "train"), progress=False)
    label_path = next((tmp_path / "data" / "gtFine").rglob("*_labelIds.png"))
    cv2.imwrite(str(label_path), np.full((32, 64), TRAIN_ID_TO_LABEL_ID[13], np.uint8))
    after = class_pixel_counts(open_dataset(tmp_path / "data", "train"), progress=False)
    assert after[13] > before[13]
    assert after.sum() == before.sum()


def test_class_pixel_counts_fall_back_to_the_user_cache(tmp_path, monkeypatch):
    """When the dataset folder cannot take the file, the counts go to $SEGBENCH_CACHE."""
    user_cache = tmp_path / "user-cache"
    monkeypatch.setenv("SEGBENCH_CACHE", str(user_cache))
    write_tiny_cityscapes(tmp_path / "data", {"train": 2}, size=(32, 64))
    blocker = tmp_path / "data" / ".segbench-class-counts-train-native.json"
    blocker.mkdir()
    (blocker / "keep").write_text("a directory where the cache file would go")
    counts = class_pixel_counts(open_dataset(tmp_path / "data", "train"), progress=False)
    files = list(user_cache.glob("class-counts-*-train-native.json"))
    assert len(files) == 1
    assert json.loads(files[0].read_text())["counts"] == counts.tolist()


def test_class_pixel_counts_can_leave_the_dataset_folder_untouched(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "user-cache"))
    write_tiny_cityscapes(tmp_path / "data", {"train": 1}, size=(32, 64))
    class_pixel_counts(
        open_dataset(tmp_path / "data", "train"), progress=False, cache_in_dataset=False
    )
    assert not list((tmp_path / "data").glob(".segbench-*"))
    assert len(list((tmp_path / "user-cache").glob("class-counts-*"))) == 1
