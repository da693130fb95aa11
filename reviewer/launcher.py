"""Command line of the review app (``python launch.py --help``): builds the services and
starts the Gradio server, bound to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from db.config import default_data_dir, resolve_db_url
from db.store import ReviewStore, ValidationError
from models.catalogue import ModelCatalogue
from models.checkpoints import CheckpointError
from models.datasets import DatasetError, open_dataset, skipped_lines
from models.device import DEVICE_CHOICES, DeviceError
from models.inference import InferenceEngine
from models.labels import DEFAULT_GROUPS, GroupsError, ImportanceGroups
from models.synthetic import DEMO_DATA, resolve_data
from reviewer.app import CSS, AppOptions, build_app
from reviewer.workbench import Workbench

DEFAULT_MAX_UPLOAD_MB = 50
"""A road photo is a few MB; anything far larger is not one and costs memory to receive."""
GRADIO_TEMP_ENV = "GRADIO_TEMP_DIR"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python launch.py",
        description="Review two SegNet models side by side (CE vs importance-aware loss): "
        "ground truth against both predictions, per-class IoU and importance-group "
        "confusion, a worst-first review queue, flags with an audit trail, error reports.",
    )
    parser.add_argument(
        "--data",
        default=DEMO_DATA,
        help="dataset folder (Cityscapes, KITTI, CamVid or plain images; detected), or "
        "'demo' for the synthetic demo set, generated on first use (default: demo)",
    )
    parser.add_argument("--split", default="val", help="split to review (default: val)")
    parser.add_argument(
        "--models",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE_OR_DIR",
        help="checkpoint files or folders of them, offered besides the shipped pairs (the "
        "pair trained on the kind of data shown is opened first)",
    )
    parser.add_argument(
        "--only-my-models",
        action="store_true",
        help="offer only the --models checkpoints, not the shipped pairs",
    )
    parser.add_argument(
        "--db",
        help="review database URL (default: $SEGBENCH_DB, else a SQLite file in the data "
        "folder); e.g. postgresql+psycopg://user@host/reviews for a team",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: only this machine; 0.0.0.0 exposes it)",
    )
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument(
        "--max-upload-mb",
        type=int,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest file the page accepts for upload, in MB (default {DEFAULT_MAX_UPLOAD_MB})",
    )
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument("--groups", type=Path, help="importance groups TOML (default: recipe)")
    parser.add_argument(
        "--export-dir",
        type=Path,
        help="where exported reports are written (default: <data folder>/exports)",
    )
    parser.add_argument(
        "--no-evaluate",
        action="store_true",
        help="do not evaluate the split at start (the queue is then ordered by name until "
        "you evaluate it in the Dataset tab)",
    )
    return parser


def prepare(args: argparse.Namespace) -> tuple[Workbench, AppOptions]:
    """The workbench the app serves and the app's options; when the split has no cached
    scores for the default pair, their first evaluation starts behind the app."""
    groups = ImportanceGroups.load(args.groups) if args.groups else DEFAULT_GROUPS
    dataset = open_dataset(resolve_data(args.data), args.split)
    print(dataset.describe(), file=sys.stderr)
    for line in skipped_lines(dataset.skipped, dataset.root):
        print(line, file=sys.stderr)
    catalogue = ModelCatalogue.discover(args.models, shipped=not args.only_my_models)
    for path, reason in catalogue.skipped:
        print(f"  skipped model {path.name}: {reason}", file=sys.stderr)
    data_dir = default_data_dir()
    bench = Workbench(
        dataset=dataset,
        engine=InferenceEngine(device=args.device),
        store=ReviewStore.open(resolve_db_url(args.db)),
        catalogue=catalogue,
        upload_dir=data_dir / "uploads",
        groups=groups,
    )
    options = AppOptions(
        export_dir=(args.export_dir or data_dir / "exports").expanduser().resolve(),
    )
    first, second = catalogue.pair_for(dataset.kind)
    if (
        dataset.has_labels
        and not args.no_evaluate
        and bench.scores.cached_scores(first, second) is None
    ):
        bar = tqdm(total=len(dataset), desc="first evaluation of the split", unit="img")
        scoring = bench.score_in_background(first, second, lambda done, _: bar.update(done - bar.n))
        scoring.future.add_done_callback(lambda _: bar.close())
    return bench, options


def private_temp_dir(data_dir: Path, port: int) -> Path:
    """Gradio's temporary folder for this app, made its own: Gradio serves what lies in its
    temporary folder, and by default every Gradio app on the machine shares one under /tmp.
    This one is below the app's data folder, readable by its owner only, one per port (two
    apps cannot share a port) and emptied at every start."""
    folder = data_dir / "tmp" / f"port-{port}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, mode=0o700)
    folder.chmod(0o700)
    os.environ[GRADIO_TEMP_ENV] = str(folder)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # databases, uploads and exports are readable by their owner only
    private_temp_dir(default_data_dir(), args.port)
    try:
        bench, options = prepare(args)
    except (
        DatasetError,
        CheckpointError,
        GroupsError,
        DeviceError,
        ValidationError,
        FileNotFoundError,
        ValueError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app = build_app(bench, options)
    options.export_dir.mkdir(parents=True, exist_ok=True)
    try:
        app.queue(default_concurrency_limit=4).launch(
            server_name=args.host,
            server_port=args.port,
            allowed_paths=[str(options.export_dir)],
            css=CSS,
            show_error=False,
            footer_links=[],
            max_file_size=args.max_upload_mb * 1024**2,
        )
    except OSError as error:
        print(f"error: cannot serve on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    return 0
