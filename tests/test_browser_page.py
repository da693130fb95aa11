"""The review page as a reviewer meets it, in a real headless Chromium at 1400x900 on the
demo set: one reviewer identity for every action, failures that leave the page as it was,
flags on uploaded images in the Flags tab (issue 17)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from db.store import ReviewStore
from tests.chromium import launch_chromium, playwright_api
from tests.test_browser import _wait_for_scores, running_app  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser

WINDOW = {"width": 1400, "height": 900}


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
