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
