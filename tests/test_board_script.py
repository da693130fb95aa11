"""The review board's script on its own, in a real headless Chromium: the board's HTML and
script run in a blank page with the values Gradio would give them (``props``, a
``server`` whose panel requests are recorded, ``trigger`` and ``watch``). This pins down
what a reviewer relies on that a full app cannot stage at will: which image a server
update keeps or opens, what comes from memory, and what a failure leaves on screen."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reviewer.board import (
    ASSETS,
    PANEL_JPEG_QUALITY,
    PANEL_LABELS,
    SLIDER,
    SLIDER_SIDES,
    BoardState,
    Display,
    QueueEntry,
)
from reviewer.pictures import jpeg_data_url
from tests.chromium import launch_chromium, playwright_api

pytestmark = pytest.mark.browser

HARNESS = """({html, css, script, layout, slider, pictures, fullPictures}) => {
    document.body.innerHTML = `<style>${css}</style><div id="root">${html}</div>`;
    const element = document.getElementById('root');
    let watcher = () => {};
    const props = { value: '', panel_layout: layout, slider };
    const record = window.record = {
        requests: [], full: [], events: [], failing: [], shrunk: false, props };
    window.serverUpdate = (value) => { props.value = value; watcher(); };
    const held = {};
    window.hold = (id) => { held[id] = new Promise(done => { window.release = done; }); };
    const server = {
        fetch_panels: async (id, display, full) => {
            record.requests.push(id);
            if (full) record.full.push(id);
            await new Promise(done => setTimeout(done, 20));
            await held[id];
            if (record.failing.includes(id)) return { error: `cannot read ${id}` };
            const panels = full ? fullPictures : pictures;
            return { id, tags: ['day'], panels, full_resolution: full || !record.shrunk };
        },
    };
    const trigger = (name) => record.events.push(name);
    const watch = (name, callback) => { watcher = callback; };
    new Function('element', 'props', 'server', 'trigger', 'watch', script)(
        element, props, server, trigger, watch);
}"""
"""Runs the board as Gradio does, with a server that answers after 20 ms, or, for the id
the test holds, once the test releases it; with ``record.shrunk`` its pictures are shrunk
(16 px wide, 32 px at full resolution)."""


@pytest.fixture(scope="module")
def browser():
    sync_api = playwright_api()
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    picture = jpeg_data_url(np.full((8, 16, 3), 90, dtype=np.uint8), PANEL_JPEG_QUALITY)
    full_picture = jpeg_data_url(np.full((16, 32, 3), 90, dtype=np.uint8), PANEL_JPEG_QUALITY)
    page.evaluate(
        HARNESS,
        {
            "html": (ASSETS / "board.html").read_text(encoding="utf-8"),
            "css": (ASSETS / "board.css").read_text(encoding="utf-8"),
            "script": (ASSETS / "board.js").read_text(encoding="utf-8"),
            "layout": [list(panel) for panel in PANEL_LABELS],
            "slider": {"key": SLIDER, "left": SLIDER_SIDES[0], "right": SLIDER_SIDES[1]},
            "pictures": {key: picture for key, _ in PANEL_LABELS if key != SLIDER},
            "fullPictures": {key: full_picture for key, _ in PANEL_LABELS if key != SLIDER},
        },
    )
    yield page
    page.close()
    assert errors == []


def _state(ids: list[str], **changes) -> str:
    queue = tuple(QueueEntry(sample_id, "g", 0.5, 0, "unflagged") for sample_id in ids)
    return BoardState(queue=queue, display=Display("ce", "ial"), **changes).to_json()


def _settled(page) -> None:
    """Wait until the board has drawn the image of its latest move (or shown its failure),
    announced it and asked for its neighbours: it says so by clearing aria-busy."""
    page.wait_for_selector(".view-pane[aria-busy='false']", state="attached")


def _update(page, value: str) -> None:
    page.evaluate("(value) => window.serverUpdate(value)", value)
    _settled(page)


def _press(page, key: str) -> None:
    page.keyboard.press(key)
    _settled(page)


def _title(page) -> str:
    return page.inner_text("#image-title")


def _record(page) -> dict:
    return page.evaluate("() => ({...window.record, props: undefined})")


def _shown_position(page) -> int:
    return page.evaluate("() => JSON.parse(window.record.props.value).position")


def test_steps_come_from_memory_after_the_neighbours_are_fetched(page) -> None:
    _update(page, _state(["a", "b", "c", "d"]))
    assert _title(page).startswith("a")
    assert _record(page)["requests"] == ["a", "b", "d"]
    assert _record(page)["events"] == ["navigate"]
    _press(page, "n")
    assert _title(page).startswith("b") and _shown_position(page) == 1
    assert _record(page)["requests"] == ["a", "b", "d", "c"]
    _press(page, "p")
    assert _title(page).startswith("a · day")
    assert _record(page)["requests"] == ["a", "b", "d", "c"]
    assert _record(page)["events"] == ["navigate"] * 3
    panels = page.locator("figure:not([hidden]) img")
    assert panels.count() == 9
    assert all(panels.nth(n).evaluate("i => i.naturalWidth === 16") for n in range(9))


def test_a_server_update_keeps_the_image_on_screen_unless_it_opens_another(page) -> None:
    _update(page, _state(["a", "b", "c"]))
    page.click("tr[data-index='2']")
    _settled(page)
    assert _title(page).startswith("c")
    _update(page, _state(["c", "b", "a"], revision=1))
    assert _title(page).startswith("c") and _shown_position(page) == 0
    _update(page, _state(["a", "b", "c"], revision=2, to_top=True))
    assert _title(page).startswith("c"), "someone who moved stays where they are"
    _update(page, _state(["a", "b", "c"], revision=3, goto="b"))
    assert _title(page).startswith("b") and _shown_position(page) == 1
    assert page.inner_text(".position").startswith("Image 2 of 3")


def test_newly_ranked_scores_take_a_page_nobody_moved_in_to_the_top(page) -> None:
    _update(page, _state(["a", "b", "c"]))
    assert _title(page).startswith("a")
    _update(page, _state(["c", "a", "b"], revision=1))
    assert _title(page).startswith("a")
    _update(page, _state(["c", "a", "b"], revision=2, to_top=True))
    assert _title(page).startswith("c") and _shown_position(page) == 0


def test_a_failed_image_or_an_empty_queue_leaves_no_other_image_on_screen(page) -> None:
    page.evaluate("() => { window.record.failing = ['b']; }")
    _update(page, _state(["a", "b"]))
    _press(page, "n")
    assert _title(page) == "b"
    assert page.inner_text(".board-error") == "Could not show b: cannot read b"
    assert page.locator("figure:not([hidden])").count() == 0
    _press(page, "n")
    assert _title(page).startswith("a") and page.inner_text(".board-error") == ""
    assert page.locator("figure:not([hidden])").count() == len(PANEL_LABELS)
    _update(page, _state([], revision=1))
    assert page.inner_text(".position") == "No image matches the filters."
    assert _title(page) == "" and page.locator("figure:not([hidden])").count() == 0


def test_ids_are_shown_as_text_never_as_markup(page) -> None:
    hostile = "val/<img src=x onerror=alert(1)>"
    _update(page, _state([hostile]))
    assert page.locator("tr[data-index='0'] td").first.inner_text() == hostile[4:]
    assert page.locator("#root img[src='x']").count() == 0
    assert _title(page).startswith(hostile)


def test_the_view_is_busy_until_the_image_asked_for_is_drawn(page) -> None:
    page.evaluate("() => window.hold('a')")
    page.evaluate("(value) => window.serverUpdate(value)", _state(["a", "b"]))
    assert page.get_attribute(".view-pane", "aria-busy") == "true"
    assert _title(page) == "" and _record(page)["events"] == []
    page.evaluate("() => window.release()")
    _settled(page)
    assert _title(page).startswith("a") and _record(page)["events"] == ["navigate"]


def _transforms(page) -> list[str]:
    return page.eval_on_selector_all(".zoom-content", "cs => cs.map(c => c.style.transform)")


def _wait_for_view(page, scale: float, x: float, y: float) -> None:
    """Until every panel shows the view (scale, and the panel's top-left corner at x, y in
    percent of a panel), to 0.01%."""
    page.wait_for_function(
        """([scale, x, y]) => [...document.querySelectorAll('.zoom-content')].every((c) => {
            const m = c.style.transform.match(/translate\\((.+)%, (.+)%\\) scale\\((.+)\\)/);
            return m && Math.abs(m[1] - x) < 0.01 && Math.abs(m[2] - y) < 0.01
                && Math.abs(m[3] - scale) < 1e-3;
        })""",
        arg=[scale, x, y],
    )


def test_zoom_and_pan_move_every_panel_together_and_stay_while_stepping(page) -> None:
    _update(page, _state(["a", "b"]))
    assert set(_transforms(page)) == {"translate(0%, 0%) scale(1)"}
    frame = page.locator("figure[data-panel='image'] .zoom-frame").bounding_box()
    centre_x, centre_y = round(frame["x"] + frame["width"] / 2), round(frame["y"] + 100)
    at_x = (centre_x - frame["x"]) / frame["width"]
    at_y = (centre_y - frame["y"]) / frame["height"]
    page.mouse.move(centre_x, centre_y)
    page.mouse.wheel(0, -500)
    scale = math.exp(1.0)
    corner_x, corner_y = (at_x - scale * at_x) * 100, (at_y - scale * at_y) * 100
    _wait_for_view(page, scale, corner_x, corner_y)
    assert len(_transforms(page)) == len(PANEL_LABELS), "the A/B slider zooms too"

    page.mouse.down()
    page.mouse.move(centre_x + 50, centre_y, steps=4)
    page.mouse.up()
    panned_x = corner_x + 50 / frame["width"] * 100
    _wait_for_view(page, scale, panned_x, corner_y)
    _press(page, "n")
    assert _title(page).startswith("b")
    _wait_for_view(page, scale, panned_x, corner_y)
    page.click("#zoom-in")
    _wait_for_view(page, scale * 1.5, 50 - 1.5 * (50 - panned_x), 50 - 1.5 * (50 - corner_y))
    page.mouse.dblclick(centre_x, centre_y)
    _wait_for_view(page, 1.0, 0.0, 0.0)
    page.mouse.wheel(0, 500)
    _wait_for_view(page, 1.0, 0.0, 0.0)
    assert page.inner_text(".zoom-level") == "zoom 1.0×"


def test_a_zoom_beyond_the_pictures_fetches_the_image_at_full_resolution(page) -> None:
    page.evaluate("() => { window.record.shrunk = true; }")
    _update(page, _state(["a", "b"]))
    input_panel = page.locator("figure[data-panel='image'] img")
    page.wait_for_function(
        "() => document.querySelector(\"figure[data-panel='image'] img\").naturalWidth === 32"
    )
    assert _record(page)["full"] == ["a"]
    assert input_panel.evaluate("i => i.draggable") is False
    _press(page, "n")
    _press(page, "p")
    page.wait_for_function(
        "() => document.querySelector(\"figure[data-panel='image'] img\").naturalWidth === 32"
    )
    assert _record(page)["full"] == ["a", "b"], "an image fetched at full resolution is kept"


def test_captions_name_the_models_of_the_pair_shown(page) -> None:
    _update(page, _state(["a"]))
    captions = page.locator("figure:not([hidden]) figcaption").all_inner_texts()
    assert captions[:4] == ["Input", "Ground truth", "A: ce", "B: ial"]
    assert (
        page.locator("figure[data-panel='error_b'] img").get_attribute("alt") == "Errors of B: ial"
    )
