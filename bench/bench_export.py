"""Benchmark the export of 1,000 flagged images: seconds per format against inference alone.

A synthetic split of 1,000 images (128x256, cached between runs) is registered in a fresh
SQLite store with one flag per image (a third of them edited, for history) on a pair of random
SegNet checkpoints. The reference, measured in the same run, is the floor of any export that
shows predictions: reading the 1,000 images and running both models on each, one image at a
time as the export does. Each export uses a fresh inference engine, so it gets no cache.

    python -m bench.bench_export [--images 1000] [--width 0.25] [--formats all,html,csv,json,masks]

Goal (issue "error reports"): all four formats of 1,000 flagged images in at most 60 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from db import ReviewStore
from models.catalogue import ModelCatalogue
from models.checkpoints import CheckpointMetadata, save_checkpoint
from models.datasets import open_dataset
from models.inference import InferenceEngine
from models.preprocess import Preprocessing
from models.segnet import SegNet
from models.synthetic import STAMP_NAME, default_cache_dir, generate_dataset
from reviewer.export import FORMATS, export_report
from reviewer.workbench import Workbench

SIZE = (128, 256)
GOAL_SECONDS = 60.0


def dataset_folder(images: int) -> Path:
    """The cached synthetic split (generated once, on both cores)."""
    out = default_cache_dir() / f"bench-export-{images}-{SIZE[0]}x{SIZE[1]}"
    if not (out / STAMP_NAME).is_file():
        generate_dataset(out, {"val": images}, seed=0, size=SIZE, progress=True, workers=2)
    return out


def prepare(work: Path, data: Path, width: float) -> tuple[ReviewStore, Path]:
    """Two checkpoints and a store with one flag per image of the split."""
    models = work / "models"
    for seed, loss in enumerate(("ce", "ial")):
        torch.manual_seed(seed)
        metadata = CheckpointMetadata(width, 20, Preprocessing(SIZE), loss=loss)
        save_checkpoint(models / f"{loss}.pt", SegNet(width=width).eval(), metadata)
    store = ReviewStore.open(f"sqlite:///{work / 'review.db'}")
    bench = Workbench(
        dataset=open_dataset(data, "val"),
        engine=InferenceEngine(device="cpu"),
        store=store,
        catalogue=ModelCatalogue.of_files({"ce": models / "ce.pt", "ial": models / "ial.pt"}),
    )
    ce, ial = bench.registry.model_id("ce"), bench.registry.model_id("ial")
    severities = ("critical", "major", "minor")
    categories = ("missed person", "missed vehicle", "boundary error", "other")
    for n, sample in enumerate(bench.dataset.samples):
        flag = store.create_flag(
            image_id=bench.registry.image_id(sample.id),
            reviewer=f"reviewer {n % 3}",
            target="model_a",
            model_a_id=ce,
            model_b_id=ial,
            severity=severities[n % 3],
            category=categories[n % 4],
            note=f"case {n}: <b>check</b> the crossing",
            region=(10, 10, 60, 40),
        )
        if n % 3 == 0:
            store.update_flag(flag.id, "lead", status="confirmed")
    return store, models


def reference_seconds(data: Path, models: Path) -> float:
    """Read every image and run both models on it, one image at a time, without a cache."""
    dataset = open_dataset(data, "val")
    engine = InferenceEngine(device="cpu", cache_bytes=0)
    loaded = [engine.load(models / "ce.pt"), engine.load(models / "ial.pt")]
    start = time.perf_counter()
    for sample in dataset.samples:
        image = dataset.read_image(sample)
        for model in loaded:
            engine.predict(model, image)
    return time.perf_counter() - start


def export_seconds(store: ReviewStore, models: Path, out: Path, formats: tuple[str, ...]):
    start = time.perf_counter()
    result = export_report(
        out,
        store,
        formats=formats,
        model_sources=[models],
        engine=InferenceEngine(device="cpu"),
    )
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in result.files)
    return seconds, result, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="flagged images (default 1000)")
    parser.add_argument(
        "--width", type=float, default=0.25, help="SegNet width of the two checkpoints"
    )
    parser.add_argument(
        "--formats",
        default="all," + ",".join(FORMATS),
        help="exports to time: 'all' (every format at once) and/or single formats",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a busy 2-core machine more threads spin-wait and "
        "make one small forward pass 50x slower, for the reference and the export alike)",
    )
    args = parser.parse_args(argv)
    runs = [r.strip() for r in args.formats.split(",") if r.strip()]
    torch.set_num_threads(args.threads)
    data = dataset_folder(args.images)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        work = Path(tmp)
        store, models = prepare(work, data, args.width)
        reference = reference_seconds(data, models)
        print(
            f"{args.images} flagged images at {SIZE[1]}x{SIZE[0]}, SegNet width {args.width}, "
            f"{args.threads} torch thread(s)"
        )
        print(f"reference (read + both models, per image): {reference:7.2f} s")
        for run in runs:
            formats = FORMATS if run == "all" else (run,)
            seconds, result, size = export_seconds(store, models, work / f"out-{run}", formats)
            print(
                f"export {run:<6} {seconds:7.2f} s  x{seconds / reference:4.2f} of reference  "
                f"{size / 1e6:7.1f} MB  {len(result.files)} files"
            )
            if run == "all":
                verdict = "meets" if seconds <= GOAL_SECONDS else "MISSES"
                print(f"  {verdict} the goal of {GOAL_SECONDS:.0f} s for every format at once")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
