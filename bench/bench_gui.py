"""How fast the review app answers a person, measured in a real headless Chromium.

    python -m bench.bench_gui [--data demo] [--images 30]

Starts ``launch.py`` on the data (the demo set by default, which must already exist for
the start-up figure to mean anything) with the shipped models, and reports:

* start-up: seconds from process start until the page is served (goal: at most 20 s);
* selecting a new image (the "n" key): latency until every panel shows it, median and
  95th percentile (goals: 300 ms and 600 ms);
* revisiting an image ("p" back over seen images): median latency (goal: 100 ms).

Each latency is printed beside the reference measured in the same run: the time the two
models alone take to predict one image on this machine (the floor any GUI pays), as a ratio.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
PANEL_IMAGES = 8
"""Image panels that must show the new image: input, truth, A, B, slider, 2 errors, agreement."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(data: str, port: int, workdir: Path) -> tuple[subprocess.Popen, float]:
    """Start the app and return it with the seconds until it served its page."""
    env = {**os.environ, "SEGBENCH_DATA": str(workdir)}
    command = [sys.executable, "launch.py", "--data", data, "--port", str(port)]
    command += ["--db", f"sqlite:///{workdir / 'bench.db'}", "--device", "cpu"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    while True:
        if process.poll() is not None:
            raise SystemExit("the app exited during start-up")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return process, time.perf_counter() - started
        except OSError:
            time.sleep(0.1)


def inference_floor(data: str, repeats: int = 20) -> float:
    """Median seconds for both shipped models to predict one image of the split (no cache)."""
    from models.datasets import open_dataset
    from models.inference import InferenceEngine
    from models.synthetic import resolve_data
    from reviewer.workbench import SHIPPED_MODELS, default_pair, find_checkpoints

    dataset = open_dataset(resolve_data(data), "val")
    engine = InferenceEngine(device="cpu")
    checkpoints = find_checkpoints([SHIPPED_MODELS])
    models = [engine.load(checkpoints[name]) for name in default_pair(list(checkpoints))]
    times = []
    for index in range(repeats):
        image = dataset.read_image(dataset[index % len(dataset)])
        begin = time.perf_counter()
        for model in models:
            engine.predict(model, image)
        times.append(time.perf_counter() - begin)
    return statistics.median(times[2:])


def measure(url: str, count: int) -> tuple[list[float], list[float]]:
    """Latencies (s) of new images via "n" and of revisits via "p"."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1500, "height": 1800})
        page.goto(url)
        title = page.locator("#image-title strong")
        title.wait_for(timeout=120_000)
        page.wait_for_function("() => document.querySelector('#image-title strong')")

        def press(key: str) -> float:
            """Seconds from the key press until the new image's panels are on the page."""
            before = title.inner_text()
            begin = time.perf_counter()
            page.keyboard.press(key)
            page.wait_for_function(
                """([before, panels]) => {
                    const t = document.querySelector('#image-title strong');
                    const images = document.querySelectorAll('img').length;
                    return t && t.innerText !== before && images >= panels;
                }""",
                arg=[before, PANEL_IMAGES],
                timeout=30_000,
                polling=10,
            )
            elapsed = time.perf_counter() - begin
            page.wait_for_timeout(400)
            return elapsed

        page.locator("body").click(position={"x": 5, "y": 5})
        press("n")
        fresh = [press("n") for _ in range(count)]
        revisits = [press("p") for _ in range(count // 2)]
        browser.close()
    return fresh, revisits


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="demo", help="dataset folder or 'demo'")
    parser.add_argument("--images", type=int, default=30, help="new images to select")
    args = parser.parse_args()
    floor = inference_floor(args.data)
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process, startup = start_app(args.data, port, Path(workdir))
        try:
            fresh, revisits = measure(f"http://127.0.0.1:{port}/", args.images)
        finally:
            process.terminate()
            process.wait(timeout=30)
    median, p95 = statistics.median(fresh), percentile(fresh, 0.95)
    revisit = statistics.median(revisits)
    print(f"reference: both models predict one image in {floor * 1000:.0f} ms (median)")
    rows = [
        ("start-up until served", startup, 20.0, None),
        ("new image, median", median, 0.300, floor),
        ("new image, 95th percentile", p95, 0.600, floor),
        ("revisited image, median", revisit, 0.100, floor),
    ]
    failed = False
    for label, value, goal, reference in rows:
        ratio = f"{value / reference:5.1f}x the inference floor" if reference else ""
        verdict = "ok" if value <= goal else "MISSED"
        failed |= value > goal
        print(
            f"{label:<28} {value * 1000:8.0f} ms  goal {goal * 1000:6.0f} ms  {verdict:6} {ratio}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
