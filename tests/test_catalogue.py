"""The model catalogue: the shipped pairs load with honest cards, models are matched to the kind
of data shown, and an unreadable checkpoint is skipped with its reason instead of stopping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from models.catalogue import SHIPPED_PAIRS, UPLOAD_KIND, ModelCatalogue
from models.checkpoints import load_checkpoint
from models.datasets import DATA_KIND_NAMES, SYNTHETIC, open_dataset

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


@pytest.mark.parametrize("pair", SHIPPED_PAIRS, ids=lambda pair: pair.name)
def test_shipped_pair_loads_with_a_card_naming_its_data_and_no_local_path(pair) -> None:
    for loss in ("ce", "ial"):
        path = pair.path(loss)
        assert path.stat().st_size <= 10 * 2**20, f"{path.name} is too large for git"
        metadata = load_checkpoint(path).metadata
        assert metadata.loss == loss
        assert metadata.training_data["kind"] == pair.data_kind
        assert metadata.training_data["split"] == "train"
        for text in _strings(metadata.to_dict()):
            assert not any(word.startswith(("/", "~")) for word in text.split()), text
            assert str(Path.home()) not in text and "/work" not in text, text
    ce, ial = (load_checkpoint(pair.path(loss)).metadata for loss in ("ce", "ial"))
    assert ce.training_data == ial.training_data
    assert ce.preprocessing == ial.preprocessing and ce.width == ial.width


def test_card_titles_say_what_the_pictures_are() -> None:
    names = {
        pair.data_kind: load_checkpoint(pair.path("ce")).metadata.training_data["name"]
        for pair in SHIPPED_PAIRS
    }
    assert names[SYNTHETIC] == "synthetic demo scenes (generated, not real photos)"
    assert names["camvid"] == "CamVid train, 367 real images (CC BY-NC 4.0)"


def test_pair_for_each_kind_of_data() -> None:
    catalogue = ModelCatalogue.discover([])
    assert catalogue.pair_for(SYNTHETIC) == ("segnet-ce", "segnet-ial")
    assert catalogue.pair_for("camvid") == ("camvid-ce", "camvid-ial")
    assert catalogue.pair_for(UPLOAD_KIND) == ("camvid-ce", "camvid-ial")
    assert catalogue.pair_for("kitti")[0] in catalogue


def test_mismatch_is_said_plainly_and_only_when_the_kinds_differ() -> None:
    catalogue = ModelCatalogue.discover([])
    assert catalogue["camvid-ial"].mismatch("camvid") is None
    assert catalogue["segnet-ce"].mismatch(SYNTHETIC) is None
    assert catalogue["segnet-ce"].mismatch("camvid") == (
        f"segnet-ce was trained on {DATA_KIND_NAMES[SYNTHETIC]}; the images are CamVid"
    )
    assert "the images are Cityscapes" in catalogue["camvid-ce"].mismatch("cityscapes")
    label = catalogue["camvid-ce"].label
    assert label == "camvid-ce (CE, CamVid train, 367 real images (CC BY-NC 4.0))"
    assert ("segnet-ial (IAL, " + DATA_KIND_NAMES[SYNTHETIC] + ")", "segnet-ial") in (
        catalogue.choices()
    )


def test_unreadable_checkpoint_is_skipped_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    catalogue = ModelCatalogue.discover([tmp_path])
    assert "broken" not in catalogue and "segnet-ce" in catalogue
    [(path, reason)] = catalogue.skipped
    assert path.name == "broken.pt" and "Nothing in it was executed" in reason


def test_user_models_keep_their_names_and_unknown_data_is_said(tiny_models: Path) -> None:
    catalogue = ModelCatalogue.discover([tiny_models], shipped=False)
    names = catalogue.names
    assert catalogue.pair_for("camvid") == (names[0], names[1])
    note = catalogue[names[0]].mismatch("camvid")
    assert note is not None and "the images are CamVid" in note


def test_dataset_kind_of_the_real_samples() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real samples not found at {SHARED_DATA}")
    assert open_dataset(SHARED_DATA / "camvid-sample", "val").kind == "camvid"
    assert open_dataset(SHARED_DATA / "cityscapes-sample", "val").kind == "cityscapes"
