"""The evaluation command line: numbers equal an independent computation, files as documented."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoints import CheckpointMetadata, save_checkpoint
from models.comparison import VERDICTS
from models.datasets import open_dataset
from models.evaluate import build_parser, main
from models.inference import InferenceEngine
from models.labels import CLASS_NAMES
from models.preprocess import Preprocessing
from models.segnet import SegNet
from models.taxonomy import error_taxonomy

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("models")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = folder / f"model{seed}.pt"
        metadata = CheckpointMetadata(0.0625, 20, Preprocessing((64, 96)), loss="ce")
        save_checkpoint(path, SegNet(width=0.0625).eval(), metadata)
        paths.append(path)
    return paths


def _loop_iou(gts: list[np.ndarray], preds: list[np.ndarray], train_id: int) -> float | None:
    tp = fp = fn = 0
    for gt, pred in zip(gts, preds, strict=True):
        evaluated = gt != 19
        tp += int(np.sum((gt == train_id) & (pred == train_id)))
        fn += int(np.sum((gt == train_id) & (pred != train_id)))
        fp += int(np.sum((gt != train_id) & (pred == train_id) & evaluated))
    return None if tp + fp + fn == 0 else tp / (tp + fp + fn)


def test_json_and_csv_hold_the_exact_scores(
    camvid_root: Path, two_models: list[Path], tmp_path: Path
) -> None:
    out_json, out_csv = tmp_path / "scores.json", tmp_path / "scores.csv"
    args = ["--data", str(camvid_root), "--split", "val", "--device", "cpu", "--batch", "1"]
    args += ["--models", *map(str, two_models)]
    assert main([*args, "--json", str(out_json), "--csv", str(out_csv)]) == 0
    document = json.loads(out_json.read_text())
    assert {"dataset", "split", "images", "models"} <= set(document)
    assert document["split"] == "val" and len(document["images"]) == 13

    dataset = open_dataset(camvid_root, "val")
    engine = InferenceEngine(device="cpu")
    for path in two_models:
        record = document["models"][path.stem]
        assert {"miou", "per_class_iou", "group_iou", "fw_iou", "pixel_accuracy"} <= set(record)
        assert {"critical_miss_rate", "false_alarm_rate", "confusion"} <= set(record)
        model = engine.load(path)
        gts = [dataset.read_label(s) for s in dataset]
        preds = [engine.predict(model, dataset.read_image(s)).labels for s in dataset]
        expected = {}
        for train_id in range(19):
            name = CLASS_NAMES[train_id]
            value = _loop_iou(gts, preds, train_id)
            expected[name] = value if train_id in dataset.annotated_classes else None
            if expected[name] is None:
                assert record["per_class_iou"][name] is None, name
            else:
                assert record["per_class_iou"][name] == pytest.approx(expected[name], abs=1e-12)
        defined = [v for v in expected.values() if v is not None]
        assert record["miou"] == pytest.approx(sum(defined) / len(defined), abs=1e-12)
        assert record["hash"] == model.hash
        # the split's taxonomy counts are its images' added up; its scores come from them
        counts = sum(error_taxonomy(gt, pred).counts for gt, pred in zip(gts, preds, strict=True))
        assert record["taxonomy"]["segment_errors"] == counts[3]
        assert record["taxonomy"]["critical_misses"] == counts[4]
        share = counts[5] / counts[4] if counts[4] else None
        assert record["critical_segment_share"] == pytest.approx(share, abs=1e-12)
        intersection = record["taxonomy"]["boundary_iou_intersection"]
        union = record["taxonomy"]["boundary_iou_union"]
        person = CLASS_NAMES.index("person")
        assert record["per_class_boundary_iou"]["person"] == pytest.approx(
            intersection[person] / union[person], abs=1e-12
        )

    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 26
    assert {r["model"] for r in rows} == {"model0", "model1"}
    first = document["images"][0]
    row = next(r for r in rows if r["sample_id"] == first["sample_id"] and r["model"] == "model0")
    assert float(row["miou"]) == pytest.approx(first["scores"]["model0"]["miou"])

    comparison = document["comparison"]
    assert (comparison["model_a"], comparison["model_b"]) == ("model0", "model1")
    assert comparison["images"] == 13 and comparison["resamples"] == 1000
    by_key = {d["key"]: d for d in comparison["differences"]}
    miou = by_key["miou"]
    assert miou["label"] == "mIoU (pooled, Cityscapes)"
    assert (miou["a"], miou["b"]) == (
        document["models"]["model0"]["miou"],
        document["models"]["model1"]["miou"],
    )
    assert miou["difference"] == pytest.approx(miou["b"] - miou["a"], abs=1e-15)
    assert miou["low"] <= miou["high"] and miou["verdict"] in VERDICTS
    assert {f"class_iou/{CLASS_NAMES[c]}" for c in dataset.annotated_classes} <= set(by_key)
    assert by_key["critical_segment_share"]["verdict"] in VERDICTS
    assert float(row["segment_error_rate"]) == pytest.approx(
        first["scores"]["model0"]["segment_error_rate"]
    )
    assert "class_iou/terrain" not in by_key, "CamVid does not annotate terrain"
    objects = document["objects_by_size"]
    assert (objects["annotated"], objects["cells"], objects["differences"]) == (False, [], [])
    assert not any(image["instances_annotated"] for image in document["images"])


def test_cli_reports_bad_input_without_a_traceback(two_models: list[Path], tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "models.evaluate",
            "--data",
            str(tmp_path / "nope"),
            "--model",
            str(two_models[0]),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 2
    assert "dataset folder not found" in run.stderr and "Traceback" not in run.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "models.evaluate", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    for option in ("--data", "--split", "--models", "--device", "--json", "--csv"):
        assert option in help_text


def test_the_old_model_option_still_names_the_same_models() -> None:
    old = build_parser().parse_args(["--data", "d", "--model", "a.pt", "--model", "b.pt"])
    new = build_parser().parse_args(["--data", "d", "--models", "a.pt", "b.pt"])
    assert old.models == new.models == [Path("a.pt"), Path("b.pt")]
