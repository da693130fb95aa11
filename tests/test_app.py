"""The app's handlers called directly, without Gradio: the review board's requests,
readable errors, flags on the image shown, uploads flagged."""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import astuple
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pandas as pd
import pytest

from db.store import ReviewStore
from models.catalogue import ModelCatalogue
from models.conditions import condition_tags
from models.datasets import DatasetError, count_of, open_dataset
from models.inference import InferenceEngine
from models.labels import CLASS_NAMES, DEFAULT_GROUPS
from models.object_sizes import plural
from models.scores import format_value
from reviewer import panels, views
from reviewer.app import AppOptions, Page, build_app
from reviewer.background import BackgroundScoring
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
from reviewer.handlers import (
    AGREEMENT_SCOPES,
    ERROR_MAP_MODES,
    EXPECTED_ERRORS,
    FLAG_HEADERS,
    DatasetView,
    DuplicateFlag,
    FlagDesk,
    ReviewDesk,
    UploadDesk,
    default_pairs,
    model_card,
    readable,
    region_text,
    scoring_progress,
)
from reviewer.pictures import jpeg_data_url
from reviewer.workbench import Workbench
from tests.test_text import shown


@pytest.fixture()
def handlers(tiny_synthetic: Path, tiny_models: Path, tmp_path: Path):
    bench = Workbench(
        dataset=open_dataset(tiny_synthetic, "val"),
        engine=InferenceEngine(device="cpu"),
        store=ReviewStore.open(f"sqlite:///{tmp_path / 'review.db'}"),
        catalogue=ModelCatalogue.discover([tiny_models], shipped=False),
        upload_dir=tmp_path / "uploads",
    )
    return bench, FlagDesk(bench)


def _review(bench: Workbench) -> ReviewDesk:
    return ReviewDesk(bench, FlagDesk(bench))


