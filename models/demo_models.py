"""Retrain the two shipped demo models in one command: ``python -m models.demo_models``.

Both are trained on the synthetic demo set with identical settings but the loss (CE and
IAL), in parallel, one process per core, and written to ``models/checkpoints/``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from models.synthetic import DEMO_DATA, ensure_demo_dataset

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
DEMO_TRAINING = {"width": "0.25", "size": "128x256", "batch": "8", "lr": "1e-3", "seed": "0"}
"""Settings shared by both demo models (only the loss differs)."""


def train_command(loss: str, epochs: int, out_dir: Path, resume: bool) -> list[str]:
    command = [sys.executable, "-m", "models.train", "--data", DEMO_DATA, "--loss", loss]
    command += ["--out", str(out_dir / f"segnet-{loss}.pt"), "--epochs", str(epochs)]
    for option, value in DEMO_TRAINING.items():
        command += [f"--{option}", value]
    return [*command, "--resume"] if resume else command


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.demo_models",
        description="Train the CE and IAL demo SegNets on the synthetic demo set "
        f"({', '.join(f'{k} {v}' for k, v in DEMO_TRAINING.items())}), in parallel.",
    )
    parser.add_argument(
        "--epochs", type=int, default=56, help="epochs (default 56, as the shipped models)"
    )
    parser.add_argument("--out", type=Path, default=CHECKPOINTS, help="output folder")
    parser.add_argument(
        "--resume", action="store_true", help="continue interrupted runs or add epochs"
    )
    args = parser.parse_args(argv)
    ensure_demo_dataset(progress=True)
    args.out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 2) // 2)
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    runs = [
        subprocess.Popen(train_command(loss, args.epochs, args.out, args.resume), env=environment)
        for loss in ("ce", "ial")
    ]
    codes = [run.wait() for run in runs]
    return max(codes)


if __name__ == "__main__":
    raise SystemExit(main())
