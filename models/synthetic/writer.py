"""A synthetic set on disk: its files in the Cityscapes layout, its stamps, the demo set.

An image's random stream is seeded from (seed, split, index) alone, which is what lets
worker processes render the images in any order and still write the same files.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.datasets import SYNTHETIC_STAMP
from models.labels import LABEL_COLOR_BY_ID, NUM_EVALUATED
from models.options import DEMO_DATA
from models.synthetic.render import Scene, SyntheticError, check_size, render_requiring

GENERATOR_VERSION = 1
"""Bumped whenever the drawing changes, so a cached set of an older generator is rebuilt."""
STAMP_NAME = SYNTHETIC_STAMP
SETTINGS_NAME = "synthetic.settings.json"
"""Written first and kept: marks a folder as ours even when a run was cut short."""
FORMAT_NAME = "segnet-review-bench synthetic road scenes"
CITIES: dict[str, tuple[str, ...]] = {
    "train": ("synth_alpha", "synth_bravo", "synth_charlie"),
    "val": ("synth_delta", "synth_echo"),
    "test": ("synth_foxtrot", "synth_golf"),
}
FRAMES_PER_SEQUENCE = 10
ALL_TRAIN_IDS = frozenset(range(NUM_EVALUATED))


@dataclass(frozen=True)
class SyntheticSettings:
    """What determines a synthetic set's content; stored in its ``synthetic.json`` stamp."""

    counts: Mapping[str, int]
    size: tuple[int, int] = (256, 512)
    seed: int = 0

    def to_dict(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "generator_version": GENERATOR_VERSION,
            "seed": int(self.seed),
            "size": [int(self.size[0]), int(self.size[1])],
            "counts": {split: int(n) for split, n in self.counts.items()},
        }


DEMO_SETTINGS = SyntheticSettings(counts={"train": 1000, "val": 200, "test": 200})
DEMO_FOLDER = "demo-v1"


def sample_name(split: str, index: int) -> tuple[str, str]:
    """(city, stem) of image ``index`` of ``split``: sequences of 10 frames, cities in turn."""
    cities = CITIES.get(split, (f"synth_{split}",))
    sequence, frame = divmod(index, FRAMES_PER_SEQUENCE)
    city = cities[sequence % len(cities)]
    return city, f"{city}_{sequence:06d}_{frame:06d}"


def _image_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, zlib.crc32(split.encode()), index])


def _required(index: int) -> frozenset[int]:
    """Every fifth image, starting with the first, must show all 19 classes: so every split
    has them all, and rare classes are seen often enough to be learned."""
    return ALL_TRAIN_IDS if index % 5 == 0 else frozenset()


def render_sample(seed: int, split: str, index: int, size: tuple[int, int]) -> Scene:
    """Scene ``index`` of ``split`` in a set made with ``seed``, with its name in the meta."""
    scene = render_requiring(_image_seed(seed, split, index), size, _required(index))
    city, stem = sample_name(split, index)
    sequence, frame = divmod(index, FRAMES_PER_SEQUENCE)
    scene.meta.update(
        split=split, index=index, city=city, sequence=sequence, frame=frame, stem=stem
    )
    return scene


