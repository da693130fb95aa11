"""End to end in a real headless Chromium: open the app, pick an image, switch a model,
flag a case, and find the flag in the database."""

from __future__ import annotations

import os
import re
import shutil
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from db.store import ReviewStore
from tests.chromium import free_port, launch_chromium, playwright_api, served_app

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def running_app(tiny_synthetic: Path, tiny_models: Path, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("app")
    port = free_port()
    db_url = f"sqlite:///{tmp_path / 'review.db'}"
    arguments = ["--data", str(tiny_synthetic), "--split", "val", "--models", str(tiny_models)]
    arguments += ["--only-my-models", "--db", db_url]
    with served_app(arguments, tmp_path / "data", port) as url:
        yield url, db_url, tmp_path / "data", port


def _wait_for_scores(sync_api, page) -> None:
    """Until the split's first evaluation, which runs behind the app, is over."""
    page.locator("#review-board #image-title strong").wait_for(timeout=60_000)
    status = page.locator("#scoring-status")
    sync_api.expect(status).not_to_contain_text(re.compile("Scoring|Loading"), timeout=60_000)


def _queue_row(page, row: int):
    """A row of the review board's queue list (its data-id is the image id)."""
    return page.locator(f"#review-board tr[data-index='{row}']")


def _image_id(page, row: int) -> str:
    return _queue_row(page, row).get_attribute("data-id", timeout=60_000) or ""


@pytest.fixture()
def app_page(running_app):
    """A page of the running app in a fresh Chromium; no dialog may open in it, as
    user-written text must never run as script."""
    sync_api = playwright_api()
    dialogs: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1500, "height": 1800})
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(running_app[0])
        yield page
        browser.close()
    assert dialogs == [], "user-written text must never run as script"


