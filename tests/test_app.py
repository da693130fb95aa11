"""The app's handlers called as Gradio calls them: the review board's requests, readable
errors, flags on the image shown, uploads flagged."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pandas as pd
import pytest

from db.store import ReviewStore
from models.catalogue import ModelCatalogue
from models.conditions import condition_tags
from models.datasets import DatasetError, open_dataset
from models.inference import InferenceEngine
from models.labels import DEFAULT_GROUPS
from reviewer import panels
from reviewer.app import AGREEMENT_SCOPES, AppOptions, build_app
from reviewer.board import (
    PANEL_JPEG_QUALITY,
    PANEL_LABELS,
    PANEL_MAX_WIDTH,
    SLIDER,
    BoardState,
    Display,
    QueueEntry,
    display_from_request,
)
from reviewer.pictures import jpeg_data_url
from reviewer.workbench import BackgroundScoring, Workbench


@pytest.fixture()
def handlers(tiny_synthetic: Path, tiny_models: Path, tmp_path: Path):
    bench = Workbench(
        dataset=open_dataset(tiny_synthetic, "val"),
        engine=InferenceEngine(device="cpu"),
        store=ReviewStore.open(f"sqlite:///{tmp_path / 'review.db'}"),
        catalogue=ModelCatalogue.discover([tiny_models], shipped=False),
        upload_dir=tmp_path / "uploads",
    )
    app = build_app(bench, AppOptions(tmp_path / "exports"))
    functions = {}
    for block_function in app.fns.values():
        functions.setdefault(block_function.fn.__name__, block_function.fn)
    (board_block,) = [block for block in app.blocks.values() if getattr(block, "server_fns", None)]
    functions["fetch_panels"] = board_block.fetch_panels
    return bench, functions


def test_an_uploaded_image_is_flagged(handlers) -> None:
    bench, functions = handlers
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    image = np.random.default_rng(1).integers(0, 256, (80, 120, 3), dtype=np.uint8)
    message = functions["flag_upload"](
        image, name_a, name_b, "ana", "model B", "critical", "missed person", "look"
    )
    (flag,) = bench.store.list_flags()
    assert f"#{flag.id}" in message and flag.image_key.startswith("uploads/")
    assert (flag.target, flag.severity, flag.reviewer) == ("model_b", "critical", "ana")


def _board(bench: Workbench, sample_ids: list[str], position: int = 0) -> str:
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    queue = tuple(QueueEntry(sample_id, "", None, 0, "unflagged") for sample_id in sample_ids)
    display = Display(name_a, name_b, shown_groups=tuple(bench.groups.names))
    return BoardState(queue=queue, position=position, display=display).to_json()


def _picture(data_url: str) -> np.ndarray:
    header, encoded = data_url.split(",", 1)
    assert header == "data:image/jpeg;base64"
    bgr = cv2.imdecode(np.frombuffer(base64.b64decode(encoded), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_bad_form_values_become_readable_messages(handlers) -> None:
    bench, functions = handlers
    board_value = _board(bench, [bench.dataset[0].id])
    form = [board_value, "ana", "model A", "major", "missed person", "note"]
    with pytest.raises(gr.Error, match="four whole numbers"):
        functions["save_flag"](*form, "1, 2")
    with pytest.raises(gr.Error, match="reviewer name must be a non-empty string"):
        functions["save_flag"](form[0], "", *form[2:], "")
    with pytest.raises(gr.Error, match="Pick an image"):
        functions["save_flag"](BoardState().to_json(), *form[1:], "")
    with pytest.raises(gr.Error, match="malformed state"):
        functions["save_flag"]('{"queue": [{"id": 1}]}', *form[1:], "")
    assert bench.store.list_flags() == []


def test_a_flag_goes_to_the_image_and_models_the_board_shows(handlers) -> None:
    bench, functions = handlers
    ids = [sample.id for sample in bench.dataset]
    board_value = _board(bench, ids, position=2)
    message, *_ = functions["save_flag"](
        board_value, "ana", "both models", "minor", "other", "", ""
    )
    (flag,) = bench.store.list_flags()
    assert flag.image_key == ids[2] and ids[2] in message
    assert (flag.model_a, flag.model_b) == bench.catalogue.pair_for(bench.dataset.kind)


def test_the_board_gets_the_panels_it_asks_for_as_pictures(handlers) -> None:
    bench, functions = handlers
    fetch_panels = functions["fetch_panels"]
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    sample_id = bench.dataset[1].id
    display = {
        "model_a": name_a,
        "model_b": name_b,
        "opacity": 0.4,
        "shown_groups": list(bench.groups.names),
        "hidden_classes": ["road"],
    }
    answer = fetch_panels([sample_id, display])
    view = bench.view(sample_id, name_a, name_b)
    visible = panels.visible_classes(bench.groups, bench.groups.names, ["road"])
    expected = panels.render_panels(view, panels.DisplayOptions(0.4, visible))
    default = panels.render_panels(view, panels.DisplayOptions())
    assert answer["id"] == sample_id and answer["tags"] == condition_tags(view.meta)
    for key, _ in PANEL_LABELS:
        if key == SLIDER:
            continue
        picture = _picture(answer["panels"][key]).astype(int)
        error = np.abs(picture - getattr(expected, key)).mean()
        # JPEG loses most on the pixel noise of these untrained models' predictions
        assert picture.shape == view.image.shape and error < 8.0, key
        if key.startswith("prediction"):
            assert np.abs(picture - getattr(default, key)).mean() > 2 * error, key


def test_the_board_gets_readable_errors_instead_of_panels(handlers) -> None:
    bench, functions = handlers
    fetch_panels = functions["fetch_panels"]
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    display = {"model_a": name_a, "model_b": name_b}
    assert "no image 'val/nowhere'" in fetch_panels(["val/nowhere", display])["error"]
    assert (
        "unknown model 'other'"
        in fetch_panels([bench.dataset[0].id, {**display, "model_b": "other"}])["error"]
    )
    assert "display options" in fetch_panels([bench.dataset[0].id, None])["error"]
    assert "error" in fetch_panels("not a request")


def test_the_queue_and_display_reach_the_board_and_keep_its_position(handlers) -> None:
    bench, functions = handlers
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    ids = [sample.id for sample in bench.dataset]
    controls = [
        name_a,
        name_b,
        "name",
        "any",
        "any",
        "any",
        0.3,
        ["important"],
        [],
        AGREEMENT_SCOPES[1],
    ]
    moved = _board(bench, ids, position=3)
    state = BoardState.from_json(functions["refresh_board"](*controls, moved))
    assert [entry.id for entry in state.queue] == sorted(ids)
    assert state.display == Display(name_a, name_b, 0.3, ("important",), (), True)
    assert state.goto is None and state.revision == 1 and state.score_label == "name"
    worst_first = [name_a, name_b, "safety error of A", *controls[3:]]
    unranked = BoardState.from_json(functions["refresh_board"](*worst_first, moved))
    assert unranked.score_label == "safety error of A (not scored yet, so in name order)"
    assert [entry.id for entry in unranked.queue] == sorted(ids)
    bench.evaluate(name_a, name_b)
    ranked = BoardState.from_json(functions["refresh_board"](*worst_first, moved))
    assert ranked.score_label == "safety error of A"
    scores = [entry.score for entry in ranked.queue]
    assert scores == sorted(scores, reverse=True) and None not in scores
    worst = pd.DataFrame({"image": [ids[0], ids[1]]})
    selection = gr.SelectData(None, {"index": [1, 0], "value": ids[1]})
    _, opened = functions["open_worst"](selection, worst, moved)
    assert BoardState.from_json(opened).goto == ids[1]


def test_details_follow_the_image_the_board_shows(handlers) -> None:
    bench, functions = handlers
    ids = [sample.id for sample in bench.dataset]
    details = functions["show_details"](_board(bench, ids, position=2), "groups")
    flags, iou, confusion_b = details[3], details[4], details[6]
    assert ids[2] in iou.layout.title.text and ids[2] in confusion_b.layout.title.text
    assert list(flags.columns)[1] == "image" and flags.empty
    assert functions["show_details"](BoardState().to_json(), "groups")[4] is None


def test_the_page_follows_the_scoring_that_runs_behind_it(handlers) -> None:
    bench, functions = handlers
    assert functions["check_scoring"]()[0] == ""
    scoring = BackgroundScoring(("segnet-ce", "segnet-ial"), total=4, done=1)
    bench.background = scoring
    message, timer, scores_in = functions["check_scoring"]()
    assert "1 of 4 images" in message and timer.active and scores_in == gr.skip()
    scoring.future.set_exception(DatasetError("cannot read val/x.png"))
    message, timer, scores_in = functions["check_scoring"]()
    assert "failed: cannot read val/x.png" in message and not timer.active
    done = BackgroundScoring(("segnet-ce", "segnet-ial"), total=4, done=4)
    done.future.set_result(None)
    bench.background = done
    message, timer, scores_in = functions["check_scoring"]()
    assert message == "" and not timer.active and scores_in is True


def test_a_display_left_at_its_defaults_draws_the_panels_as_by_default() -> None:
    assert Display("a", "b").options(DEFAULT_GROUPS) == panels.DEFAULT_DISPLAY
    sent = display_from_request({"model_a": "a", "model_b": "b"})
    assert sent.options(DEFAULT_GROUPS) == panels.DEFAULT_DISPLAY


def test_wide_panels_are_shrunk_for_the_page_and_keep_their_aspect() -> None:
    wide = np.zeros((1024, 2048, 3), dtype=np.uint8)
    wide[:, 1024:] = (200, 30, 30)
    picture = _picture(jpeg_data_url(wide, PANEL_JPEG_QUALITY, PANEL_MAX_WIDTH))
    assert picture.shape == (512, 1024, 3)
    assert np.abs(picture[:, 520:].astype(int) - (200, 30, 30)).max() <= 6
    assert np.abs(picture[:, :500].astype(int)).max() <= 6
    small = np.full((128, 256, 3), 77, dtype=np.uint8)
    assert _picture(jpeg_data_url(small, PANEL_JPEG_QUALITY, PANEL_MAX_WIDTH)).shape == small.shape


def _dropdown_values(app: gr.Blocks) -> dict[str, list]:
    """The first value of every model picker, by label, in page order."""
    values: dict[str, list] = {}
    for block in app.blocks.values():
        if isinstance(block, gr.Dropdown) and str(block.label).startswith("Model"):
            values.setdefault(str(block.label), []).append(block.value)
    return values


def test_the_pair_fits_the_data_and_a_misfit_is_said(tmp_path: Path) -> None:
    camvid = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid-sample"
    if not camvid.is_dir():
        pytest.skip(f"real CamVid sample not found at {camvid}")
    bench = Workbench(
        dataset=open_dataset(camvid, "val"),
        engine=InferenceEngine(device="cpu"),
        store=ReviewStore.open(f"sqlite:///{tmp_path / 'review.db'}"),
        catalogue=ModelCatalogue.discover([]),
    )
    app = build_app(bench, AppOptions(tmp_path / "exports"))
    pickers = _dropdown_values(app)
    assert pickers["Model A"] == ["camvid-ce", "camvid-ce"], "review pair, then upload pair"
    assert pickers["Model B"] == ["camvid-ial", "camvid-ial"]
    on_models = next(f.fn for f in app.fns.values() if f.fn.__name__ == "on_models")
    fitting, misfit = on_models("camvid-ce", "segnet-ial")
    assert "Not trained on this kind of data" not in fitting
    assert "trained on: CamVid train, 367 real images (CC BY-NC 4.0)" in fitting
    assert "Not trained on this kind of data" in misfit
    assert "synthetic demo scenes (generated, not real photos); the images are CamVid" in misfit


def test_an_upload_says_which_pair_predicted_it(handlers) -> None:
    bench, functions = handlers
    name_a, name_b = bench.catalogue.names
    image = np.random.default_rng(2).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    summary = functions["predict_upload"](image, name_a, name_b, 0.5)[3]
    assert summary.startswith(f"Predicted with {name_a} (CE, training data unknown) and ")
    assert f"{name_b}: its training data is unknown; the images are CamVid" in summary
