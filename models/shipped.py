"""Retrain a shipped CE/IAL pair in one command:

    python -m models.shipped demo                          # the synthetic demo pair
    python -m models.shipped camvid --data ~/data/CamVid   # the real-scene pair

Both models of a pair are trained with ``models.train`` on the same data with the same settings
but the loss, in parallel, one process per half of the cores, and written beside the
shipped checkpoints (or to ``--out``) with their per-epoch CSV logs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from models.catalogue import SHIPPED_CHECKPOINTS, SHIPPED_PAIRS, ShippedPair
from models.datasets import SYNTHETIC
from models.synthetic import DEMO_DATA, ensure_demo_dataset

PAIRS = {pair.name: pair for pair in SHIPPED_PAIRS}


def train_command(
    pair: ShippedPair, loss: str, data: str, out_dir: Path, args: argparse.Namespace
) -> list[str]:
    """The ``models.train`` command line of one model of the pair."""
    command = [sys.executable, "-m", "models.train", "--data", data, "--loss", loss]
    command += ["--out", str(out_dir / pair.path(loss).name)]
    command += ["--epochs", str(args.epochs or pair.epochs)]
    for option, value in pair.settings.items():
        command += [f"--{option}", value]
    return [*command, "--resume"] if args.resume else command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.shipped",
        description="Retrain a shipped CE/IAL pair: both models with the same settings but "
        "the loss, in parallel. "
        + "; ".join(
            f"{p.name}: {', '.join(f'{k} {v}' for k, v in p.settings.items())}, {p.epochs} epochs"
            for p in SHIPPED_PAIRS
        ),
    )
    parser.add_argument("pair", choices=list(PAIRS), help="which shipped pair to retrain")
    parser.add_argument(
        "--data",
        help="dataset folder (required for camvid: the SegNet tutorial layout with train/ and "
        "val/; the demo pair generates its synthetic set when absent)",
    )
    parser.add_argument(
        "--epochs", type=int, help="epochs in total (default: as the shipped checkpoints)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=SHIPPED_CHECKPOINTS,
        help="output folder (default: the shipped one)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue interrupted runs (same settings)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    pair = PAIRS[args.pair]
    data = args.data or (DEMO_DATA if pair.data_kind == SYNTHETIC else None)
    if data is None:
        parser.error(f"the {pair.name} pair needs --data: the folder of its dataset")
    if data == DEMO_DATA:
        ensure_demo_dataset(progress=True)  # once, before two trainings would race to make it
    args.out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 2) // 2)
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    runs = [
        subprocess.Popen(train_command(pair, loss, data, args.out, args), env=environment)
        for loss in ("ce", "ial")
    ]
    return max(run.wait() for run in runs)


if __name__ == "__main__":
    raise SystemExit(main())