def test_an_uploaded_image_is_flagged(handlers) -> None:
    bench, flags = handlers
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    image = np.random.default_rng(1).integers(0, 256, (80, 120, 3), dtype=np.uint8)
    message = UploadDesk(bench, flags).flag(
        image, (name_a, name_b), ("ana", "model B", "critical", "missed person", "look")
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
    bench, flags = handlers
    board_value = _board(bench, [bench.dataset[0].id])
    judgement = ("ana", "model A", "major", "missed person", "note")
    refusals = [
        ("four whole numbers", board_value, judgement, "1, 2"),
        ("Type your name in the Reviewer box", board_value, ("", *judgement[1:]), ""),
        ("Pick an image", BoardState().to_json(), judgement, ""),
        ("malformed state", '{"queue": [{"id": 1}]}', judgement, ""),
    ]
    for message, value, form, region in refusals:
        with pytest.raises(EXPECTED_ERRORS) as refused:
            flags.save_on_board(value, form, region)
        assert message in readable(refused.value, "save_flag")
    assert bench.store.list_flags() == []


def test_a_failing_handler_shows_a_readable_message_in_the_page(handlers) -> None:
    bench, _ = handlers
    page = Page(bench, AppOptions(Path("exports")))
    form = [BoardState().to_json(), "<b>ana</b>", "model A", "major", "missed person", "n", "", ""]
    with pytest.warns(UserWarning, match="Pick an image"):
        assert page.save_flag(*form) == gr.skip(), "a failed action leaves every output"
    form[0] = _board(bench, [bench.dataset[0].id])
    with pytest.warns(UserWarning) as warned:
        assert page.change_status(None, "confirmed", "<b>ana</b>", [], [], [], "") == gr.skip()
    (warning,) = warned
    assert str(warning.message) == "Select a flag in the table first."
    with pytest.warns(UserWarning, match="&lt;img src=x&gt;"):
        page.save_flag(*form[:-2], "<img src=x>", "")


def test_an_identical_open_flag_is_asked_about_before_a_second_is_saved(handlers) -> None:
    bench, flags = handlers
    board_value = _board(bench, [bench.dataset[0].id])
    judgement = ("ana", "model A", "major", "missed person", "same words")
    flags.save_on_board(board_value, judgement, "1, 2, 3, 4")
    with pytest.raises(DuplicateFlag) as asked:
        flags.save_on_board(board_value, ("bo", *judgement[1:]), "1, 2, 3, 4")
    (first,) = bench.store.list_flags()
    assert asked.value.existing.id == first.id and f"#{first.id}" in str(asked.value)
    flags.save_on_board(board_value, judgement, "1, 2, 3, 5")
    flags.save_on_board(board_value, (*judgement[:4], "other words"), "1, 2, 3, 4")
    assert len(bench.store.list_flags()) == 3, "a flag that differs is no duplicate"
    flags.save_on_board(board_value, judgement, "1, 2, 3, 4", asked.value.signature)
    assert len(bench.store.list_flags()) == 4, "saving the same form again confirms"
    bench.store.update_flag(first.id, "ana", status="dismissed")
    page = Page(bench, AppOptions(Path("exports")))
    message, *_, asked_again = page.save_flag(board_value, *judgement, "1, 2, 3, 4", "")
    assert "already says exactly this" in shown(message) and asked_again


def test_flags_on_uploads_are_listed_filtered_and_changed_with_the_split(handlers) -> None:
    bench, flags = handlers
    pair = bench.catalogue.pair_for(bench.dataset.kind)
    image = np.random.default_rng(2).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    UploadDesk(bench, flags).flag(image, pair, ("ana", "model B", "critical", "other", "up"))
    flags.save_on_board(
        _board(bench, [bench.dataset[0].id]), ("bo", "model A", "minor", "other", ""), ""
    )
    rows = [dict(zip(FLAG_HEADERS, row, strict=True)) for row in flags.rows([], [], [], "")]
    assert [row["reviewer"] for row in rows] == ["bo", "ana"]
    (upload,) = [dict(zip(FLAG_HEADERS, r, strict=True)) for r in flags.rows([], [], [], " ana ")]
    assert upload["image"].startswith("uploads/") and upload["note"] == "up"
    assert upload["target"] == f"model B ({pair[1]})"
    assert (upload["model A"], upload["model B"]) == pair
    assert (
        flags.change_status(upload["id"], "confirmed", "cy")
        == f"Flag #{upload['id']} is now confirmed."
    )
    assert flags.rows(["confirmed"], [], [], "")[0][0] == upload["id"]
    with pytest.raises(ValueError, match="Type your name"):
        flags.change_status(upload["id"], "dismissed", "  ")


def test_the_audit_trail_speaks_in_the_reviewers_terms(handlers) -> None:
    bench, flags = handlers
    pair = bench.catalogue.pair_for(bench.dataset.kind)
    board_value = _board(bench, [bench.dataset[0].id])
    flags.save_on_board(
        board_value, ("ana", "model A", "major", "other", "look here"), "1, 2, 3, 4"
    )
    (flag,) = bench.store.list_flags()
    flags.change_status(flag.id, "confirmed", "bo")
    created, changed = flags.history_rows(flag.id)
    assert created[1:] == [
        "ana",
        "created",
        f"target model A ({pair[0]}); severity major; category other; status open; "
        "note “look here”; region 1, 2, 3, 4",
    ]
    assert changed[1:] == ["bo", "changed", "status: open → confirmed"]


def test_counts_read_as_a_person_writes_them() -> None:
    assert [count_of(n, "flag") for n in (0, 1, 2)] == ["0 flags", "1 flag", "2 flags"]


def test_a_flag_goes_to_the_image_and_models_the_board_shows(handlers) -> None:
    bench, flags = handlers
    ids = [sample.id for sample in bench.dataset]
    board_value = _board(bench, ids, position=2)
    message, _ = flags.save_on_board(board_value, ("ana", "both models", "minor", "other", ""), "")
    (flag,) = bench.store.list_flags()
    assert flag.image_key == ids[2] and ids[2] in shown(message)
    assert (flag.model_a, flag.model_b) == bench.catalogue.pair_for(bench.dataset.kind)


def test_the_board_gets_the_panels_it_asks_for_as_pictures(handlers) -> None:
    bench, _ = handlers
    fetch_panels = _review(bench).fetch_panels
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
    view = bench.views.view(sample_id, name_a, name_b)
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


def test_a_new_image_shows_its_panels_before_it_is_scored(
    handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench, _ = handlers
    review = _review(bench)
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    sample_id = bench.dataset[2].id
    scored: list[str] = []
    score_image = views.score_image
    monkeypatch.setattr(
        views, "score_image", lambda *a, **k: scored.append(k["sample_id"]) or score_image(*a, **k)
    )
    display = {"model_a": name_a, "model_b": name_b}
    assert "error" not in review.fetch_panels([sample_id, display])
    early = bench.views.panels_view(sample_id, name_a, name_b)
    assert scored == [] and early.result is None
    details = review.details(_board(bench, [sample_id]))
    assert scored == [sample_id] and details.score_rows
    full = bench.views.view(sample_id, name_a, name_b)
    assert bench.views.panels_view(sample_id, name_a, name_b) is full
    for all_pixels in (False, True):
        options = panels.DisplayOptions(agreement_on_all_pixels=all_pixels)
        first, later = (panels.render_panels(v, options) for v in (early, full))
        for key in ("ground_truth", "prediction_a", "prediction_b", "error_a", "error_b"):
            np.testing.assert_array_equal(getattr(first, key), getattr(later, key), key)
        np.testing.assert_array_equal(first.disagreement, later.disagreement)
    other = bench.dataset[3].id
    assert "error" not in review.fetch_panels([other, {**display, "errors_by_kind": True}])
    assert scored == [sample_id, other]


def test_the_board_gets_readable_errors_instead_of_panels(handlers) -> None:
    bench, _ = handlers
    fetch_panels = _review(bench).fetch_panels
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
    bench, _ = handlers
    review = _review(bench)
    pair = bench.catalogue.pair_for(bench.dataset.kind)
    name_a, name_b = pair
    ids = [sample.id for sample in bench.dataset]
    looks = (0.3, ["important"], [], AGREEMENT_SCOPES[1], ERROR_MAP_MODES[1])
    moved = _board(bench, ids, position=3)
    state = BoardState.from_json(review.board(pair, ("name", "any", "any", "any"), looks, moved))
    assert [entry.id for entry in state.queue] == sorted(ids)
    assert state.display == Display(name_a, name_b, 0.3, ("important",), (), True, True)
    assert state.goto is None and state.revision == 1 and state.score_label == "name"
    worst_first = ("safety error of A", "any", "any", "any")
    unranked = BoardState.from_json(review.board(pair, worst_first, looks, moved))
    assert unranked.score_label == "safety error of A (not scored yet, so in name order)"
    assert [entry.id for entry in unranked.queue] == sorted(ids)
    bench.scores.evaluate(name_a, name_b)
    ranked = BoardState.from_json(review.board(pair, worst_first, looks, moved))
    assert ranked.score_label == "safety error of A"
    scores = [entry.score for entry in ranked.queue]
    assert scores == sorted(scores, reverse=True) and None not in scores
    worst = pd.DataFrame({"image": [ids[0], ids[1]]})
    selection = gr.SelectData(None, {"index": [1, 0], "value": ids[1]})
    _, opened = Page(bench, AppOptions(Path("exports"))).open_worst(selection, worst, moved)
    assert BoardState.from_json(opened).goto == ids[1]


def test_details_follow_the_image_the_board_shows(handlers) -> None:
    bench, _ = handlers
    review = _review(bench)
    ids = [sample.id for sample in bench.dataset]
    details = review.details(_board(bench, ids, position=2))
    assert FLAG_HEADERS[1] == "image" and details.flag_rows == []
    assert review.details(BoardState().to_json()).score_rows is None


def test_the_plots_script_gets_the_figures_of_the_image_it_names(handlers) -> None:
    bench, _ = handlers
    review = _review(bench)
    sample_id = bench.dataset[2].id
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    display = {"model_a": name_a, "model_b": name_b}
    for kind, heatmap_rows in (("groups", bench.groups.num_groups), ("classes", len(CLASS_NAMES))):
        answer = review.fetch_plots([sample_id, display, kind])
        assert answer["id"] == sample_id
        iou, *heatmaps = (json.loads(figure) for figure in answer["figures"])
        view = bench.views.view(sample_id, name_a, name_b)
        bars = [
            trace for trace in iou["data"] if trace["type"] == "bar" and trace.get("xaxis") != "x2"
        ]
        for trace, side in zip(bars, "AB", strict=True):
            expected = [np.nan if v is None else v for v in view.result.scores[side].iou]
            np.testing.assert_allclose(np.array(trace["y"], dtype=float), expected)
        for figure, side in zip(heatmaps, "AB", strict=True):
            assert figure["layout"]["title"]["text"].startswith(f"{side}: ")
            assert sample_id in figure["layout"]["title"]["text"]
            assert len(figure["data"][0]["y"]) == heatmap_rows
    assert (
        "unknown model 'other'"
        in review.fetch_plots([sample_id, {**display, "model_b": "other"}, "groups"])["error"]
    )


def test_an_object_row_fills_the_region_with_its_box(handlers) -> None:
    bench, _ = handlers
    ids = [sample.id for sample in bench.dataset]
    details = _review(bench).details(_board(bench, ids, position=2))
    view = bench.views.view(ids[2], *bench.catalogue.pair_for(bench.dataset.kind))
    largest = max(view.result.instances, key=lambda instance: instance.pixels)
    assert len(details.boxes) == len(details.instance_rows) > 0
    assert region_text(list(details.boxes), 0) == ", ".join(str(n) for n in largest.box)


def test_the_page_follows_the_scoring_that_runs_behind_it(handlers) -> None:
    assert scoring_progress(None).message == ""
    scoring = BackgroundScoring(("segnet-ce", "segnet-ial"), total=4, done=1)
    message, polling, scores_in = astuple(scoring_progress(scoring))
    assert "1 of 4 images" in message and polling and not scores_in
    scoring.future.set_exception(DatasetError("cannot read val/x.png"))
    message, polling, scores_in = astuple(scoring_progress(scoring))
    assert "failed: cannot read val/x.png" in shown(message) and not polling
    done = BackgroundScoring(("segnet-ce", "segnet-ial"), total=4, done=4)
    done.future.set_result(None)
    message, polling, scores_in = astuple(scoring_progress(done))
    assert message == "" and not polling and scores_in is True


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
    assert isinstance(build_app(bench, AppOptions(tmp_path / "exports")), gr.Blocks)
    review_pair, upload_pair = default_pairs(bench)
    assert review_pair == upload_pair == ("camvid-ce", "camvid-ial")
    fitting, misfit = model_card(bench, "camvid-ce"), model_card(bench, "segnet-ial")
    fitting, misfit = shown(fitting), shown(misfit)
    assert "Not trained on this kind of data" not in fitting
    assert "trained on: CamVid train, 367 real images (CC BY-NC 4.0)" in fitting
    assert "Not trained on this kind of data" in misfit
    assert "synthetic demo scenes (generated, not real photos); the images are CamVid" in misfit


def test_an_upload_says_which_pair_predicted_it(handlers) -> None:
    bench, flags = handlers
    name_a, name_b = bench.catalogue.names
    image = np.random.default_rng(2).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    summary = UploadDesk(bench, flags).predict(image, (name_a, name_b), 0.5).summary
    summary = shown(summary)
    assert summary.startswith(f"Predicted with {name_a} (CE, training data unknown) and ")
    assert f"{name_b}: its training data is unknown; the images are CamVid" in summary


def test_the_dataset_tab_shows_a_pair_once_it_is_evaluated(handlers) -> None:
    bench, _ = handlers
    pair = bench.catalogue.pair_for(bench.dataset.kind)
    tab = DatasetView(bench)
    assert "not been evaluated" in tab.show(pair).message and tab.show(pair).worst_rows is None
    evaluated = tab.evaluate(pair)
    assert evaluated.message.startswith(f"Evaluated {len(bench.dataset)} images of ")
    assert tab.show(pair).worst_rows == evaluated.worst_rows
    assert {row[0] for row in evaluated.worst_rows} <= {sample.id for sample in bench.dataset}
    result = bench.scores.split_result(*pair)
    first = evaluated.comparison_rows[0]
    assert first[0] == "mIoU (pooled, Cityscapes)"
    assert first[1:3] == [f"{result.models[m]['miou']:.3f}" for m in ("A", "B")]
    assert first[-1] in ("B better", "A better", "within noise")
    assert evaluated.comparison_title.startswith(f"B - A on {len(bench.dataset)} images; ")
    assert tab.statistics(result) is tab.statistics(result), "resampled once per result"
    person = next(row for row in evaluated.class_rows if row[0] == "person")
    boundary = [result.models[m].boundary_iou[CLASS_NAMES.index("person")] for m in "AB"]
    assert person[4:] == [format_value(value) for value in boundary], "Boundary IoU A and B"
    labels = [row[0] for row in evaluated.summary_rows]
    assert (
        labels.index("segment share of critical misses") == labels.index("critical-miss rate") + 1
    ), "shown next to the critical-miss rate"
    sizes = Counter((i.size, i.class_name) for image in result.images for i in image.instances)
    assert sizes, "synthetic scenes have persons and vehicles"
    counted = {row[0]: row[1] for row in evaluated.object_rows}
    assert counted == {f"{size} {plural(name)}": n for (size, name), n in sizes.items()}
    said = {part.split(" missed: ")[0] for part in evaluated.objects_message.split(" · ")}
    persons = {f"{size} persons" for size, name in sizes if name == "person"}
    assert said == (persons or {"No persons in the split."})
