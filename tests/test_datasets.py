"""Dataset readers on the real samples (exact pixel counts) and on broken files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label, name2label
from PIL import Image

from models.datasets import (
    CamVidDataset,
    CityscapesDataset,
    DatasetError,
    ImageFolderDataset,
    KittiDataset,
    SkippedFile,
    file_fingerprint,
    image_size,
    open_dataset,
    read_rgb_image,
)

CAMVID_NAMES_IN_VALUE_ORDER = [
    "sky",
    "building",
    "pole",
    "road",
    "sidewalk",
    "vegetation",
    "traffic sign",
    "fence",
    "car",
    "person",
    "rider",
]


def _official_train_id(label_id: int) -> int:
    train_id = id2label[label_id].trainId
    return train_id if 0 <= train_id < 19 else 19


def _counts(label: np.ndarray) -> np.ndarray:
    return np.bincount(label.ravel(), minlength=20)


def test_camvid_split_reads_with_exact_pixel_counts(camvid_root: Path) -> None:
    dataset = open_dataset(camvid_root, "val")
    assert isinstance(dataset, CamVidDataset)
    assert len(dataset) == 13 and not dataset.skipped
    value_to_train_id = {
        value: name2label[name].trainId for value, name in enumerate(CAMVID_NAMES_IN_VALUE_ORDER)
    }
    value_to_train_id[11] = 19
    expected = np.zeros(20, dtype=np.int64)
    ours = np.zeros(20, dtype=np.int64)
    for sample in dataset:
        raw = np.array(Image.open(camvid_root / "valannot" / sample.image_path.name))
        values, counts = np.unique(raw, return_counts=True)
        for value, count in zip(values, counts, strict=True):
            expected[value_to_train_id[int(value)]] += count
        label = dataset.read_label(sample)
        assert label.dtype == np.uint8 and label.shape == (360, 480)
        ours += _counts(label)
        image = dataset.read_image(sample)
        assert image.shape == (360, 480, 3) and image.dtype == np.uint8
        assert np.array_equal(image, np.array(Image.open(sample.image_path).convert("RGB")))
    assert ours.tolist() == expected.tolist()
    assert dataset[0].id == "val/" + dataset[0].image_path.stem
    annotated = {name2label[name].trainId for name in CAMVID_NAMES_IN_VALUE_ORDER}
    assert annotated == set(dataset.annotated_classes)


def test_cityscapes_sample_reads_with_exact_pixel_counts(cityscapes_root: Path) -> None:
    dataset = open_dataset(cityscapes_root, "val")
    assert isinstance(dataset, CityscapesDataset)
    (sample,) = dataset.samples
    assert sample.id == "val/frankfurt/frankfurt_000000_000294"
    assert sample.sequence == "frankfurt"
    raw = np.array(Image.open(sample.label_path))
    expected = np.zeros(20, dtype=np.int64)
    for label_id, count in zip(*np.unique(raw, return_counts=True), strict=True):
        expected[_official_train_id(int(label_id))] += count
    label = dataset.read_label(sample)
    assert _counts(label).tolist() == expected.tolist()
    instances = dataset.read_instances(sample)
    assert instances is not None and instances.dtype == np.int32
    assert np.array_equal(instances, np.array(Image.open(sample.instance_path)).astype(np.int32))
    assert {int(i) for i in np.unique(instances) if i >= 1000} >= {24000, 24001, 26000}


def test_plain_image_folder_is_predictions_only(camvid_root: Path) -> None:
    dataset = open_dataset(camvid_root / "val", "any")
    assert isinstance(dataset, ImageFolderDataset)
    assert not dataset.has_labels and len(dataset) == 13
    with pytest.raises(DatasetError, match="no labels"):
        dataset.read_label(dataset[0])


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def _cityscapes_pair(root: Path, stem: str, label: np.ndarray, image=None) -> Path:
    image = image if image is not None else np.zeros((*label.shape[:2], 3), np.uint8)
    _write(root / "leftImg8bit" / "val" / "x" / f"{stem}_leftImg8bit.png", image)
    return _write(root / "gtFine" / "val" / "x" / f"{stem}_gtFine_labelIds.png", label)


def test_kitti_layout_maps_ids_and_instances(tmp_path: Path) -> None:
    label = np.array([[7, 24], [26, 0]], dtype=np.uint8)
    _write(tmp_path / "training" / "image_2" / "000000_10.png", np.zeros((2, 2, 3), np.uint8))
    _write(tmp_path / "training" / "semantic" / "000000_10.png", label)
    instance = np.array([[7 * 256, 24 * 256 + 1], [26 * 256 + 2, 0]], dtype=np.uint16)
    _write(tmp_path / "training" / "instance" / "000000_10.png", instance)
    dataset = open_dataset(tmp_path, "train")
    assert isinstance(dataset, KittiDataset)
    sample = dataset[0]
    assert sample.id == "training/000000_10"
    assert dataset.read_label(sample).tolist() == [[0, 11], [13, 19]]
    assert dataset.read_instances(sample).tolist() == [[7, 24000], [26001, 0]]


def test_scan_reports_skipped_files_instead_of_crashing(tmp_path: Path) -> None:
    _cityscapes_pair(tmp_path, "good_000000_000000", np.full((4, 6), 7, np.uint8))
    _cityscapes_pair(
        tmp_path,
        "small_000000_000000",
        np.full((2, 3), 7, np.uint8),
        image=np.zeros((4, 6, 3), np.uint8),
    )
    _write(
        tmp_path / "leftImg8bit/val/x/lonely_000000_000000_leftImg8bit.png",
        np.zeros((4, 6, 3), np.uint8),
    )
    dataset = open_dataset(tmp_path, "val")
    assert [s.id for s in dataset] == ["val/x/good_000000_000000"]
    reasons = {s.path.name: s.reason for s in dataset.skipped}
    assert "is 3x2, image is 6x4" in reasons["small_000000_000000_leftImg8bit.png"]
    assert "label file missing" in reasons["lonely_000000_000000_leftImg8bit.png"]
    assert "2 files skipped" in dataset.describe()


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((4, 6), np.uint8), "image is 8-bit grey; an 8-bit RGB image is needed"),
        (np.zeros((4, 6, 3), np.uint16), "image is 16-bit RGB; an 8-bit RGB image is needed"),
        (np.zeros((4, 6, 4), np.uint8), "image is 8-bit RGBA; an 8-bit RGB image is needed"),
    ],
)
def test_unusable_images_are_skipped_at_scan_and_refused_naming_the_file(
    tmp_path: Path, image: np.ndarray, message: str
) -> None:
    _cityscapes_pair(tmp_path, "good_000000_000000", np.full((4, 6), 7, np.uint8))
    _cityscapes_pair(tmp_path, "a_000000_000000", np.full((4, 6), 7, np.uint8), image=image)
    dataset = open_dataset(tmp_path, "val")
    assert [s.id for s in dataset] == ["val/x/good_000000_000000"]
    bad = tmp_path / "leftImg8bit/val/x/a_000000_000000_leftImg8bit.png"
    assert dataset.skipped == [SkippedFile(bad, message)]
    with pytest.raises(DatasetError) as caught:
        read_rgb_image(bad)
    assert str(caught.value) == f"{bad}: {message}"


def test_paletted_labels_are_skipped_and_corrupt_images_refused_on_reading(
    tmp_path: Path,
) -> None:
    _cityscapes_pair(tmp_path, "good_000000_000000", np.full((4, 6), 7, np.uint8))
    label_path = _cityscapes_pair(tmp_path, "p_000000_000000", np.full((4, 6), 7, np.uint8))
    Image.fromarray(np.full((4, 6), 7, np.uint8)).convert("P").save(label_path)
    dataset = open_dataset(tmp_path, "val")
    reason = "label is 8-bit paletted; an 8-bit grey label image is needed"
    assert dataset.skipped == [SkippedFile(label_path, reason)]
    image_path = dataset[0].image_path
    image_path.write_bytes(image_path.read_bytes()[:40])
    with pytest.raises(DatasetError, match="cannot be decoded") as caught:
        dataset.read_image(dataset[0])
    assert str(image_path) in str(caught.value)


def test_label_ids_out_of_range_are_refused(tmp_path: Path) -> None:
    _cityscapes_pair(tmp_path, "r_000000_000000", np.full((4, 6), 40, np.uint8))
    dataset = open_dataset(tmp_path, "val")
    with pytest.raises(DatasetError, match="label value 40 is out of range"):
        dataset.read_label(dataset[0])


def test_camvid_values_beyond_unlabelled_are_refused(tmp_path: Path) -> None:
    _write(tmp_path / "val" / "a.png", np.zeros((4, 6, 3), np.uint8))
    _write(tmp_path / "valannot" / "a.png", np.full((4, 6), 12, np.uint8))
    dataset = open_dataset(tmp_path, "val")
    with pytest.raises(DatasetError, match=r"label value 12 is out of range \(0..11\)"):
        dataset.read_label(dataset[0])


def test_unknown_folder_and_split_errors_say_what_was_tried(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"Tried: Cityscapes .*KITTI .*CamVid .*plain image"):
        open_dataset(tmp_path, "val")
    with pytest.raises(DatasetError, match="dataset folder not found"):
        open_dataset(tmp_path / "missing", "val")
    _cityscapes_pair(tmp_path, "a_000000_000000", np.full((4, 6), 7, np.uint8))
    with pytest.raises(DatasetError, match=r"no split 'train'.*available: val"):
        open_dataset(tmp_path, "train")


def test_empty_split_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "leftImg8bit" / "val").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no usable image in split 'val'"):
        open_dataset(tmp_path, "val")


def test_image_size_from_the_header_alone(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for suffix in (".png", ".jpg"):
        cv2.imwrite(str(tmp_path / f"a{suffix}"), image)
        assert image_size(tmp_path / f"a{suffix}") == (37, 53)
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:20])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    for broken in ("cut.jpg", "empty.png", "text.png"):
        assert image_size(tmp_path / broken) is None, broken


def test_fingerprint_changes_with_the_contents_and_not_otherwise(tmp_path: Path) -> None:
    image, label = tmp_path / "image.png", tmp_path / "label.png"
    image.write_bytes(bytes(range(256)) * 1024)  # larger than two fingerprint blocks
    label.write_bytes(b"\x01" * 100)
    before = file_fingerprint(image, label)
    assert file_fingerprint(image, label) == before
    assert file_fingerprint(label, image) != before
    label.write_bytes(b"\x02" * 100)
    assert file_fingerprint(image, label) != before
    expected = hashlib.sha256()
    for path in (image, label):
        stat = path.stat()
        expected.update(f"{stat.st_size}|{stat.st_mtime_ns}|".encode())
        data = path.read_bytes()
        expected.update(data[:65536])
        expected.update(data[max(65536, len(data) - 65536) :])
    assert file_fingerprint(image, label) == expected.hexdigest()
