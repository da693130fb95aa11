"""The app's handlers called as Gradio calls them: readable errors, uploads flagged."""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from db.store import ReviewStore
from models.datasets import open_dataset
from models.inference import InferenceEngine
from reviewer.app import AGREEMENT_SCOPES, AppOptions, build_app
from reviewer.workbench import Workbench, default_pair, find_checkpoints


@pytest.fixture()
def handlers(tiny_synthetic: Path, tiny_models: Path, tmp_path: Path):
    bench = Workbench(
        dataset=open_dataset(tiny_synthetic, "val"),
        engine=InferenceEngine(device="cpu"),
        store=ReviewStore.open(f"sqlite:///{tmp_path / 'review.db'}"),
        checkpoints=find_checkpoints([tiny_models]),
        upload_dir=tmp_path / "uploads",
    )
    app = build_app(bench, AppOptions(tmp_path / "exports"))
    functions = {}
    for block_function in app.fns.values():
        functions.setdefault(block_function.fn.__name__, block_function.fn)
    return bench, functions


def test_an_uploaded_image_is_flagged(handlers) -> None:
    bench, functions = handlers
    name_a, name_b = default_pair(bench.model_names)
    image = np.random.default_rng(1).integers(0, 256, (80, 120, 3), dtype=np.uint8)
    message = functions["flag_upload"](
        image, name_a, name_b, "ana", "model B", "critical", "missed person", "look"
    )
    (flag,) = bench.store.list_flags()
    assert f"#{flag.id}" in message and flag.image_key.startswith("uploads/")
    assert (flag.target, flag.severity, flag.reviewer) == ("model_b", "critical", "ana")


def test_bad_form_values_become_readable_messages(handlers) -> None:
    bench, functions = handlers
    name_a, name_b = default_pair(bench.model_names)
    state = {"queue": [bench.dataset[0].id], "position": 0, "sample_id": bench.dataset[0].id}
    form = [state, name_a, name_b, "ana", "model A", "major", "missed person", "note"]
    with pytest.raises(gr.Error, match="four whole numbers"):
        functions["save_flag"](*form, "1, 2")
    with pytest.raises(gr.Error, match="reviewer name must be a non-empty string"):
        functions["save_flag"](*form[:3], "", *form[4:], "")
    with pytest.raises(gr.Error, match="Pick an image"):
        functions["save_flag"]({}, *form[1:], "")
    assert bench.store.list_flags() == []


def test_showing_an_image_prepares_its_neighbours_in_the_queue(
    handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench, functions = handlers
    name_a, name_b = default_pair(bench.model_names)
    threads: dict[str, set[str]] = {}
    original = bench.engine.predict

    def recording(model, image, image_id=None):
        threads.setdefault(image_id, set()).add(threading.current_thread().name)
        return original(model, image, image_id)

    monkeypatch.setattr(bench.engine, "predict", recording)
    queue = [sample.id for sample in bench.dataset]
    display = [0.6, list(bench.groups.names), [], "groups", AGREEMENT_SCOPES[0]]
    state, title, *_ = functions["show"]({"queue": queue, "position": 1}, name_a, name_b, *display)
    assert state["sample_id"] == queue[1] and queue[1] in title
    for neighbour in (queue[0], queue[2]):
        assert bench.view(neighbour, name_a, name_b).sample_id == neighbour
        assert [name.split("_")[0] for name in threads[neighbour]] == ["prefetch"]
    assert queue[3] not in threads
