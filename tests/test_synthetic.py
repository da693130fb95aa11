"""The synthetic demo set: Cityscapes layout on disk, label consistency, determinism,
every class in every split, and the command line's behaviour for users."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.labels import (
    CLASS_NAMES,
    INSTANCE_CLASSES,
    LABEL_COLOR_BY_ID,
    LABEL_ID_BY_NAME,
    MAX_LABEL_ID,
    NUM_EVALUATED,
    label_ids_to_train_ids,
)
from models.synthetic import (
    STAMP_NAME,
    SyntheticError,
    ensure_demo_dataset,
    generate_dataset,
    render_sample,
    render_scene,
)

ROOT = Path(__file__).resolve().parents[1]
SIZE = (64, 128)
COUNTS = {"train": 4, "val": 3, "test": 3}
INSTANCE_NAMES = [CLASS_NAMES[i] for i in INSTANCE_CLASSES]
INSTANCE_IDS = {LABEL_ID_BY_NAME[n] for n in INSTANCE_NAMES}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "set"
    return generate_dataset(out, COUNTS, seed=3, size=SIZE, progress=False)


def _stems(root: Path, split: str) -> list[Path]:
    return sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))


def _label_paths(image: Path) -> dict[str, Path]:
    stem = image.name[: -len("_leftImg8bit.png")]
    split, city = image.parent.parent.name, image.parent.name
    label_dir = image.parents[3] / "gtFine" / split / city
    return {
        kind: label_dir / f"{stem}_gtFine_{kind}.png"
        for kind in ("labelIds", "instanceIds", "color")
    } | {"meta": image.with_name(f"{stem}_meta.json")}


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != STAMP_NAME
    }


def test_files_follow_the_cityscapes_layout_with_the_right_types(small_set: Path) -> None:
    for split, n in COUNTS.items():
        images = _stems(small_set, split)
        assert len(images) == n
        for image_path in images:
            paths = _label_paths(image_path)
            image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
            assert image.dtype == np.uint8 and image.shape == (*SIZE, 3)
            labels = cv2.imread(str(paths["labelIds"]), cv2.IMREAD_UNCHANGED)
            assert labels.dtype == np.uint8 and labels.shape == SIZE
            instances = cv2.imread(str(paths["instanceIds"]), cv2.IMREAD_UNCHANGED)
            assert instances.dtype == np.uint16 and instances.shape == SIZE
            assert paths["color"].is_file() and paths["meta"].is_file()
            city = image_path.parent.name
            assert image_path.name.startswith(f"{city}_") and city.startswith("synth_")
    stamp = json.loads((small_set / STAMP_NAME).read_text())
    assert stamp["counts"] == COUNTS and stamp["seed"] == 3 and stamp["size"] == list(SIZE)


def test_labels_instances_and_colours_agree(small_set: Path) -> None:
    valid = set(LABEL_ID_BY_NAME.values())
    for image_path in _stems(small_set, "train") + _stems(small_set, "test"):
        paths = _label_paths(image_path)
        labels = cv2.imread(str(paths["labelIds"]), cv2.IMREAD_UNCHANGED)
        instances = cv2.imread(str(paths["instanceIds"]), cv2.IMREAD_UNCHANGED).astype(np.int64)
        assert set(np.unique(labels).tolist()) <= valid and labels.max() <= MAX_LABEL_ID
        is_object = instances >= 1000
        assert np.array_equal(np.where(is_object, instances // 1000, instances), labels)
        assert set(np.unique(labels[is_object]).tolist()) <= INSTANCE_IDS
        assert not np.isin(labels[~is_object], list(INSTANCE_IDS)).any()
        colour = cv2.cvtColor(cv2.imread(str(paths["color"])), cv2.COLOR_BGR2RGB)
        assert np.array_equal(colour, LABEL_COLOR_BY_ID[labels])


def test_sidecar_counts_match_the_instance_map(small_set: Path) -> None:
    for image_path in _stems(small_set, "val"):
        paths = _label_paths(image_path)
        meta = json.loads(paths["meta"].read_text())
        instances = cv2.imread(str(paths["instanceIds"]), cv2.IMREAD_UNCHANGED).astype(np.int64)
        ids = np.unique(instances[instances >= 1000])
        for name in INSTANCE_NAMES:
            mine = ids[ids // 1000 == LABEL_ID_BY_NAME[name]]
            assert meta["objects"][name] == len(mine), name
            assert sorted(mine % 1000) == list(range(len(mine)))
        assert meta["time_of_day"] in ("day", "dusk")
        for key in ("camera", "fog", "rain", "blur", "contrast", "tags", "city", "sequence"):
            assert key in meta


def test_every_class_appears_in_every_split(small_set: Path) -> None:
    for split in COUNTS:
        seen: set[int] = set()
        for image_path in _stems(small_set, split):
            labels = cv2.imread(str(_label_paths(image_path)["labelIds"]), cv2.IMREAD_UNCHANGED)
            seen |= set(np.unique(label_ids_to_train_ids(labels)).tolist())
        missing = [CLASS_NAMES[i] for i in range(NUM_EVALUATED) if i not in seen]
        assert not missing, f"{split} lacks {missing}"


def test_stored_files_are_the_rendered_scene_in_rgb_order(tmp_path: Path) -> None:
    out = generate_dataset(tmp_path / "one", {"val": 2}, seed=0, size=SIZE, progress=False)
    for index, image_path in enumerate(_stems(out, "val")):
        scene = render_sample(0, "val", index, SIZE)
        assert image_path.name == f"{scene.meta['stem']}_leftImg8bit.png"
        stored = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
        assert np.array_equal(stored, scene.image)
        paths = _label_paths(image_path)
        labels = cv2.imread(str(paths["labelIds"]), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(labels, scene.label_ids)
        instances = cv2.imread(str(paths["instanceIds"]), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(instances, scene.instance_ids)
        assert json.loads(paths["meta"].read_text()) == scene.meta


def test_same_seed_gives_identical_files_in_any_worker_count(tmp_path: Path) -> None:
    counts = {"train": 3, "val": 1}
    first = generate_dataset(tmp_path / "a", counts, seed=5, size=SIZE, progress=False)
    second = generate_dataset(tmp_path / "b", counts, seed=5, size=SIZE, progress=False, workers=2)
    other = generate_dataset(tmp_path / "c", counts, seed=6, size=SIZE, progress=False)
    assert _digest(first) == _digest(second)
    assert _digest(first).keys() == _digest(other).keys()
    assert _digest(first) != _digest(other)
    one, again = render_scene(42, SIZE), render_scene(np.random.SeedSequence(42), SIZE)
    assert np.array_equal(one.image, again.image) and one.meta == again.meta


def test_refuses_to_overwrite_a_foreign_or_different_folder(tmp_path: Path) -> None:
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"not ours")
    with pytest.raises(SyntheticError, match="not a synthetic set"):
        generate_dataset(foreign, {"val": 1}, size=SIZE, progress=False)
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"]
    ours = generate_dataset(tmp_path / "ours", {"val": 1}, size=SIZE, progress=False)
    with pytest.raises(SyntheticError, match="other settings"):
        generate_dataset(ours, {"val": 1}, seed=1, size=SIZE, progress=False)
    assert generate_dataset(ours, {"val": 1}, size=SIZE, progress=False) == ours


def test_demo_set_is_regenerated_when_incomplete(tmp_path: Path, monkeypatch) -> None:
    from models.synthetic import writer

    small = writer.SyntheticSettings(counts={"train": 1, "val": 1, "test": 1}, size=SIZE)
    monkeypatch.setattr(writer, "DEMO_SETTINGS", small)
    folder = ensure_demo_dataset(tmp_path, progress=False)
    assert folder == tmp_path / "demo-v1" and (folder / STAMP_NAME).is_file()
    first = _digest(folder)
    (folder / STAMP_NAME).unlink()
    victim = _stems(folder, "train")[0]
    victim.unlink()
    assert ensure_demo_dataset(tmp_path, progress=False) == folder
    assert (folder / STAMP_NAME).is_file() and _digest(folder) == first


def test_cli_help_and_bad_size(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "models.synthetic"]
    shown = subprocess.run([*run, "--help"], cwd=ROOT, capture_output=True, text=True)
    assert shown.returncode == 0
    for option in ("--out", "--train", "--val", "--test", "--seed", "--size", "--workers"):
        assert option in shown.stdout
    bad = subprocess.run(
        [*run, "--out", str(tmp_path / "x"), "--size", "256by512"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "256by512" in bad.stderr and "HEIGHTxWIDTH" in bad.stderr
    assert "Traceback" not in bad.stderr
    made = subprocess.run(
        [*run, "--out", str(tmp_path / "cli"), "--train", "1", "--val", "0", "--test", "0",
         "--size", "64x128", "--workers", "1", "--no-progress"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert len(_stems(tmp_path / "cli", "train")) == 1
