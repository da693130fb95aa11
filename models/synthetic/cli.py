"""The command line ``python -m models.synthetic``: write a set of chosen size and counts."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from models.arguments import parse_size
from models.synthetic.render import SyntheticError, check_size
from models.synthetic.writer import DEMO_SETTINGS, generate_dataset


def image_size(text: str) -> tuple[int, int]:
    """An image ``HxW`` -> (H, W), in the range the generator draws."""
    try:
        return check_size(parse_size(text))
    except SyntheticError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    demo = DEMO_SETTINGS
    parser = argparse.ArgumentParser(
        prog="python -m models.synthetic",
        description="Render synthetic road scenes with Cityscapes-style labels (labelIds, "
        "instanceIds, colour PNGs and a JSON sidecar of conditions per image) into "
        "OUT/leftImg8bit/<split>/<city>/ and OUT/gtFine/<split>/<city>/.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder to write (must be empty, new, or an earlier synthetic set "
        "with the same settings)",
    )
    for split in ("train", "val", "test"):
        parser.add_argument(
            f"--{split}",
            type=_count,
            default=demo.counts[split],
            help=f"number of {split} images (default {demo.counts[split]})",
        )
    parser.add_argument(
        "--seed",
        type=int,
        default=demo.seed,
        help=f"random seed; same seed and versions give identical files (default {demo.seed})",
    )
    parser.add_argument(
        "--size",
        type=image_size,
        default=demo.size,
        metavar="HxW",
        help="image height x width in pixels, 32..4096 each "
        f"(default {demo.size[0]}x{demo.size[1]})",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=os.cpu_count() or 1,
        help="processes rendering in parallel (default: number of CPUs)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    counts = {"train": args.train, "val": args.val, "test": args.test}
    try:
        out = generate_dataset(
            args.out, counts, args.seed, args.size, not args.no_progress, args.workers
        )
    except SyntheticError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {sum(counts.values())} scenes to {out}")
    return 0
