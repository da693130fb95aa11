"""Shared fixtures: the real sample data beside the project, skipped cleanly where absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real sample data not found at {path} (only present on the dev machines)")
    return path


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    return _shared("camvid-sample")


@pytest.fixture(scope="session")
def cityscapes_root() -> Path:
    return _shared("cityscapes-sample")


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> Path:
    """A four-image synthetic val split at the generator's smallest size."""
    from models.synthetic import generate_dataset

    return generate_dataset(
        tmp_path_factory.mktemp("synthetic") / "set",
        {"val": 4},
        seed=3,
        size=(128, 256),
        progress=False,
    )


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """A folder with two small untrained checkpoints named like the shipped pair."""
    import torch

    from models.checkpoints import CheckpointMetadata, save_checkpoint
    from models.preprocess import Preprocessing
    from models.segnet import SegNet

    folder = tmp_path_factory.mktemp("checkpoints")
    for seed, loss in ((0, "ce"), (1, "ial")):
        torch.manual_seed(seed)
        metadata = CheckpointMetadata(0.0625, 20, Preprocessing((64, 128)), loss=loss)
        save_checkpoint(folder / f"segnet-{loss}.pt", SegNet(width=0.0625).eval(), metadata)
    return folder
