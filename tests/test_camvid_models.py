"""The shipped CamVid pair on the real CamVid val split: as good as the README says.

Needs the full CamVid split in ``../shared/data/camvid`` (skips where it is absent, as on a
user's machine); the README's table of the pair must report what they score here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models.catalogue import SHIPPED_PAIRS
from models.datasets import open_dataset
from models.evaluate import evaluate_split
from models.inference import InferenceEngine
from models.scoring import SplitScores

ROOT = Path(__file__).resolve().parents[1]
CAMVID = ROOT.parent / "shared" / "data" / "camvid"
PAIR = next(pair for pair in SHIPPED_PAIRS if pair.name == "camvid")
TABLE_HEADER = "| CamVid val (101 real images, 360x480) | CE | IAL |"
MIOU_TARGET = 0.45
PERSON_TARGET = 0.20


def readme_table(header: str) -> dict[str, tuple[str, ...]]:
    """The rows of the README table that starts with ``header``: label -> cells."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert header in lines, f"README has no table {header!r}"
    rows: dict[str, tuple[str, ...]] = {}
    for line in lines[lines.index(header) + 2 :]:
        if not line.startswith("|"):
            break
        label, *cells = (cell.strip() for cell in line.strip("|").split("|"))
        rows[label] = tuple(cells)
    return rows


@pytest.fixture(scope="module")
def val_scores() -> SplitScores:
    if not (CAMVID / "val").is_dir():
        pytest.skip(f"the full CamVid split is not at {CAMVID}")
    engine = InferenceEngine(device="cpu")
    models = {loss.upper(): engine.load(PAIR.path(loss)) for loss in ("ce", "ial")}
    return evaluate_split(open_dataset(CAMVID, "val"), engine, models)


def _measured(scores: SplitScores) -> dict[str, tuple[float | None, float | None]]:
    ce, ial = scores.models["CE"], scores.models["IAL"]
    groups = ce.groups.names
    rows = {
        key: (ce[key], ial[key])
        for key in ("miou", "frequency_weighted_iou", "critical_miss_rate", "false_alarm_rate")
    }
    for index, name in enumerate(groups):
        rows[f"IoU {name}"] = (ce.group_iou[index], ial.group_iou[index])
    for train_id, name in ((11, "person"), (12, "rider"), (13, "car"), (5, "pole")):
        rows[f"IoU {name}"] = (ce.iou[train_id], ial.iou[train_id])
    return rows


LABELS = {
    "miou": "mIoU (pooled, Cityscapes)",
    "frequency_weighted_iou": "frequency-weighted IoU (recipe)",
    "critical_miss_rate": "critical-miss rate",
    "false_alarm_rate": "false-alarm rate",
}


def test_the_readme_reports_what_the_pair_scores_on_camvid_val(val_scores: SplitScores) -> None:
    table = readme_table(TABLE_HEADER)
    for key, (ce, ial) in _measured(val_scores).items():
        label = LABELS.get(key, key)
        assert label in table, f"README table has no row {label!r}"
        written = [float(cell.rstrip("%")) / (100 if cell.endswith("%") else 1)
                   for cell in table[label][:2]]  # fmt: skip
        tolerance = 0.0015 if not table[label][0].endswith("%") else 0.0006
        assert written == pytest.approx([ce, ial], abs=tolerance), label


def test_the_pair_reaches_the_targets_or_the_readme_says_it_does_not(
    val_scores: SplitScores,
) -> None:
    ce, ial = val_scores.models["CE"], val_scores.models["IAL"]
    reached = all(m["miou"] >= MIOU_TARGET and m.iou[11] >= PERSON_TARGET for m in (ce, ial))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    if not reached:
        assert "does not reach the target" in readme
