"""Throughput of the synthetic scene generator on one core, against just writing PNGs.

Run as ``python -m bench.bench_synthetic`` (or ``python bench/bench_synthetic.py``). The
goal is at least 20 images/s at 256x512 on one core, rendering and writing included; the
reference measured in the same run is the time to only ``cv2.imwrite`` the same, already
rendered, PNG sets, so the ratio says how much rendering adds on top of unavoidable I/O.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.synthetic import image_size, render_sample, write_sample

GOAL_IMAGES_PER_SECOND = 20.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="scenes to render (default 100)")
    parser.add_argument("--size", type=image_size, default=(256, 512), metavar="HxW",
                        help="image size (default 256x512)")  # fmt: skip
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    n = args.images
    with tempfile.TemporaryDirectory(prefix="bench_synthetic_") as tmp:
        start = time.perf_counter()
        scenes = []
        for index in range(n):
            scene = render_sample(0, "train", index, args.size)
            write_sample(Path(tmp) / "generated", "train", scene)
            scenes.append(scene)
        generate = time.perf_counter() - start
        start = time.perf_counter()
        for scene in scenes:
            write_sample(Path(tmp) / "rewritten", "train", scene)
        write_only = time.perf_counter() - start
    rate = n / generate
    size = f"{args.size[0]}x{args.size[1]}"
    print(f"synthetic scenes, {n} at {size}, 1 OpenCV thread:")
    print(f"  render + write : {rate:6.1f} images/s ({1000 * generate / n:.1f} ms each)")
    print(f"  write only     : {n / write_only:6.1f} sets/s ({1000 * write_only / n:.1f} ms each)")
    print(f"  ratio          : generating takes {generate / write_only:.2f}x the time of writing")
    verdict = "meets" if rate >= GOAL_IMAGES_PER_SECOND else "MISSES"
    print(f"  goal           : {verdict} {GOAL_IMAGES_PER_SECOND:.0f} images/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