def test_review_switch_model_and_flag_in_a_real_browser(
    running_app, app_page, tmp_path: Path
) -> None:
    sync_api = playwright_api()
    _, db_url, _, _ = running_app
    page = app_page
    title = page.locator("#review-board #image-title strong")
    _wait_for_scores(sync_api, page)
    scores = page.locator("#review-board tbody td:nth-child(2)").all_inner_texts()
    assert scores == sorted(scores, reverse=True), "the queue is worst first"
    first = _image_id(page, 0)
    assert first.startswith("val/")
    sync_api.expect(title).to_have_text(first, timeout=60_000)

    picked = _image_id(page, 1)
    _queue_row(page, 1).click()
    sync_api.expect(title).to_have_text(picked, timeout=30_000)
    sync_api.expect(page.locator("#review-board .position")).to_contain_text("Image 2 of 4")
    sync_api.expect(page.locator("#review-details .gtitle").first).to_contain_text(
        picked, timeout=30_000
    )

    third = _image_id(page, 2)
    page.locator("#page-title").click()
    page.keyboard.press("n")
    sync_api.expect(title).to_have_text(third, timeout=30_000)
    # Its plots drawn and its neighbours asked for: only then is everything prepared.
    view_pane = page.locator("#review-board .view-pane[aria-busy='false']")
    sync_api.expect(view_pane).to_have_count(1, timeout=30_000)
    panel_requests: list[str] = []
    page.on("request", lambda request: panel_requests.append(request.url))
    page.keyboard.press("p")
    sync_api.expect(title).to_have_text(picked, timeout=30_000)
    revisit_requests = [url for url in panel_requests if "component_server" in url]
    assert revisit_requests == [], "a revisited image and its plots come from the browser's memory"
    shown = "#review-board figure:not([hidden]) img"
    sync_api.expect(page.locator(shown)).to_have_count(9)
    # An image swapped in from memory is decoded asynchronously: wait until all nine are.
    page.wait_for_function(
        "selector => [...document.querySelectorAll(selector)]"
        ".every(image => image.complete && image.naturalWidth > 0)",
        arg=shown,
        timeout=30_000,
    )

    page.get_by_role("combobox", name="Model B").click()
    page.get_by_role("option", name=re.compile(r"^segnet-ce \(CE, ")).click()
    page.locator("#cards-button").click()
    card_b = page.locator("#model-b-card")
    sync_api.expect(card_b).to_contain_text("loss ce", timeout=30_000)
    sync_api.expect(title).to_have_text(picked, timeout=30_000)

    page.locator("#reviewer-name textarea, #reviewer-name input").first.fill("e2e reviewer")
    note = "pedestrian behind the car <script>alert('x')</script>"
    page.locator("#flag-note textarea").fill(note)
    page.locator("#save-flag").click()
    sync_api.expect(page.locator("#flag-status")).to_contain_text("Saved flag", timeout=30_000)
    page.screenshot(path=str(tmp_path / "review.png"), full_page=True)

    page.get_by_role("tab", name="Flags").click()
    sync_api.expect(page.locator("#all-flags")).to_contain_text("e2e reviewer", timeout=30_000)
    page.get_by_role("button", name="Export", exact=True).click()
    sync_api.expect(page.locator("#export-message")).to_contain_text(
        "Exported 1 flag on 1 image", timeout=120_000
    )
    page.get_by_role("tab", name="Review").click()
    sync_api.expect(title).to_have_text(picked, timeout=30_000)
    artifacts = os.environ.get("SEGBENCH_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "review.png", Path(artifacts) / "browser-review.png")

    with ReviewStore.open(db_url) as store:
        (flag,) = store.list_flags()
    assert flag.image_key == picked
    assert flag.reviewer == "e2e reviewer" and flag.note == note
    assert flag.model_a == "segnet-ce" and flag.model_b == "segnet-ce"
    assert flag.status == "open" and flag.target == "model_a"
    assert (tmp_path / "review.png").stat().st_size > 10_000


def test_the_error_maps_switch_to_kinds_of_error_and_back(app_page) -> None:
    sync_api = playwright_api()
    page = app_page
    _wait_for_scores(sync_api, page)
    errors_a = page.locator("#review-board figure[data-panel='error_a'] img")
    sync_api.expect(errors_a).to_have_attribute("src", re.compile("^data:image"), timeout=60_000)
    by_importance = errors_a.get_attribute("src")
    page.get_by_text("Queue order, filters and display").click()
    page.get_by_role("radio", name="kind (boundary / extent / segment)").click()
    sync_api.expect(errors_a).not_to_have_attribute("src", by_importance, timeout=60_000)
    sync_api.expect(page.locator("#code-legend")).to_contain_text(
        "Error maps by kind of error", timeout=30_000
    )
    page.get_by_role("radio", name="importance (miss / false alarm)").click()
    sync_api.expect(errors_a).to_have_attribute("src", by_importance, timeout=60_000)


def test_two_sessions_keep_their_own_selection(running_app) -> None:
    sync_api = playwright_api()
    url, *_ = running_app
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        pages = [browser.new_context().new_page() for _ in range(2)]
        titles = []
        for page in pages:
            page.goto(url)
            _wait_for_scores(sync_api, page)
            titles.append(page.locator("#review-board #image-title strong"))
            sync_api.expect(titles[-1]).to_contain_text("val/", timeout=60_000)
        wanted = []
        for index, page in enumerate(pages):
            wanted.append(_image_id(page, index + 1))
            _queue_row(page, index + 1).click()
            sync_api.expect(titles[index]).to_have_text(wanted[index], timeout=30_000)
        pages[1].locator("#page-title").click()
        pages[1].keyboard.press("n")
        sync_api.expect(titles[1]).not_to_have_text(wanted[1], timeout=30_000)
        sync_api.expect(titles[0]).to_have_text(wanted[0])
        browser.close()


def test_a_filter_matching_nothing_leaves_no_panels_of_another_image(app_page) -> None:
    sync_api = playwright_api()
    page = app_page
    title = page.locator("#review-board #image-title strong")
    sync_api.expect(title).to_contain_text("val/", timeout=60_000)
    shown_panels = page.locator("#review-board figure:not([hidden])")
    sync_api.expect(shown_panels).to_have_count(8)
    page.get_by_text("Queue order, filters and display").click()
    page.get_by_role("combobox", name="Flag status").click()
    page.get_by_role("option", name="dismissed", exact=True).click()
    position = page.locator("#review-board .position")
    sync_api.expect(position).to_have_text("No image matches the filters.", timeout=30_000)
    sync_api.expect(shown_panels).to_have_count(0)
    sync_api.expect(page.locator("#review-board .title")).to_have_text("")
    page.get_by_role("combobox", name="Flag status").click()
    page.get_by_role("option", name="any", exact=True).click()
    sync_api.expect(shown_panels).to_have_count(8, timeout=30_000)
    sync_api.expect(position).to_contain_text("Image 1 of 4")


def test_a_worst_image_of_the_dataset_tab_opens_in_the_review_tab(app_page) -> None:
    sync_api = playwright_api()
    page = app_page
    _wait_for_scores(sync_api, page)
    page.get_by_role("tab", name="Dataset").click()
    page.get_by_role("button", name="Evaluate the split with both models").click()
    third = page.locator("#worst-images [data-testid='cell-2-0']")
    sync_api.expect(third).to_contain_text("val/", timeout=60_000)
    wanted = third.inner_text().strip()
    third.click()
    title = page.locator("#review-board #image-title strong")
    sync_api.expect(title).to_have_text(wanted, timeout=30_000)
    sync_api.expect(title).to_be_visible()
    assert page.locator("#review-board tr.current").get_attribute("data-id") == wanted
    sync_api.expect(page.locator("#review-details .gtitle").first).to_contain_text(
        wanted, timeout=30_000
    )


@pytest.mark.parametrize("path", ["/etc/passwd", str(ROOT / "pyproject.toml")])
def test_no_file_outside_the_configured_folders_is_served(running_app, path: str) -> None:
    url, *_ = running_app
    for route in ("gradio_api/file=", "file="):
        try:
            with urllib.request.urlopen(f"{url}{route}{path}", timeout=10) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            assert error.code in (403, 404), error
            continue
        assert b"root:" not in body and b"[project]" not in body


def test_the_server_binds_to_loopback_by_default() -> None:
    from reviewer.launcher import build_parser

    assert build_parser().parse_args([]).host == "127.0.0.1"


def test_the_app_keeps_its_files_to_its_owner(running_app) -> None:
    _, db_url, data_dir, port = running_app
    temp = data_dir / "tmp" / f"port-{port}"
    assert temp.is_dir() and stat.S_IMODE(temp.stat().st_mode) == 0o700
    database = Path(db_url.removeprefix("sqlite:///"))
    assert stat.S_IMODE(database.stat().st_mode) & 0o077 == 0


def test_the_private_temp_folder_is_emptied_at_start(tmp_path: Path, monkeypatch) -> None:
    from reviewer.launcher import GRADIO_TEMP_ENV, private_temp_dir

    monkeypatch.setenv(GRADIO_TEMP_ENV, "restored after the test")
    stale = tmp_path / "tmp" / "port-7001" / "old-export.zip"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x")
    folder = private_temp_dir(tmp_path, 7001)
    assert folder == stale.parent and not stale.exists()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert os.environ[GRADIO_TEMP_ENV] == str(folder)
