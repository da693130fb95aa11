"""The export of flagged cases: every format's content, escaping, round trip and bad input."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from db.schema import SEVERITIES, STATUSES
from db.store import ImageRecord, ReviewStore
from models.catalogue import ModelCatalogue
from models.checkpoints import CheckpointMetadata, save_checkpoint
from models.comparison import COMPARISON_HEADERS
from models.datasets import SegmentationDataset, open_dataset
from models.inference import InferenceEngine
from models.labels import (
    BACKGROUND,
    LABEL_COLOR_BY_ID,
    LABEL_ID_TO_TRAIN_ID,
    NUM_EVALUATED,
    train_id_of,
    train_ids_to_label_ids,
)
from models.preprocess import Preprocessing
from models.scores import IMAGE_KEYS
from models.segnet import SegNet
from models.settings import ScoringSettings
from models.synthetic import generate_dataset
from reviewer.export import ExportError, export_report, file_sha256, open_store, zip_export
from reviewer.report import CSV_COLUMNS, ExportedFlag, flags_document, read_flags_json
from reviewer.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "<script>alert(1)</script>"


@dataclass
class Setup:
    tmp: Path
    db_url: str
    data: Path
    models: Path
    dataset: SegmentationDataset
    store: ReviewStore
    engine: InferenceEngine
    hashes: dict[str, str]
    flags: dict[str, int]
    upload: np.ndarray
    upload_key: str


@pytest.fixture(scope="session")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """A synthetic split, two tiny random checkpoints, a real SQLite store with five flags."""
    tmp = tmp_path_factory.mktemp("export")
    data = generate_dataset(tmp / "data", {"val": 4}, seed=0, size=(64, 128), progress=False)
    models = tmp / "models"
    for seed, loss in enumerate(("ce", "ial")):
        torch.manual_seed(seed)
        metadata = CheckpointMetadata(0.0625, 20, Preprocessing((64, 128)), loss=loss)
        save_checkpoint(models / f"{loss}.pt", SegNet(width=0.0625).eval(), metadata)
    db_url = f"sqlite:///{tmp / 'review.db'}"
    store = ReviewStore.open(db_url)
    engine = InferenceEngine(device="cpu")
    dataset = open_dataset(data, "val")
    bench = Workbench(
        dataset=dataset,
        engine=engine,
        store=store,
        catalogue=ModelCatalogue.of_files({"ce": models / "ce.pt", "ial": models / "ial.pt"}),
        upload_dir=tmp / "uploads",
    )
    ce, ial = bench.registry.model_id("ce"), bench.registry.model_id("ial")
    ghost = store.register_model("ghost", "f" * 64, {"loss": "ce", "note": "file deleted"}).id
    keys = [s.id for s in dataset.samples]
    upload = np.random.default_rng(1).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    upload_id = bench.uploads.add(upload)
    common = {"target": "model_a", "model_a_id": ce, "model_b_id": ial}
    flags = {}
    flags["script"] = store.create_flag(
        image_id=bench.registry.image_id(keys[0]),
        reviewer="ann <b>",
        severity="critical",
        category="missed person",
        note=f"pedestrian missed {SCRIPT} & more",
        region=(2, 3, 40, 30),
        **common,
    ).id
    store.update_flag(flags["script"], "bob", status="confirmed", note="confirmed " + SCRIPT)
    flags["second"] = store.create_flag(
        image_id=bench.registry.image_id(keys[0]),
        reviewer="bob",
        severity="minor",
        category="false alarm",
        **common,
    ).id
    flags["dismissed"] = store.create_flag(
        image_id=bench.registry.image_id(keys[1]),
        reviewer="ann <b>",
        severity="major",
        category="boundary error",
        status="dismissed",
        **common,
    ).id
    flags["ghost"] = store.create_flag(
        image_id=bench.registry.image_id(keys[2]),
        reviewer="cy",
        target="model_b",
        model_a_id=ce,
        model_b_id=ghost,
        severity="major",
        category="other",
    )
    flags["ghost"] = flags["ghost"].id
    flags["upload"] = store.create_flag(
        image_id=upload_id,
        reviewer="cy",
        severity="minor",
        category="other",
        note="uploaded frame",
        **common,
    ).id
    hashes = {"ce": file_sha256(models / "ce.pt"), "ial": file_sha256(models / "ial.pt")}
    return Setup(
        tmp,
        db_url,
        data,
        models,
        dataset,
        store,
        engine,
        hashes,
        flags,
        upload,
        store.get_image(upload_id).image_key,
    )


@pytest.fixture(scope="session")
def exported(setup: Setup):
    out = setup.tmp / "report"
    return export_report(
        out, setup.store, model_sources=[setup.models], engine=setup.engine, evaluate=True
    )


def _predict(setup: Setup, name: str, image: np.ndarray) -> np.ndarray:
    """A prediction computed independently of the export (own engine, no cache)."""
    engine = InferenceEngine(device="cpu")
    return engine.predict(engine.load(setup.models / f"{name}.pt"), image).labels


def _ious(gt: np.ndarray, pred: np.ndarray) -> list[float]:
    """Per-class IoU as Cityscapes counts it: ground-truth background pixels are not judged."""
    judged = gt != BACKGROUND
    ious = []
    for c in range(NUM_EVALUATED):
        tp = np.sum((gt == c) & (pred == c))
        union = np.sum(((gt == c) | (pred == c)) & judged)
        ious.append(tp / union if union else float("nan"))
    return ious


def _decoded_images(html: str) -> list[np.ndarray]:
    images = []
    for kind, payload in re.findall(r'src="data:image/(png|jpeg);base64,([^"]+)"', html):
        data = np.frombuffer(base64.b64decode(payload), dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
        assert image is not None, f"undecodable {kind} image"
        images.append(image)
    return images


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".partial-" in p.name]


# ----------------------------------------------------------------------------- result


def test_result_lists_every_file_written(setup: Setup, exported) -> None:
    on_disk = {p for p in exported.out.rglob("*") if p.is_file()}
    assert set(exported.files) == on_disk
    assert exported.flag_count == 5
    assert exported.image_count == 4
    assert exported.html == exported.out / "report.html"
    assert any("ghost" in p and "no checkpoint file" in p for p in exported.problems)
    assert not _leftovers(setup.tmp)


# ----------------------------------------------------------------------------- HTML


def test_html_has_one_section_per_image_and_decodable_images(setup: Setup, exported) -> None:
    html = exported.html.read_text(encoding="utf-8")
    assert html.count('<section class="image"') == 4
    images = _decoded_images(html)
    # Two labelled images: input, truth, A, B, errors of A and B, disagreement (7 each);
    # the ghost pair: the input only; the upload: input, A, B and where they differ; and
    # in the verdict the thumbnails of the four.
    assert len(images) == 7 + 7 + 1 + 4 + 4
    assert all(image.shape[2] == 3 and image.shape[1] in (128, 80) for image in images)
    for flag_id in setup.flags.values():
        assert f"<h3>Flag {flag_id}</h3>" in html
    assert "Predictions unavailable" in html and "no checkpoint file of model" in html
    for digest in setup.hashes.values():
        assert digest in html  # the full sha256 of both compared models in the summary


def test_html_escapes_everything_user_written(exported) -> None:
    html = exported.html.read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "ann <b>" not in html and "ann &lt;b&gt;" in html


def test_html_summary_counts_and_split_scores(setup: Setup, exported) -> None:
    html = exported.html.read_text(encoding="utf-8")
    verdict = html.split("<h2>Verdict</h2>")[1].split("<h2>Flagged images</h2>")[0]
    cross = verdict.split("<h3>Flags by severity and status</h3>")[1].split("</table>")[0]
    with ReviewStore.open(setup.db_url) as store:
        tally = Counter((flag.severity, flag.status) for flag in store.list_flags())
    assert sum(tally.values()) == 5
    for severity in SEVERITIES:
        cells = "".join(f'<td class="num">{tally[severity, s]}</td>' for s in STATUSES)
        assert f"<tr><td>{severity}</td>{cells}</tr>" in cross
    for table, rows in {
        "reviewer": {"ann &lt;b&gt;": 2, "bob": 1, "cy": 2},
    }.items():
        block = html.split(f"<h3>by {table}</h3>")[1].split("</table>")[0]
        for value, count in rows.items():
            assert f'<tr><td>{value}</td><td class="num">{count}</td></tr>' in block
    assert "split evaluated during this export (4 images)" in html
    gts = [setup.dataset.read_label(s) for s in setup.dataset.samples]
    preds = [_predict(setup, "ce", setup.dataset.read_image(s)) for s in setup.dataset.samples]
    stacked_gt, stacked_pred = np.concatenate(gts), np.concatenate(preds)
    miou = np.nanmean(_ious(stacked_gt, stacked_pred))
    assert f'<td>mIoU (pooled, Cityscapes)</td><td class="num">{miou:.3f}</td>' in html


def test_html_opens_with_the_verdict_and_ends_with_provenance(setup: Setup, exported) -> None:
    html = exported.html.read_text(encoding="utf-8")
    order = ["<h2>Verdict</h2>", "<h2>Flagged images</h2>", '<section class="image"']
    order += ["<h2>Split scores in detail</h2>", "<h2>Provenance</h2>"]
    places = [html.index(mark) for mark in order]
    assert places == sorted(places)
    verdict = html[places[0] : places[1]]
    header = "".join(f"<th>{name}</th>" for name in COMPARISON_HEADERS)
    assert f"<thead><tr>{header}</tr></thead>" in verdict
    assert "95% intervals from 1000 paired" in verdict and "within noise" in verdict
    thumbnails = verdict.split("<h3>Worst flagged cases</h3>")[1]
    assert thumbnails.count("<img ") == 4, "every flagged image (up to six), worst first"
    assert "5 flags on 4 images" in html
    assert re.search(r"\d\.\d{6}", html) is None, "no number to more digits than it means"
    assert '{"' not in html and "[{" not in html, "no raw JSON"
    for folder in (setup.data, setup.tmp, setup.models, Path.home()):
        assert str(folder) not in html, "no absolute path"
    assert "page-break-inside: avoid" in html


def test_the_verdict_counts_the_splits_persons_by_size(setup: Setup, exported) -> None:
    html = exported.html.read_text(encoding="utf-8")
    verdict = html.split("<h2>Verdict</h2>")[1].split("<h2>Flagged images</h2>")[0]
    objects = verdict.split("<h4>Objects by size</h4>")[1].split("</p>")[0]
    dataset = open_dataset(setup.data, "val")
    persons = set()
    for sample in dataset.samples:
        ids = dataset.read_instances(sample)
        person = (ids >= 1000) & (LABEL_ID_TO_TRAIN_ID[ids // 1000] == train_id_of("person"))
        persons |= {(sample.id, int(i)) for i in np.unique(ids[person])}
    counted = [int(n) for n in re.findall(r"persons missed: .*? of (\d+)", objects)]
    assert persons and sum(counted) == len(persons), objects


# ----------------------------------------------------------------------------- CSV and JSON


def test_csv_has_every_flag_with_fields_hashes_and_scores(setup: Setup, exported) -> None:
    with open(exported.out / "flags.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = {int(r["flag_id"]): r for r in reader}
    assert set(rows) == set(setup.flags.values())
    row = rows[setup.flags["script"]]
    assert row["note"] == "confirmed " + SCRIPT  # data stays raw; only HTML escapes
    assert (row["status"], row["severity"], row["reviewer"]) == ("confirmed", "critical", "ann <b>")
    assert [row[f"region_{k}"] for k in ("x0", "y0", "x1", "y1")] == ["2", "3", "40", "30"]
    assert (row["model_a_hash"], row["model_b_hash"]) == (setup.hashes["ce"], setup.hashes["ial"])
    assert row["history_events"] == "2"
    assert [e["action"] for e in json.loads(row["history"])] == ["create", "update"]
    sample = setup.dataset.samples[0]
    gt = setup.dataset.read_label(sample)
    image = setup.dataset.read_image(sample)
    for side, name in (("a", "ce"), ("b", "ial")):
        pred = _predict(setup, name, image)
        assert float(row[f"{side}_miou"]) == pytest.approx(np.nanmean(_ious(gt, pred)), abs=1e-12)
        judged = gt != BACKGROUND
        accuracy = np.sum((gt == pred) & judged) / np.sum(judged)
        assert float(row[f"{side}_pixel_accuracy"]) == pytest.approx(accuracy, abs=1e-12)
    assert row["scores_source"] == "computed"
    ghost = rows[setup.flags["ghost"]]
    assert ghost["scores_source"] == "" and "no checkpoint file" in ghost["scores_problem"]
    assert ghost["model_b_hash"] == "f" * 64 and ghost["a_miou"] == ""
    upload = rows[setup.flags["upload"]]
    assert upload["scores_problem"] == "no ground truth for this image"
    assert upload["image_key"] == setup.upload_key


def test_json_reads_back_into_the_records_of_the_store(setup: Setup, exported) -> None:
    path = exported.out / "flags.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    assert (document["schema"], document["version"]) == ("segnet-review-bench/flags-export", 1)
    records = read_flags_json(path)
    assert all(isinstance(r, ExportedFlag) for r in records)
    stored = setup.store.list_flags()
    assert [r.flag_id for r in records] == [f.id for f in stored]
    for record, flag in zip(records, stored, strict=True):
        assert (record.note, record.category, record.status, record.reviewer) == (
            flag.note,
            flag.category,
            flag.status,
            flag.reviewer,
        )
        assert (record.created_at, record.updated_at) == (flag.created_at, flag.updated_at)
        assert record.region == (tuple(flag.region.as_list()) if flag.region else None)
        history = setup.store.flag_history(flag.id)
        assert [(e.at, e.reviewer, e.action, e.changes) for e in record.history] == [
            (e.at, e.reviewer, e.action, e.changes) for e in history
        ]
    again = setup.tmp / "again.json"
    rewritten = flags_document(
        records,
        generated=records[0].created_at,
        filters=document["filters"],
        models=setup.store.list_models(),
        datasets=setup.store.list_datasets(),
    )
    again.write_text(json.dumps(rewritten), encoding="utf-8")
    assert read_flags_json(again) == records


def test_json_of_another_kind_is_refused(setup: Setup) -> None:
    other = setup.tmp / "other.json"
    other.write_text('{"schema": "something else", "flags": []}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a flags export"):
        read_flags_json(other)


# ----------------------------------------------------------------------------- masks


def test_masks_are_label_ids_of_truth_and_predictions(setup: Setup, exported) -> None:
    masks = exported.out / "masks"
    ce = f"pred_ce_{setup.hashes['ce'][:8]}"
    ial = f"pred_ial_{setup.hashes['ial'][:8]}"
    expected = set()
    for n, sample in enumerate(setup.dataset.samples[:3]):
        split, city, stem = sample.id.split("/")
        gt = setup.dataset.read_label(sample)
        image = setup.dataset.read_image(sample)
        maps = {("gtFine", f"{stem}_gtFine_"): gt}
        if n < 2:  # the third image's pair has a missing checkpoint: truth only
            maps[(ce, f"{stem}_")] = _predict(setup, "ce", image)
            maps[(ial, f"{stem}_")] = _predict(setup, "ial", image)
        for (folder, prefix), train_ids in maps.items():
            base = masks / folder / split / city / prefix
            label_ids = cv2.imread(str(base) + "labelIds.png", cv2.IMREAD_UNCHANGED)
            color = cv2.imread(str(base) + "color.png", cv2.IMREAD_COLOR)
            np.testing.assert_array_equal(label_ids, train_ids_to_label_ids(train_ids))
            np.testing.assert_array_equal(color[..., ::-1], LABEL_COLOR_BY_ID[label_ids])
            expected |= {Path(str(base) + "labelIds.png"), Path(str(base) + "color.png")}
    stem = Path(setup.upload_key).name
    for folder, name in ((ce, "ce"), (ial, "ial")):
        base = masks / folder / "uploads" / "images" / f"{stem}_"
        label_ids = cv2.imread(str(base) + "labelIds.png", cv2.IMREAD_UNCHANGED)
        prediction = _predict(setup, name, setup.upload)
        np.testing.assert_array_equal(label_ids, train_ids_to_label_ids(prediction))
        expected |= {Path(str(base) + "labelIds.png"), Path(str(base) + "color.png")}
    assert {p for p in masks.rglob("*.png")} == expected


# ----------------------------------------------------------------------------- selection


def test_filters_select_flags(setup: Setup) -> None:
    result = export_report(
        setup.tmp / "critical",
        setup.store,
        formats=["json"],
        severity="critical",
        model_sources=[setup.models],
        engine=setup.engine,
    )
    records = read_flags_json(result.out / "flags.json")
    assert [r.flag_id for r in records] == [setup.flags["script"]]
    assert result.files == (result.out / "flags.json",)


def test_zip_holds_every_file(setup: Setup, exported) -> None:
    archive = zip_export(exported)
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        assert z.testzip() is None
    assert names == {p.relative_to(exported.out.parent).as_posix() for p in exported.files}
    assert not _leftovers(setup.tmp)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"severity": "minor", "status": "resolved"}, "no flag matches.*severity in minor"),
        ({"category": "no such category"}, "unknown category 'no such category'"),
        ({"formats": ["html", "pdf"]}, "unknown format.*pdf"),
        ({"data": "/nonexistent/data"}, "data path not found: /nonexistent/data"),
    ],
)
def test_bad_selection_writes_nothing(setup: Setup, options: dict, message: str) -> None:
    out = setup.tmp / "bad"
    with pytest.raises(ExportError, match=message):
        export_report(out, setup.store, model_sources=[setup.models], **options)
    assert not out.exists() and not _leftovers(setup.tmp)


def test_existing_or_unwritable_output_is_refused(setup: Setup) -> None:
    existing = setup.tmp / "existing"
    existing.mkdir()
    with pytest.raises(ExportError, match="already exists"):
        export_report(existing, setup.store)
    assert list(existing.iterdir()) == []
    a_file = setup.tmp / "a_file"
    a_file.write_text("x")
    with pytest.raises(ExportError, match="is not a folder"):
        export_report(a_file / "report", setup.store)
    with pytest.raises(ExportError, match="does not exist"):
        export_report(setup.tmp / "missing" / "report", setup.store)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_parent_is_refused(setup: Setup) -> None:
    parent = setup.tmp / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(ExportError, match="no permission"):
            export_report(parent / "report", setup.store)
    finally:
        parent.chmod(0o755)


def test_failure_midway_removes_the_partial_folder(setup: Setup) -> None:
    def fail(done: int, _total: int) -> None:
        if done == 2:
            raise RuntimeError("interrupted")

    out = setup.tmp / "interrupted"
    with pytest.raises(RuntimeError, match="interrupted"):
        export_report(out, setup.store, model_sources=[setup.models], progress=fail)
    assert not out.exists() and not _leftovers(setup.tmp)


def test_missing_database_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "review.db"
    with pytest.raises(ExportError, match="review database not found"):
        open_store(f"sqlite:///{path}")
    assert not path.exists() and not path.parent.exists()


def test_moved_dataset_names_the_fix(tmp_path: Path) -> None:
    store = ReviewStore.open(f"sqlite:///{tmp_path / 'moved.db'}")
    gone = tmp_path / "gone"
    info = store.register_dataset("cityscapes:gone", str(gone), "cityscapes", "val")
    record = ImageRecord("val/x/x_000000_000000", str(gone / "x.png"), "0" * 64, 128, 64)
    image_id = store.register_images(info.id, [record])[record.image_key]
    model = store.register_model("m", "a" * 64, {}).id
    store.create_flag(
        image_id=image_id,
        reviewer="r",
        target="model_a",
        model_a_id=model,
        model_b_id=model,
        severity="minor",
        category="other",
    )
    with pytest.raises(ExportError, match=f"{gone}: dataset folder not found; pass --data"):
        export_report(tmp_path / "out", store)
    assert not (tmp_path / "out").exists() and not _leftovers(tmp_path)
    store.close()


# ----------------------------------------------------------------------------- command line


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reviewer.export", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_help_explains_every_option() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    for option in ("--out", "--db", "--data", "--split", "--status", "--severity", "--category"):
        assert option in result.stdout
    for option in ("--format", "--models", "--evaluate", "--zip"):
        assert option in result.stdout


def test_cli_errors_are_one_line_without_traceback(setup: Setup, tmp_path: Path) -> None:
    missing_db = tmp_path / "missing.db"
    result = _cli("--out", str(tmp_path / "r"), "--db", f"sqlite:///{missing_db}")
    assert result.returncode == 2
    assert result.stderr.startswith("error: review database not found")
    assert "Traceback" not in result.stderr and not missing_db.exists()
    result = _cli("--out", str(tmp_path / "r"), "--db", setup.db_url, "--status", "resolved")
    assert result.returncode == 2
    assert "no flag matches the selection (status in resolved)" in result.stderr
    assert not (tmp_path / "r").exists() and not _leftovers(tmp_path)


def test_cli_exports_selected_flags(setup: Setup, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = _cli(
        "--out",
        str(out),
        "--db",
        setup.db_url,
        "--severity",
        "major",
        "--format",
        "csv,json",
        "--models",
        str(setup.models),
        "--device",
        "cpu",
        "--zip",
    )
    assert result.returncode == 0, result.stderr
    assert "exported 2 flags on 2 images" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["flags.csv", "flags.json"]
    records = read_flags_json(out / "flags.json")
    assert {r.flag_id for r in records} == {setup.flags["dismissed"], setup.flags["ghost"]}
    assert (tmp_path / "cli.zip").is_file()
    assert "warning: no checkpoint file of model 'ghost'" in result.stderr


def test_missing_checkpoint_falls_back_to_cached_scores(setup: Setup, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    with sqlite3.connect(setup.tmp / "review.db") as source, sqlite3.connect(copy) as target:
        source.backup(target)  # the store's own file stays untouched for the other tests
    store = ReviewStore.open(f"sqlite:///{copy}")
    flag = store.get_flag(setup.flags["ghost"])
    cached = {"miou": 0.25, "pixel_accuracy": 0.5, "critical_miss_rate": float("nan")}
    cached |= {"false_alarm_rate": 0.125, "safety_error": 1.5, "expected_cost": 2.0}
    settings = ScoringSettings().fingerprint  # the export's defaults
    for model_id in (flag.model_a_id, flag.model_b_id):
        store.put_scores(model_id, flag.image_id, cached, settings=settings)
        store.put_scores(model_id, flag.image_id, {"miou": 0.75}, settings="other settings")
    counts = {"both_right": 5, "only_a": 1, "only_b": 2, "both_wrong": 0}
    store.put_pair_scores(
        flag.model_a_id, flag.model_b_id, {flag.image_id: counts}, settings=settings
    )
    result = export_report(
        tmp_path / "out", store, formats=["json"], severity="major", category="other"
    )
    (record,) = read_flags_json(result.out / "flags.json")
    # scores the cache lacks (those added to the table since) are reported as unknown
    expected = dict.fromkeys(IMAGE_KEYS) | dict(cached, critical_miss_rate=None)
    assert record.scores_source == "cached"
    assert (record.scores_a, record.scores_b) == (expected, expected)
    assert record.critical_pixels == counts
    store.close()
