"""The review service and panel functions the GUI wires: queue order, views, flags, uploads."""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from db.store import ReviewStore
from models.catalogue import ModelCatalogue
from models.conditions import condition_tags
from models.datasets import DatasetError, open_dataset
from models.inference import InferenceEngine
from models.labels import CLASSES, DEFAULT_GROUPS, NUM_EVALUATED, ImportanceGroups
from models.maps import ERROR_MAP, TAXONOMY_MAP
from models.scoring import score_image
from models.taxonomy import error_taxonomy
from reviewer import board, panels
from reviewer.handlers import parse_region
from reviewer.overlays import code_overlay
from reviewer.review_queue import SUSPECT_KEY
from reviewer.views import ViewComposer
from reviewer.workbench import Workbench
from tests.pg import pg_server, store_url  # noqa: F401  (fixtures)


@pytest.fixture()
def bench(tiny_synthetic: Path, tiny_models: Path, tmp_path: Path) -> Workbench:
    return Workbench(
        dataset=open_dataset(tiny_synthetic, "val"),
        engine=InferenceEngine(device="cpu"),
        store=ReviewStore.open(f"sqlite:///{tmp_path / 'review.db'}"),
        catalogue=ModelCatalogue.discover([tiny_models], shipped=False),
        upload_dir=tmp_path / "uploads",
    )


def _independent_scores(
    bench: Workbench, name: str, key: str, groups: ImportanceGroups = DEFAULT_GROUPS
) -> dict[str, float]:
    engine = InferenceEngine(device="cpu")
    model = engine.load(bench.catalogue.path(name))
    result = {}
    for sample in bench.dataset:
        prediction = engine.predict(model, bench.dataset.read_image(sample)).labels
        scored = score_image(bench.dataset.read_label(sample), {name: prediction}, groups)
        result[sample.id] = scored.value(name, key)
    return result


def _independent_safety(bench: Workbench, name: str) -> dict[str, float]:
    return _independent_scores(bench, name, "safety_error")


def test_queue_is_worst_first_after_evaluation_and_cached_in_the_store(
    bench: Workbench, tmp_path: Path
) -> None:
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    assert (name_a, name_b) == ("segnet-ce", "segnet-ial")
    assert bench.scores.cached_scores(name_a, name_b) is None
    unordered = bench.queue.rows(name_a, name_b, "safety error of A")
    assert [r.sample_id for r in unordered] == sorted(s.id for s in bench.dataset)
    bench.scores.evaluate(name_a, name_b)
    expected = _independent_safety(bench, name_a)
    rows = bench.queue.rows(name_a, name_b, "safety error of A")
    assert [r.sample_id for r in rows] == sorted(expected, key=lambda k: -expected[k])
    for row in rows:
        assert row.value == pytest.approx(expected[row.sample_id])

    fresh = Workbench(
        dataset=bench.dataset,
        engine=InferenceEngine(device="cpu"),
        store=ReviewStore.open(f"sqlite:///{tmp_path / 'review.db'}"),
        catalogue=bench.catalogue,
    )
    cached = fresh.scores.cached_scores(name_a, name_b)
    assert cached is not None and set(cached["A"]) == set(expected)
    reordered = fresh.queue.rows(name_a, name_b, "regression of B against A")
    expected_b = _independent_safety(bench, name_b)
    values = {r.sample_id: r.value for r in reordered}
    for sample_id, value in values.items():
        assert value == pytest.approx(expected_b[sample_id] - expected[sample_id])
    assert [r.value for r in reordered] == sorted(values.values(), reverse=True)
    lowest_miou_first = fresh.queue.rows(name_a, name_b, "mIoU of B")
    miou_b = _independent_scores(bench, name_b, "miou")
    assert [r.sample_id for r in lowest_miou_first] == sorted(miou_b, key=lambda k: miou_b[k])
    assert [r.value for r in lowest_miou_first] == pytest.approx(sorted(miou_b.values()))


ROAD_FIRST = ImportanceGroups(
    names=("everything else", "road"),
    members=(tuple(i for i in range(20) if i not in (0, 1)), (0, 1)),
)
"""Other importance groups than the recipe's: road and sidewalk most important."""


