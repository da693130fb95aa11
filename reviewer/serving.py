"""Start-up of the review app once its command line is parsed: the services over the split,
the first evaluation behind the app, and the Gradio server. Every problem a user can fix
(a bad folder, option or database) ends here in one line naming it, and exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from tqdm import tqdm

from db.config import default_data_dir, resolve_db_url
from db.engine import DatabaseAccessError
from db.store import ReviewStore, ValidationError
from models.catalogue import ModelCatalogue
from models.checkpoints import CheckpointError
from models.datasets import DatasetError, open_dataset, skipped_lines
from models.device import DeviceError
from models.inference import InferenceEngine
from models.labels import DEFAULT_GROUPS, GroupsError, ImportanceGroups
from models.options import DEMO_DATA
from models.synthetic import DEMO_SETTINGS, demo_dataset_ready, demo_folder, resolve_data
from reviewer.app import CSS, AppOptions, build_app
from reviewer.launcher import private_temp_dir
from reviewer.workbench import Workbench

LAUNCH_ERRORS = (
    DatasetError,
    CheckpointError,
    GroupsError,
    DeviceError,
    ValidationError,
    DatabaseAccessError,
    OSError,
    ValueError,
)
"""What a start can fail with that the user fixes (the message says how); anything else is
a bug and keeps its traceback."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def error_line(error: BaseException) -> str:
    """The one-line form of a start-up error; an OS error names its file as text."""
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def open_data(data: str) -> Path:
    """The dataset folder of ``--data``; on the first start with the demo set, says that it
    is being built and how long that took (it is made once and kept)."""
    if data != DEMO_DATA or demo_dataset_ready():
        return resolve_data(data)
    images = sum(DEMO_SETTINGS.counts.values())
    _say(
        f"first start: building the demo set in {demo_folder()} ({images} synthetic images, "
        "made once and kept; the bar shows the time left)"
    )
    started = time.monotonic()
    folder = resolve_data(data)
    _say(f"demo set built in {time.monotonic() - started:.0f} s")
    return folder


def start_behind(
    bench: Workbench, first: str, second: str, served: threading.Event | None = None
) -> None:
    """Load the default pair and, when the store lacks its scores of the split, score it,
    behind the app and once ``served`` is set (neither delays serving the page); says so
    and how long it took."""
    total = len(bench.dataset)
    shown: list[tqdm] = []
    started = time.monotonic()

    def starting() -> None:
        nonlocal started
        _say(
            f"scoring the split with {first} and {second} behind the app ({total} images; "
            "the queue is in name order until then, the page shows the progress)"
        )
        started = time.monotonic()
        shown.append(tqdm(total=total, desc="first evaluation of the split", unit="img"))

    def progress(done: int, _: int) -> None:
        shown[0].update(done - shown[0].n)

    scoring = bench.score_in_background(first, second, progress, True, starting, served)

    def finished(future: Future) -> None:
        for bar in shown:
            bar.close()
        if scoring.failure() is None and future.result() is not None:
            _say(f"split scored in {time.monotonic() - started:.0f} s: the queue is ranked")

    scoring.future.add_done_callback(finished)


def prepare(
    args: argparse.Namespace, served: threading.Event | None = None
) -> tuple[Workbench, AppOptions]:
    """The workbench the app serves and the app's options; the default pair is loaded
    behind the app once ``served`` is set, and scored when the split has no cached scores
    for it. Nothing here loads a model's weights or decodes an image."""
    groups = ImportanceGroups.load(args.groups) if args.groups else DEFAULT_GROUPS
    dataset = open_dataset(open_data(args.data), args.split)
    _say(dataset.describe())
    for line in skipped_lines(dataset.skipped, dataset.root):
        _say(line)
    catalogue = ModelCatalogue.discover(args.models, shipped=not args.only_my_models)
    for path, reason in catalogue.skipped:
        _say(f"  skipped model {path.name}: {reason}")
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
    options.export_dir.mkdir(parents=True, exist_ok=True)
    first, second = catalogue.pair_for(dataset.kind)
    if dataset.has_labels and not args.no_evaluate:
        start_behind(bench, first, second, served)
    return bench, options


def serve(args: argparse.Namespace) -> int:
    """Build everything and serve until interrupted; 2 with one line for a start that fails."""
    os.umask(0o077)  # databases, uploads and exports are readable by their owner only
    served = threading.Event()
    try:
        private_temp_dir(default_data_dir(), args.port)
        bench, options = prepare(args, served)
    except LAUNCH_ERRORS as error:
        _say(f"error: {error_line(error)}")
        return 2
    app = build_app(bench, options)
    try:
        app.queue(default_concurrency_limit=4).launch(
            server_name=args.host,
            server_port=args.port,
            allowed_paths=[str(options.export_dir)],
            css=CSS,
            show_error=False,
            footer_links=[],
            max_file_size=args.max_upload_mb * 1024**2,
            prevent_thread_lock=True,
        )
    except OSError as error:
        _say(f"error: cannot serve on {args.host}:{args.port}: {error_line(error)}")
        return 2
    served.set()
    app.block_thread()
    return 0
