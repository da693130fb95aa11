"""How fast the review app answers a person, measured in a real headless Chromium.

    python -m bench.bench_gui [--data demo] [--images 20]

Starts ``launch.py`` on the data (the demo set by default, which must already exist for
the start-up figure to mean anything) with the shipped models, and reports:

* ``launch.py --help``: seconds until it answers (goal: 2 s), beside a bare Python start;
* start-up with the demo set present and a fresh database: seconds from process start until
  the page is served (goal: 8 s) and until the split's first evaluation, which runs behind
  the app, is over and the queue ranked (goal: 30 s; the steps below are timed after it, on
  a machine at rest); the served time beside a fresh process importing torch and Gradio
  (the floor of any start), the scored time beside both models predicting every image;
* a restart on the same database, which holds the split's scores: seconds until served and
  until the page shows the ranked queue (goals: 8 s and 30 s);
* picking a new image from the queue list (a click on a row nobody looked at, so nothing
  was prepared): latency until every image panel shows it, loaded, median and 95th
  percentile (goals: 300 ms and 600 ms), and until the three plots are drawn too (goal:
  600 ms after the panels, median);
* the next image of the queue ("n"), which the app prepares while the reviewer looks at
  the current one: the same two latencies;
* revisiting an image ("p" back over seen images): latency until every panel shows it
  (goal: 100 ms).

Each latency runs from the key or pointer press as the page received it to the frame that
shows the result, timed inside the page, so the benchmark's own round trips to the browser
do not count. After each step the benchmark waits until the plots are drawn and the page
is idle, then "looks" for 0.3 s before the next step: each latency is that of a person
acting on a page that has finished showing the previous image. Each latency is printed beside the
reference measured in the same run: the time the two models alone take to predict one
image on this machine (the floor any GUI pays for an unprepared image), as a ratio.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(data: str, port: int, workdir: Path) -> tuple[subprocess.Popen, float, float]:
    """Start the app; return it, its start time and the seconds until it served its page."""
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
            return process, started, time.perf_counter() - started
        except OSError:
            time.sleep(0.1)


def run_seconds(command: list[str], repeats: int = 3) -> float:
    """Median seconds a short command takes to run to its end."""
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def served_and_ranked(url: str, started: float) -> tuple[float, float]:
    """Seconds from ``started`` until the page shows an image, and until its queue is ranked
    (no evaluation running behind the app)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1800})
        page.goto(url)
        page.locator("#review-board #image-title strong").wait_for(timeout=120_000)
        shown = time.perf_counter() - started
        page.wait_for_function(SCORES_IN, timeout=600_000)
        ranked = time.perf_counter() - started
        browser.close()
    return shown, ranked


def inference_floor(data: str, repeats: int = 20) -> tuple[float, int]:
    """Median seconds for both shipped models to predict one image of the split (no cache),
    and the split's image count."""
    from models.catalogue import ModelCatalogue
    from models.datasets import open_dataset
    from models.inference import InferenceEngine
    from models.synthetic import resolve_data

    dataset = open_dataset(resolve_data(data), "val")
    engine = InferenceEngine(device="cpu")
    catalogue = ModelCatalogue.discover([])
    models = [engine.load(catalogue.path(name)) for name in catalogue.pair_for(dataset.kind)]
    times = []
    for index in range(repeats):
        image = dataset.read_image(dataset[index % len(dataset)])
        begin = time.perf_counter()
        for model in models:
            engine.predict(model, image)
        times.append(time.perf_counter() - begin)
    return statistics.median(times[2:]), len(dataset)


STEP_CLOCK = """() => {
    for (const type of ['keydown', 'pointerdown']) {
        document.addEventListener(type, (event) => {
            const step = window.benchStep;
            if (step && step.start === null) step.start = event.timeStamp;
        }, true);
    }
}"""
"""Installed once: a step's clock starts at the key press or pointer press that causes it,
as the page received it (the benchmark's own round trips to the browser do not count)."""

STEP_WATCH = """() => {
    const panels = () => [...document.querySelectorAll('#review-board img')]
        .filter(i => i.checkVisibility());
    const title = () => document.querySelector('#review-board #image-title strong').innerText;
    const before = { title: title(), sources: panels().map(i => i.src) };
    const step = window.benchStep = { start: null, panels: null, plots: null };
    const frame = () => new Promise(done => requestAnimationFrame(done));
    (async () => {
        let image = null;
        while (step.plots === null) {
            await frame();
            if (step.start === null) continue;
            if (image === null) {
                const shown = panels();
                if (title() === before.title || shown.length < before.sources.length) continue;
                if (!shown.every(i => i.complete && i.naturalWidth > 0
                                      && !before.sources.includes(i.src))) continue;
                image = title();
                await frame();
                step.panels = performance.now() - step.start;
            } else {
                const titles = [...document.querySelectorAll('#review-details .gtitle')];
                const named = titles.filter(t => t.textContent.includes(image));
                if (titles.length < 3 || named.length < titles.length) continue;
                await frame();
                step.plots = performance.now() - step.start;
            }
        }
    })();
}"""
"""Armed before each step: watches every frame until the title names another image and
every visible panel holds a new, loaded picture, then until the IoU bars and both confusion
heatmaps name that image; each time is taken at the next frame, when it is on screen."""