def test_restart_with_other_groups_ranks_by_scores_under_the_new_groups(
    tiny_synthetic: Path,
    tiny_models: Path,
    store_url: str,  # noqa: F811
) -> None:
    def start(groups: ImportanceGroups) -> Workbench:
        return Workbench(
            dataset=open_dataset(tiny_synthetic, "val"),
            engine=InferenceEngine(device="cpu"),
            store=ReviewStore.open(store_url),
            catalogue=ModelCatalogue.discover([tiny_models], shipped=False),
            groups=groups,
        )

    default = start(DEFAULT_GROUPS)
    name_a, name_b = default.catalogue.pair_for(default.dataset.kind)
    default.scores.evaluate(name_a, name_b)
    old = _independent_scores(default, name_a, "safety_error", DEFAULT_GROUPS)
    default.store.close()

    restarted = start(ROAD_FIRST)
    assert restarted.scores.cached_scores(name_a, name_b) is None
    unranked = restarted.queue.rows(name_a, name_b, "safety error of A")
    assert [r.value for r in unranked] == [None] * len(old)
    restarted.scores.evaluate(name_a, name_b)
    new = _independent_scores(restarted, name_a, "safety_error", ROAD_FIRST)
    assert any(new[k] != pytest.approx(old[k]) for k in new), "the groups must change the scores"
    rows = restarted.queue.rows(name_a, name_b, "safety error of A")
    assert [r.sample_id for r in rows] == sorted(new, key=lambda k: -new[k])
    for row in rows:
        panel = restarted.views.view(row.sample_id, name_a, name_b).result
        assert row.value == pytest.approx(new[row.sample_id])
        assert row.value == pytest.approx(panel.value("A", "safety_error"))
    pair = restarted.scores.cached_scores(name_a, name_b)["pair"]
    for sample_id, counts in pair.items():
        panel = restarted.views.view(sample_id, name_a, name_b).result
        assert counts == {**panel.disagreement, SUSPECT_KEY: panel.suspect_pixels}
    restarted.store.close()

    back = start(DEFAULT_GROUPS)
    cached = back.scores.cached_scores(name_a, name_b)
    assert cached is not None, "the default groups' scores are still cached"
    assert {k: v["safety_error"] for k, v in cached["A"].items()} == pytest.approx(old)
    back.store.close()


def test_cached_rows_without_every_score_of_the_table_are_scored_again(bench: Workbench) -> None:
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    bench.scores.evaluate(name_a, name_b)
    first = bench.dataset[0].id
    row = bench.scores.cached_scores(name_a, name_b)["B"][first]
    older = {key: value for key, value in row.items() if key != "expected_cost"}
    ids = bench.registry.model_id(name_b), bench.registry.image_id(first)
    bench.store.put_scores(*ids, older, settings=bench.scores.settings.fingerprint)
    assert bench.scores.cached_scores(name_a, name_b) is None
    bench.scores.evaluate(name_a, name_b)
    assert bench.scores.cached_scores(name_a, name_b)["B"][first] == row


