"""The shipped demo models: a fair pair, small enough for git, as good as the README says.

The demo test split is regenerated here (its images depend only on the demo seed, the split
and the index), so the check needs no cached demo set.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.catalogue import SHIPPED_PAIRS
from models.checkpoints import load_checkpoint
from models.datasets import open_dataset
from models.evaluate import evaluate_split
from models.inference import InferenceEngine
from models.scoring import SplitScores
from models.synthetic import DEMO_SETTINGS, generate_dataset

ROOT = Path(__file__).resolve().parents[1]
DEMO = next(pair for pair in SHIPPED_PAIRS if pair.name == "demo")
PAIR = {"CE": DEMO.path("ce"), "IAL": DEMO.path("ial")}
DIFFERENT_BY_NATURE = {"loss", "command", "created", "validation_metrics", "weights_sha256"}
"""Metadata that must differ between the two: the loss and what follows from training."""


@pytest.fixture(scope="module")
def test_split_scores(tmp_path_factory: pytest.TempPathFactory) -> SplitScores:
    counts = {"test": DEMO_SETTINGS.counts["test"]}
    root = generate_dataset(
        tmp_path_factory.mktemp("demo") / "demo",
        counts,
        seed=DEMO_SETTINGS.seed,
        size=DEMO_SETTINGS.size,
        progress=False,
        workers=2,
    )
    engine = InferenceEngine(device="cpu")
    models = {name: engine.load(path) for name, path in PAIR.items()}
    return evaluate_split(open_dataset(root, "test"), engine, models)


def test_pair_differs_only_in_the_loss_and_fits_in_git() -> None:
    ce, ial = (load_checkpoint(path).metadata.to_dict() for path in PAIR.values())
    assert (ce["loss"], ial["loss"]) == ("ce", "ial")
    same = set(ce) - DIFFERENT_BY_NATURE
    assert {key: ce[key] for key in same} == {key: ial[key] for key in same}
    assert ce["width"] == 0.25 and ce["epochs"] > 0
    assert all(path.stat().st_size <= 10 * 2**20 for path in PAIR.values())


def _readme_row(label: str) -> tuple[float, float]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^\| {re.escape(label)} \| ([0-9.]+) \| ([0-9.]+) \|$", readme, re.M)
    assert match, f"README has no demo model row {label!r}"
    return float(match.group(1)), float(match.group(2))


def test_both_reach_the_aim_and_the_readme_reports_what_they_score(
    test_split_scores: SplitScores,
) -> None:
    ce, ial = test_split_scores.models["CE"], test_split_scores.models["IAL"]
    assert ce["miou"] >= 0.55 and ial["miou"] >= 0.55
    groups = ce.groups.names
    rows = {
        "mIoU (Cityscapes, 19 classes)": (ce["miou"], ial["miou"]),
        "IoU weighted by pixels (recipe)": (
            ce["frequency_weighted_iou"],
            ial["frequency_weighted_iou"],
        ),
        "critical-miss rate": (ce["critical_miss_rate"], ial["critical_miss_rate"]),
        "false-alarm rate": (ce["false_alarm_rate"], ial["false_alarm_rate"]),
        "IoU most important": (
            ce.group_iou[groups.index("most important")],
            ial.group_iou[groups.index("most important")],
        ),
    }
    for label, measured in rows.items():
        assert _readme_row(label) == pytest.approx(measured, abs=0.0015), label