def write_sample(root: Path, split: str, scene: Scene) -> None:
    """Write a scene's four PNGs and its JSON sidecar in the Cityscapes layout."""
    city, stem = scene.meta["city"], scene.meta["stem"]
    image_dir = root / "leftImg8bit" / split / city
    label_dir = root / "gtFine" / split / city
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    files = {
        image_dir / f"{stem}_leftImg8bit.png": cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR),
        label_dir / f"{stem}_gtFine_labelIds.png": scene.label_ids,
        label_dir / f"{stem}_gtFine_instanceIds.png": scene.instance_ids.astype(np.uint16),
        label_dir / f"{stem}_gtFine_color.png": cv2.cvtColor(
            LABEL_COLOR_BY_ID[scene.label_ids], cv2.COLOR_RGB2BGR
        ),
    }
    for path, array in files.items():
        if not cv2.imwrite(str(path), array):
            raise SyntheticError(f"could not write {path}")
    sidecar = image_dir / f"{stem}_meta.json"
    sidecar.write_text(json.dumps(scene.meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _work(task: tuple[Path, int, str, int, tuple[int, int]]) -> None:
    root, seed, split, index, size = task
    write_sample(root, split, render_sample(seed, split, index, size))


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _settings_of(data: dict | None) -> dict | None:
    if data is None:
        return None
    keys = ("format", "generator_version", "seed", "size", "counts")
    return {k: data.get(k) for k in keys}


def is_complete(out: Path, settings: SyntheticSettings) -> bool:
    """Whether ``out`` holds a finished synthetic set made with exactly these settings."""
    return _settings_of(_read_json(Path(out) / STAMP_NAME)) == settings.to_dict()


def _check_target(out: Path, wanted: dict) -> None:
    if out.exists() and not out.is_dir():
        raise SyntheticError(f"{out} exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    for name in (STAMP_NAME, SETTINGS_NAME):
        found = _settings_of(_read_json(out / name))
        if found == wanted:
            return
        if found is not None and found.get("format") == FORMAT_NAME:
            differ = ", ".join(
                f"{k} {found[k]!r} (wanted {wanted[k]!r})" for k in wanted if found[k] != wanted[k]
            )
            raise SyntheticError(
                f"{out} holds a synthetic set with other settings ({differ}); "
                "refusing to overwrite it: choose another --out folder or delete it"
            )
    raise SyntheticError(
        f"{out} is not empty and is not a synthetic set made by this tool; "
        "refusing to overwrite it: choose an empty or new --out folder"
    )


def _check_counts(counts: Mapping[str, int]) -> dict[str, int]:
    checked = {}
    for split, n in counts.items():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", str(split)):
            raise SyntheticError(f"split name {split!r}: use letters, digits, '_' or '-'")
        if not isinstance(n, int | np.integer) or n < 0:
            raise SyntheticError(
                f"count for split {split!r} must be a whole number >= 0, got {n!r}"
            )
        checked[str(split)] = int(n)
    if not any(checked.values()):
        raise SyntheticError("nothing to generate: every split count is 0")
    return checked


def generate_dataset(
    out: Path,
    counts: Mapping[str, int],
    seed: int = 0,
    size: tuple[int, int] = (256, 512),
    progress: bool = True,
    workers: int = 1,
) -> Path:
    """Write a synthetic set in the Cityscapes layout and return its folder.

    ``synthetic.settings.json`` is written first and ``synthetic.json`` last, as the stamp
    of a complete set. A non-empty ``out`` is only overwritten when one of them shows it is
    a (complete or interrupted) set with the same settings.
    """
    out = Path(out)
    settings = SyntheticSettings(
        counts=_check_counts(counts), size=check_size(size), seed=int(seed)
    )
    wanted = settings.to_dict()
    _check_target(out, wanted)
    out.mkdir(parents=True, exist_ok=True)
    (out / STAMP_NAME).unlink(missing_ok=True)
    (out / SETTINGS_NAME).write_text(json.dumps(wanted, indent=1) + "\n", encoding="utf-8")
    tasks = [
        (out, settings.seed, split, index, settings.size)
        for split, n in settings.counts.items()
        for index in range(n)
    ]
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc=f"synthetic set -> {out}", unit="img", disable=not progress)
    workers = max(1, min(int(workers), len(tasks)))
    if workers == 1:
        for task in tasks:
            _work(task)
            bar.update()
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_init_worker) as pool:
            for _ in pool.imap_unordered(_work, tasks, chunksize=4):
                bar.update()
    bar.close()
    stamp = dict(wanted, cities={s: list(CITIES.get(s, (f"synth_{s}",))) for s in settings.counts})
    stamp["libraries"] = {"numpy": np.__version__, "opencv": cv2.__version__}
    temporary = out / (STAMP_NAME + ".tmp")
    temporary.write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
    temporary.replace(out / STAMP_NAME)
    return out


def default_cache_dir() -> Path:
    """``$SEGBENCH_CACHE``, else ``~/.cache/segnet-review-bench``."""
    env = os.environ.get("SEGBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "segnet-review-bench"


def resolve_data(data: str | Path) -> Path:
    """A dataset folder from a command line's ``--data``: 'demo' means the demo set."""
    return ensure_demo_dataset() if str(data) == DEMO_DATA else Path(data)


def demo_folder(cache_dir: Path | None = None) -> Path:
    """Where the demo set is kept (made there on first use)."""
    return (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / DEMO_FOLDER


def demo_dataset_ready(cache_dir: Path | None = None) -> bool:
    """Whether the demo set is there and complete (else the next use generates it)."""
    return is_complete(demo_folder(cache_dir), DEMO_SETTINGS)


def ensure_demo_dataset(cache_dir: Path | None = None, progress: bool = True) -> Path:
    """The demo set's folder, generated on first use (or when an earlier run was cut short)."""
    out = demo_folder(cache_dir)
    if is_complete(out, DEMO_SETTINGS):
        return out
    return generate_dataset(
        out,
        DEMO_SETTINGS.counts,
        seed=DEMO_SETTINGS.seed,
        size=DEMO_SETTINGS.size,
        progress=progress,
        workers=os.cpu_count() or 1,
    )
