"""The launcher answers --help without loading the heavy libraries, says what a first start
is doing, and the page's own text uses no glyph that needs an emoji font."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from reviewer import serving

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "gradio", "cv2", "sqlalchemy")

_PROBE = """
import runpy, sys
sys.argv = ["launch.py", "--help"]
try:
    runpy.run_path("launch.py", run_name="__main__")
except SystemExit as stop:
    code = stop.code
print("loaded:", ",".join(m for m in {heavy!r} if m in sys.modules))
print("exit:", code)
"""


def test_help_loads_no_heavy_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: python launch.py" in done.stdout
    assert "--groups" in done.stdout
    assert "loaded: \n" in done.stdout
    assert done.stdout.rstrip().endswith("exit: 0")


def test_first_start_says_it_builds_the_demo_set_and_how_long_it_took(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    built = tmp_path / "built"
    monkeypatch.setattr(serving, "resolve_data", lambda data: built)
    assert serving.open_data("demo") == built
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"first start: building the demo set in {tmp_path / 'demo-v1'} (")
    assert "the bar shows the time left" in lines[0]
    assert re.fullmatch(r"demo set built in \d+ s", lines[1])
    assert serving.open_data(str(tmp_path)) == built
    assert capsys.readouterr().err == "", "a dataset folder is opened without a word"


# Pictographs drawn from an emoji font (hourglass, check mark box, warning sign with the
# emoji selector): where none is installed they render as empty boxes.
_EMOJI = re.compile("[\u231a\u231b\u23e9-\u23fa\u2600-\u27bf\ufe0f\U0001f000-\U0001faff]")


def test_the_page_text_needs_no_emoji_font() -> None:
    sources = [
        p for p in (ROOT / "reviewer").rglob("*") if p.suffix in {".py", ".js", ".css", ".html"}
    ]
    assert sources
    found = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in sources
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
        if _EMOJI.search(line)
    ]
    assert found == []


def test_the_app_is_prepared_before_any_model_is_loaded_and_says_it_loads_them(
    monkeypatch: pytest.MonkeyPatch, tiny_synthetic: Path, tiny_models: Path, tmp_path: Path
) -> None:
    from models.inference import InferenceEngine
    from reviewer.handlers import scoring_progress
    from reviewer.launcher import build_parser

    monkeypatch.setenv("SEGBENCH_DATA", str(tmp_path / "data"))
    release, loading, loaded = threading.Event(), threading.Event(), InferenceEngine.load
    starting = [True]

    def slow_load(engine: InferenceEngine, path: Path):
        at_start = starting[0] and threading.current_thread() is threading.main_thread()
        assert not at_start, "a model was loaded before the app could serve"
        loading.set()
        release.wait(timeout=120)
        return loaded(engine, path)

    def no_decoding(path: Path) -> None:
        raise AssertionError(f"start-up decoded {path}")

    monkeypatch.setattr(InferenceEngine, "load", slow_load)
    options = ["--data", str(tiny_synthetic), "--models", str(tiny_models), "--only-my-models"]
    args = build_parser().parse_args([*options, "--db", f"sqlite:///{tmp_path / 'r.db'}"])
    served = threading.Event()
    with monkeypatch.context() as patch:
        patch.setattr("models.datasets._decode", no_decoding)
        bench, _ = serving.prepare(args, served)
    starting[0] = False
    assert not loading.wait(timeout=0.5), "the models load only once the page is served"
    assert scoring_progress(bench.background).message.startswith("Loading both models")
    served.set()
    assert loading.wait(timeout=60)
    waiting = scoring_progress(bench.background)
    assert waiting.polling and not waiting.scores_in
    assert waiting.message.startswith("Loading both models")
    release.set()
    assert bench.background.future.result(timeout=300) is not None
    assert bench.scores.cached_scores("segnet-ce", "segnet-ial") is not None

    restart, _ = serving.prepare(args)
    assert restart.background.future.result(timeout=120) is None, "scored again on restart"
    assert scoring_progress(restart.background).scores_in