def test_corrected_ground_truth_is_scored_again_not_served_from_the_cache(
    tiny_synthetic: Path, tiny_models: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_synthetic, data)
    url = f"sqlite:///{tmp_path / 'review.db'}"

    def open_bench() -> Workbench:
        return Workbench(
            dataset=open_dataset(data, "val"),
            engine=InferenceEngine(device="cpu"),
            store=ReviewStore.open(url),
            catalogue=ModelCatalogue.discover([tiny_models], shipped=False),
        )

    bench = open_bench()
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    bench.scores.evaluate(name_a, name_b)
    corrected = bench.dataset[0]
    before = bench.scores.cached_scores(name_a, name_b)["A"][corrected.id]["safety_error"]
    label = cv2.imread(str(corrected.label_path), cv2.IMREAD_UNCHANGED)
    label[: label.shape[0] // 2] = CLASSES[11].label_id  # a person where sky and buildings were
    cv2.imwrite(str(corrected.label_path), label)

    reopened = open_bench()
    assert reopened.scores.cached_scores(name_a, name_b) is None
    reopened.scores.evaluate(name_a, name_b)
    expected = _independent_safety(reopened, name_a)
    assert expected[corrected.id] != pytest.approx(before)
    stored = reopened.scores.cached_scores(name_a, name_b)
    assert stored is not None
    assert stored["A"][corrected.id]["safety_error"] == pytest.approx(expected[corrected.id])


def test_flag_status_filter_and_view_contents(bench: Workbench) -> None:
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    target = bench.dataset[1].id
    bench.store.create_flag(
        image_id=bench.registry.image_id(target),
        reviewer="ana",
        target="model_a",
        model_a_id=bench.registry.model_id(name_a),
        model_b_id=bench.registry.model_id(name_b),
        severity="critical",
        category="missed person",
    )
    assert [r.sample_id for r in bench.queue.rows(name_a, name_b, status="open")] == [target]
    assert len(bench.queue.rows(name_a, name_b, status="unflagged")) == len(bench.dataset) - 1

    view = bench.views.view(target, name_a, name_b)
    engine = InferenceEngine(device="cpu")
    image = bench.dataset.read_image(bench.dataset.sample(target))
    expected_a = engine.predict(engine.load(bench.catalogue.path(name_a)), image).labels
    assert np.array_equal(view.prediction_a, expected_a)
    gt = bench.dataset.read_label(bench.dataset.sample(target))
    alone = score_image(gt, {"A": expected_a}, DEFAULT_GROUPS).scores["A"]
    assert view.result.scores["A"].to_dict() == alone.to_dict()
    np.testing.assert_array_equal(view.result.scores["A"].confusion, alone.confusion)
    assert view.result.scores["A"].confusion.sum() == gt.size
    assert bench.views.view(target, name_a, name_b) is view
    assert view.result.instances, "synthetic scenes have persons and vehicles"

    drawn = panels.render_panels(view, panels.DisplayOptions(opacity=1.0))
    hidden = panels.render_panels(
        view, panels.DisplayOptions(opacity=1.0, visible_classes=frozenset())
    )
    assert drawn.ground_truth.shape == image.shape
    assert np.array_equal(hidden.prediction_a, image)
    rows = panels.instance_rows(view)
    assert len(rows) == len(view.result.instances)
    missed = sum(1 for i in view.result.instances if i.missed["A"])
    assert sum("MISSED" in row[4] for row in rows) == missed


def test_visible_classes_follow_group_and_class_toggles() -> None:
    everything = panels.visible_classes(DEFAULT_GROUPS, DEFAULT_GROUPS.names, [])
    assert everything is None
    only_top = panels.visible_classes(DEFAULT_GROUPS, ["most important"], ["person"])
    expected = set(DEFAULT_GROUPS.members[3]) - {11}
    assert only_top == frozenset(expected)


def test_upload_is_kept_and_flaggable(bench: Workbench) -> None:
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    image = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    view = bench.views.view_upload(image, name_a, name_b)
    assert view.ground_truth is None and view.prediction_a.shape == (70, 90)
    assert np.array_equal(view.models_differ, view.prediction_a != view.prediction_b)
    image_id = bench.uploads.add(image)
    assert bench.uploads.add(image) == image_id
    stored = bench.store.get_image(image_id)
    assert (stored.width, stored.height) == (90, 70)
    assert Path(stored.path).parent == bench.uploads.folder


def test_region_text_is_parsed_or_refused() -> None:
    assert parse_region("") is None
    assert parse_region("1, 2, 30, 40") == (1, 2, 30, 40)
    with pytest.raises(ValueError, match="four whole numbers"):
        parse_region("1, 2, 3")
    with pytest.raises(ValueError, match="four whole numbers"):
        parse_region("a b c d")


def test_unknown_model_and_image_give_clear_errors(bench: Workbench) -> None:
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        bench.registry.model("nope")
    with pytest.raises(KeyError, match="no image 'val/x/y'"):
        bench.registry.image_id("val/x/y")
    with pytest.raises(FileNotFoundError, match="model file or folder not found"):
        ModelCatalogue.discover([Path("/nonexistent/models")])


def test_iou_figure_marks_unannotated_classes(bench: Workbench) -> None:
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    view = bench.views.view(bench.dataset[0].id, name_a, name_b)
    figure = panels.iou_figure(view, DEFAULT_GROUPS, frozenset(range(5)))
    hover = [row[1] for row in figure.data[0].customdata]
    assert hover[10] == "n/a (not annotated)" and len(hover) == NUM_EVALUATED


def test_disagreement_can_be_judged_on_all_labelled_pixels(bench: Workbench) -> None:
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    view = bench.views.view(bench.dataset[2].id, name_a, name_b)
    critical = panels.render_panels(view, panels.DisplayOptions())
    everywhere = panels.render_panels(view, panels.DisplayOptions(agreement_on_all_pixels=True))
    gt, a, b = view.ground_truth, view.prediction_a, view.prediction_b
    judged_critical = view.disagreement != 255
    other_labelled = (gt != 19) & ~judged_critical & ((a != gt) | (b != gt))
    changed = np.any(critical.disagreement != everywhere.disagreement, axis=2)
    assert not changed[judged_critical].any()
    assert other_labelled.any() and changed[other_labelled].all()


def _count_predictions(bench: Workbench, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the image id of every prediction the bench's engine makes."""
    predicted: list[str] = []
    original = bench.engine.predict

    def counting(model, image, image_id=None):
        predicted.append(image_id)
        return original(model, image, image_id)

    monkeypatch.setattr(bench.engine, "predict", counting)
    return predicted


def test_a_view_is_computed_once_and_equals_a_fresh_one(
    bench: Workbench, monkeypatch: pytest.MonkeyPatch, tiny_synthetic: Path, tmp_path: Path
) -> None:
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    predicted = _count_predictions(bench, monkeypatch)
    sample_id = bench.dataset[1].id
    bench.views.view(sample_id, name_a, name_b)
    view = bench.views.view(sample_id, name_a, name_b)
    assert predicted == [sample_id, sample_id]
    fresh = Workbench(
        dataset=open_dataset(tiny_synthetic, "val"),
        engine=InferenceEngine(device="cpu"),
        store=ReviewStore.open(f"sqlite:///{tmp_path / 'other.db'}"),
        catalogue=bench.catalogue,
    ).views.view(sample_id, name_a, name_b)
    assert np.array_equal(view.prediction_a, fresh.prediction_a)
    assert np.array_equal(view.error_b, fresh.error_b)
    assert view.result.scores["A"].to_dict() == fresh.result.scores["A"].to_dict()


def test_condition_filter_and_title_follow_the_synthetic_sidecars(bench: Workbench) -> None:
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    sidecars = {s.id: json.loads(s.meta_path.read_text()) for s in bench.dataset}

    def has(meta: dict, tag: str) -> bool:
        if tag in ("fog", "rain", "blur"):
            return meta[tag] > 0
        return (
            tag in meta["tags"]
            or tag == meta["time_of_day"]
            or (tag == "crossing" and meta["crossing"])
        )

    available = bench.queue.conditions()
    assert {m["time_of_day"] for m in sidecars.values()} <= set(available)
    for tag in available:
        expected = {sample_id for sample_id, meta in sidecars.items() if has(meta, tag)}
        shown = bench.queue.rows(name_a, name_b, "name", condition=tag)
        assert expected and {row.sample_id for row in shown} == expected
    first = bench.dataset[0].id
    tags = condition_tags(bench.views.view(first, name_a, name_b).meta)
    assert sidecars[first]["time_of_day"] in tags


def test_background_scoring_fills_the_cache_as_an_evaluation_does(
    bench: Workbench, tiny_synthetic: Path, tmp_path: Path
) -> None:
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    assert bench.scores.cached_scores(name_a, name_b) is None
    reported: list[tuple[int, int]] = []
    scoring = bench.score_in_background(name_a, name_b, lambda *done: reported.append(done))
    result = scoring.future.result(timeout=120)
    count = len(bench.dataset)
    assert not scoring.running and scoring.failure() is None and bench.background is scoring
    assert scoring.done == count and reported[-1] == (count, count)
    assert bench.scores.split_result(name_a, name_b) is result
    cached = bench.scores.cached_scores(name_a, name_b)
    assert cached is not None and len(cached["A"]) == count
    alone = Workbench(
        dataset=open_dataset(tiny_synthetic, "val"),
        engine=InferenceEngine(device="cpu"),
        store=ReviewStore.open(f"sqlite:///{tmp_path / 'alone.db'}"),
        catalogue=bench.catalogue,
    ).scores.evaluate(name_a, name_b)
    assert result.models["B"]["miou"] == alone.models["B"]["miou"]
    assert result.models["A"]["critical_miss_rate"] == alone.models["A"]["critical_miss_rate"]


def test_a_failed_background_scoring_keeps_its_error(
    bench: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(sample):
        raise DatasetError(f"cannot read {sample.image_path}")

    monkeypatch.setattr(bench.dataset, "read_image", unreadable)
    scoring = bench.score_in_background(*bench.catalogue.pair_for(bench.dataset.kind))
    with pytest.raises(DatasetError):
        scoring.future.result(timeout=60)
    assert isinstance(scoring.failure(), DatasetError) and not scoring.running
    assert bench.scores.cached_scores(*bench.catalogue.pair_for(bench.dataset.kind)) is None


def test_error_panels_are_coloured_by_kind_when_the_display_asks(bench: Workbench) -> None:
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    sample = bench.dataset[0]
    view = bench.views.view(sample.id, name_a, name_b)
    gt = bench.dataset.read_label(sample)
    kinds = error_taxonomy(gt, view.prediction_b, bench.groups).codes
    np.testing.assert_array_equal(view.kinds_b, kinds)
    assert (kinds != TAXONOMY_MAP.value("correct")).any(), "the tiny models make errors"
    asked = board.display_from_request(
        {"model_a": name_a, "model_b": name_b, "errors_by_kind": True}
    ).options(bench.groups)
    by_kind = panels.render_panels(view, asked)
    by_importance = panels.render_panels(view, panels.DisplayOptions())
    np.testing.assert_array_equal(by_kind.error_b, code_overlay(view.image, kinds, TAXONOMY_MAP))
    np.testing.assert_array_equal(
        by_importance.error_b, code_overlay(view.image, view.error_b, ERROR_MAP)
    )
    assert "Error maps by kind of error" in panels.code_legends()


def test_recent_views_are_bounded_by_the_bytes_they_hold(
    bench: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    name_a, name_b = bench.catalogue.pair_for(bench.dataset.kind)
    ids = [sample.id for sample in bench.dataset][:3]
    first = bench.views.view(ids[0], name_a, name_b)
    arrays = (first.image, first.ground_truth, first.prediction_a, first.prediction_b)
    arrays += (first.error_a, first.error_b, first.kinds_a, first.kinds_b)
    arrays += (first.disagreement, first.models_differ, first.suspect_map)
    assert first.nbytes == sum(array.nbytes for array in arrays)
    views = ViewComposer(bench.dataset, bench.engine, bench.catalogue, cache_bytes=2 * first.nbytes)
    reads: list[str] = []
    read_image = bench.dataset.read_image
    monkeypatch.setattr(bench.dataset, "read_image", lambda s: reads.append(s.id) or read_image(s))
    for sample_id in ids:
        views.view(sample_id, name_a, name_b)
    views.view(ids[2], name_a, name_b)
    views.view(ids[1], name_a, name_b)
    assert reads == ids, "the two latest views are kept"
    views.view(ids[0], name_a, name_b)
    assert reads == [*ids, ids[0]], "the oldest was let go to stay within the bound"


def test_a_view_asked_for_twice_at_once_is_computed_once(
    bench: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's tables and its plots ask for the view of a new image at the same time."""
    pair = bench.catalogue.pair_for(bench.dataset.kind)
    sample_id = bench.dataset[1].id
    views = ViewComposer(bench.dataset, bench.engine, bench.catalogue)
    scored, started, release = [], threading.Event(), threading.Event()

    def slow_score(*args, **kwargs):
        scored.append(kwargs["sample_id"])
        started.set()
        assert release.wait(timeout=60)
        return score_image(*args, **kwargs)

    monkeypatch.setattr("reviewer.views.score_image", slow_score)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(views.view, sample_id, *pair)
        assert started.wait(timeout=60)
        second = pool.submit(views.view, sample_id, *pair)
        release.set()
        assert first.result(timeout=60) is second.result(timeout=60)
    assert scored == [sample_id]
    assert views.view(sample_id, *pair) is first.result()