SCORES_IN = """() => {
    const status = document.querySelector('#scoring-status');
    return !status || !/Scoring|Loading/.test(status.innerText);
}"""
"""True once the split's first evaluation, which runs behind the app, is over."""

PAGE_IDLE = """() => new Promise(done => requestIdleCallback(() => requestIdleCallback(done)))"""
"""Resolves once the page has finished drawing (twice idle: plotly lays out after drawing)."""


@dataclass
class Latencies:
    panels: list[float] = field(default_factory=list)
    plots: list[float] = field(default_factory=list)


def measure(url: str, count: int) -> tuple[dict[str, Latencies], float]:
    """Latencies (s) of picked new images, of "n" (prepared) and of "p" (revisits), and
    when (``time.perf_counter``) the split's scores were in: the steps are timed after."""
    results = {"pick": Latencies(), "next": Latencies(), "revisit": Latencies()}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1500, "height": 1800})
        page.goto(url)
        page.locator("#review-board #image-title strong").wait_for(timeout=120_000)
        page.wait_for_function(SCORES_IN, timeout=600_000)
        scored = time.perf_counter()
        page.wait_for_selector("#review-details .gtitle", timeout=60_000)
        page.evaluate(STEP_CLOCK)

        def timed(action: Callable[[], None], into: Latencies) -> None:
            page.evaluate(STEP_WATCH)
            action()
            page.wait_for_function("() => window.benchStep.plots !== null", timeout=30_000)
            step = page.evaluate("() => window.benchStep")
            into.panels.append(step["panels"] / 1000)
            into.plots.append(step["plots"] / 1000)
            page.evaluate(PAGE_IDLE)
            page.wait_for_timeout(300)

        for row in range(30, 30 + 3 * count, 3):
            timed(page.locator(f"#review-board tr[data-index='{row}']").click, results["pick"])
        page.locator("#page-title").click()
        for _ in range(count):
            timed(lambda: page.keyboard.press("n"), results["next"])
        for _ in range(count // 2):
            timed(lambda: page.keyboard.press("p"), results["revisit"])
        browser.close()
    return results, scored


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def median_gap(latencies: Latencies) -> float:
    """Median time from the panels of an image to its plots."""
    gaps = [plots - shown for shown, plots in zip(latencies.panels, latencies.plots, strict=True)]
    return statistics.median(gaps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="demo", help="dataset folder or 'demo'")
    parser.add_argument("--images", type=int, default=20, help="images per kind of step")
    args = parser.parse_args()
    floor, images = inference_floor(args.data)
    bare = run_seconds([sys.executable, "-c", "pass"])
    helped = run_seconds([sys.executable, "launch.py", "--help"])
    imports = run_seconds([sys.executable, "-c", "import torch, gradio"])
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process, started, startup = start_app(args.data, port, Path(workdir))
        try:
            results, scored = measure(f"http://127.0.0.1:{port}/", args.images)
        finally:
            process.terminate()
            process.wait(timeout=30)
        process, restarted, restart = start_app(args.data, port, Path(workdir))
        try:
            shown, ranked = served_and_ranked(f"http://127.0.0.1:{port}/", restarted)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"reference: both models predict one image in {floor * 1000:.0f} ms (median)")
    print(
        f"reference: a bare Python start {bare * 1000:.0f} ms, importing torch and Gradio "
        f"{imports * 1000:.0f} ms (medians of 3)"
    )
    pick, following, revisit = results["pick"], results["next"], results["revisit"]
    rows = [
        ("launch.py --help", helped, 2.0, bare, "a bare Python start"),
        ("fresh database: served", startup, 8.0, imports, "importing torch and Gradio"),
        (
            "  ... until the split is scored",
            scored - started,
            30.0,
            floor * images,
            f"predicting its {images} images",
        ),
        ("restart: served", restart, 8.0, imports, "importing torch and Gradio"),
        ("  ... page shows an image", shown, None, imports, "importing torch and Gradio"),
        ("  ... queue ranked", ranked, 30.0, imports, "importing torch and Gradio"),
        *(
            (label, value, goal, floor, "the inference floor")
            for label, value, goal in (
                ("picked new image, median", statistics.median(pick.panels), 0.300),
                ("picked new image, p95", percentile(pick.panels, 0.95), 0.600),
                ("  ... and its plots, median", statistics.median(pick.plots), None),
                ("  ... plots after panels, med", median_gap(pick), 0.600),
                ("next in queue, median", statistics.median(following.panels), 0.300),
                ("next in queue, p95", percentile(following.panels, 0.95), 0.600),
                ("  ... and its plots, median", statistics.median(following.plots), None),
                ("revisited image, median", statistics.median(revisit.panels), 0.100),
            )
        ),
    ]
    failed = False
    for label, value, goal, reference, what in rows:
        ratio = f"{value / reference:5.1f}x {what}"
        verdict = "" if goal is None else ("ok" if value <= goal else "MISSED")
        target = "" if goal is None else f"goal {goal * 1000:6.0f} ms"
        failed |= goal is not None and value > goal
        print(f"{label:<28} {value * 1000:8.0f} ms  {target:<14} {verdict:6} {ratio}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
