"""The review page as a reviewer meets it, in a real headless Chromium at 1400x900 on the
demo set: one reviewer identity for every action, failures that leave the page as it was,
flags on uploaded images in the Flags tab (issue 17)."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from db.store import ReviewStore
from reviewer.handlers import CLASS_HEADERS
from tests.chromium import free_port, launch_chromium, playwright_api, served_app
from tests.test_browser import _wait_for_scores, running_app  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser

WINDOW = {"width": 1400, "height": 900}
PLOT_LAYOUT = (Path(__file__).with_name("plot_layout.js")).read_text(encoding="utf-8")
"""A script listing what is wrong with the plots under an element: a tick label, title or
legend text outside its figure, an axis title on a tick label, a figure without a title."""


@pytest.fixture()
def reviewer_page(running_app):  # noqa: F811 (the imported fixture)
    """A 1400x900 page of the running app, scored; no dialog may open in it."""
    sync_api = playwright_api()
    dialogs: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport=WINDOW)
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(running_app[0])
        _wait_for_scores(sync_api, page)
        yield page
        browser.close()
    assert dialogs == [], "user-written text must never run as script"


@pytest.fixture(scope="module")
def camvid_app(camvid_root: Path, tiny_models: Path, tmp_path_factory):
    """The app on a real CamVid-layout split (classes only, 11 of them, no objects)."""
    folder = tmp_path_factory.mktemp("camvid")
    arguments = ["--data", str(camvid_root), "--split", "val", "--models", str(tiny_models)]
    arguments += ["--only-my-models", "--db", f"sqlite:///{folder / 'review.db'}"]
    with served_app(arguments, folder / "data", free_port()) as url:
        yield url


def _toast(page):
    return page.locator("[data-testid='toast-body']")


def _upload_photo(page, folder: Path) -> None:
    photo = np.random.default_rng(5).integers(0, 256, (96, 160, 3), dtype=np.uint8)
    path = folder / "my-road.png"
    cv2.imwrite(str(path), photo)
    page.locator("#upload-image input[type=file]").set_input_files(str(path))


def test_one_reviewer_flags_an_upload_and_finds_it_in_the_flags_tab(
    running_app,  # noqa: F811 (the imported fixture)
    reviewer_page,
    tmp_path: Path,
) -> None:
    sync_api = playwright_api()
    page = reviewer_page
    _, db_url, _, _ = running_app
    name = page.locator("#reviewer-name input, #reviewer-name textarea").first
    sync_api.expect(name).to_be_in_viewport()
    page.get_by_role("tab", name="Your image").click()
    _upload_photo(page, tmp_path)
    page.get_by_role("button", name="Predict with both models").click()
    for key, letter in (("prediction_a", "A"), ("prediction_b", "B")):
        picked = page.locator(f"#upload-model-{letter.lower()} input").input_value()
        caption = page.locator(f"#upload-{key} [data-testid='block-label']")
        named = re.compile(rf"^\s*{letter}: {re.escape(picked.split()[0])}$")
        sync_api.expect(caption).to_have_text(named, timeout=30_000)
    flag_button = page.locator("#flag-upload")
    flag_button.click()
    sync_api.expect(_toast(page)).to_contain_text("Type your name", timeout=30_000)
    sync_api.expect(page.locator("#upload-image img")).to_have_count(1)

    name.fill("upload <b>reviewer</b>")
    flag_button.click()
    status = page.locator("#upload-status")
    sync_api.expect(status).to_contain_text("Saved flag", timeout=30_000)
    flag_button.click()
    sync_api.expect(status).to_contain_text("already says exactly this", timeout=30_000)

    page.get_by_role("tab", name="Flags").click()
    table = page.locator("#all-flags")
    sync_api.expect(table).to_contain_text("uploads/", timeout=30_000)
    sync_api.expect(table).to_contain_text("upload <b>reviewer</b>")
    filter_box = page.get_by_label("Filter: reviewer")
    filter_box.fill("nobody")
    page.get_by_role("button", name="Refresh").click()
    sync_api.expect(table).not_to_contain_text("uploads/", timeout=30_000)
    filter_box.fill("")
    page.get_by_role("button", name="Refresh").click()
    sync_api.expect(table).to_contain_text("uploads/", timeout=30_000)

    page.get_by_role("button", name="Apply").click()
    sync_api.expect(_toast(page).last).to_contain_text("Select a flag", timeout=30_000)
    sync_api.expect(table).to_contain_text("uploads/")
    sync_api.expect(page.locator("#all-flags .error, #audit-trail .error")).to_have_count(0)

    table.locator("[data-testid='cell-0-1']").click()
    page.get_by_role("button", name="Apply").click()
    trail = page.locator("#audit-trail")
    sync_api.expect(trail).to_contain_text("status: open → confirmed", timeout=30_000)
    sync_api.expect(trail).to_contain_text("target model A (segnet-")
    with ReviewStore.open(db_url) as store:
        (flag,) = store.list_flags(status="confirmed")
    assert flag.image_key.startswith("uploads/") and flag.reviewer == "upload <b>reviewer</b>"


def _box(locator) -> dict:
    return locator.evaluate(
        "e => { const r = e.getBoundingClientRect(); "
        "return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; }"
    )


FIRST_PANELS = ["image", "ground_truth", "prediction_a", "prediction_b"]
IMAGES_FIRST = """(keys) => keys.map((key) => {
    const image = document.querySelector(`#review-board figure[data-panel='${key}'] img`);
    const box = image ? image.getBoundingClientRect() : {width: 0, top: -1, bottom: 0, right: 0};
    return {key, width: box.width, top: box.top, bottom: box.bottom, right: box.right};
})"""
"""Where the four panels a reviewer reads first are drawn."""


def _assert_images_first(page) -> None:
    """The input, ground truth and both predictions in the window, each >= 420 px wide
    (waited for: the board draws the image once its panels arrive)."""
    condition = f"""(keys) => ({IMAGES_FIRST})(keys).every((box) => box.width >= 420
        && box.top >= 0 && box.bottom <= innerHeight && box.right <= innerWidth)"""
    try:
        page.wait_for_function(condition, arg=FIRST_PANELS, timeout=60_000)
    except playwright_api().TimeoutError:
        pytest.fail(f"the four panels are not first: {page.evaluate(IMAGES_FIRST, FIRST_PANELS)}")


def test_the_four_panels_come_first_wide_named_and_zoom_together(reviewer_page) -> None:
    sync_api = playwright_api()
    page = reviewer_page
    board = page.locator("#review-board")
    _assert_images_first(page)
    captions = board.locator("figure figcaption").all_inner_texts()
    assert captions[2:4] == ["A: segnet-ce", "B: segnet-ial"]
    # Beside them, in the same first screen: the colours of the image's classes and the
    # flag form down to its Save button.
    chips = page.locator("#map-legend .legend-chip")
    sync_api.expect(chips.last).to_be_in_viewport(ratio=1, timeout=30_000)
    sync_api.expect(chips.first).to_be_in_viewport(ratio=1)
    sync_api.expect(page.locator("#save-flag")).to_be_in_viewport(ratio=1)
    sync_api.expect(page.locator("#code-legend")).to_contain_text("Error maps by kind of error")

    frame = board.locator("figure[data-panel='ground_truth'] .zoom-frame")
    frame.hover()
    page.mouse.wheel(0, -400)
    zoomed = board.locator(".zoom-content[style*='scale(2.2']")
    sync_api.expect(zoomed).to_have_count(board.locator(".zoom-content").count())
    title = board.locator("#image-title strong")
    shown = title.inner_text()
    page.locator("#page-title").click()
    page.keyboard.press("n")
    sync_api.expect(title).not_to_have_text(shown, timeout=30_000)
    sync_api.expect(zoomed).to_have_count(board.locator(".zoom-content").count())
    frame.dblclick()
    sync_api.expect(board.locator(".zoom-content[style*='scale(1)']")).to_have_count(
        board.locator(".zoom-content").count()
    )


def _svg_texts(locator) -> list[str]:
    return locator.evaluate_all("texts => texts.map(text => text.textContent)")


def _plot_problems(page, selector: str, plots: int) -> list[str]:
    """What :data:`PLOT_LAYOUT` finds once ``plots`` figures are drawn under ``selector``."""
    root = page.locator(selector)
    playwright_api().expect(root.locator(".js-plotly-plot .gtitle")).to_have_count(
        plots, timeout=60_000
    )
    found = page.evaluate(PLOT_LAYOUT, root.element_handle())
    assert found["count"] == plots
    return found["problems"]


def test_plots_keep_their_labels_inside_and_mark_missing_scores(reviewer_page) -> None:
    sync_api = playwright_api()
    page = reviewer_page
    details = page.locator("#review-details")
    shown = page.locator("#review-board #image-title strong").inner_text()
    sync_api.expect(details.locator(".gtitle").first).to_contain_text(shown, timeout=60_000)
    assert _plot_problems(page, "#review-details", 3) == []
    bars = details.locator(".js-plotly-plot").first
    texts = _svg_texts(bars.locator(".legendtext"))
    for entry in ("A (solid)", "B (hatched)", "colour: importance group", "most important"):
        assert entry in texts
    assert "n/a" in _svg_texts(bars.locator(".textpoint"))

    page.get_by_label("classes").check()
    for heatmap in (1, 2):
        sync_api.expect(details.locator(".gtitle").nth(heatmap)).to_contain_text(
            "class confusion", timeout=60_000
        )
    assert _plot_problems(page, "#review-details", 3) == []

    page.get_by_role("tab", name="Dataset").click()
    page.get_by_role("button", name="Evaluate the split with both models").click()
    assert _plot_problems(page, "#dataset-plots", 4) == []


def test_a_camvid_split_shows_only_the_controls_that_apply(camvid_app) -> None:
    sync_api = playwright_api()
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport=WINDOW)
        page.goto(camvid_app)
        _wait_for_scores(sync_api, page)
        cards = page.get_by_role("button", name="Model cards: a model does not fit this data")
        sync_api.expect(cards).to_be_visible(timeout=30_000)
        _assert_images_first(page)
        page.get_by_text("Queue order, filters and display").click()
        sync_api.expect(page.get_by_role("combobox", name="City / sequence")).to_be_visible()
        assert page.get_by_label("Condition (synthetic set)").count() == 0
        sync_api.expect(page.get_by_text("Objects: not annotated in this dataset")).to_be_visible()

        page.get_by_role("tab", name="Dataset").click()
        page.get_by_role("button", name="Evaluate the split with both models").click()
        worst = page.locator("#worst-images [data-testid='cell-0-0']")
        sync_api.expect(worst).to_contain_text("val/", timeout=120_000)
        headers = page.locator("#worst-images th").all_inner_texts()
        missed = [i for i, header in enumerate(headers) if header.strip().startswith("missed")]
        assert len(missed) == 2
        for column in missed:
            cell = page.locator(f"#worst-images [data-testid='cell-0-{column}']")
            sync_api.expect(cell).to_have_text("not annotated")
        classes = page.locator("#class-iou").inner_text()
        scored = len(CLASS_HEADERS) - 2  # every column but class and group
        assert classes.count("not annotated") == scored * 8, "the 8 classes CamVid lacks"
        split_bars = page.locator("#dataset-plots .js-plotly-plot").first
        assert _svg_texts(split_bars.locator(".textpoint")) == ["n/a"] * 8
        browser.close()
