"""Command line of the review app (``python launch.py --help``): parses the options, then
loads the heavy libraries (torch, Gradio, the database driver) and starts the server in
:mod:`reviewer.serving`, bound to 127.0.0.1 unless told otherwise. Parsing first keeps
``--help`` and a mistyped option instant."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from models.options import DEMO_DATA, DEVICE_CHOICES

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
    from reviewer.serving import serve  # torch, Gradio and the database load only now

    return serve(args)
