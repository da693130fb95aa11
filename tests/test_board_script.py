"""The review board's script on its own, in a real headless Chromium: the board's HTML and
script run in a blank page with the values Gradio would give them (``props``, a
``server`` whose panel requests are recorded, ``trigger`` and ``watch``). This pins down
what a reviewer relies on that a full app cannot stage at will: which image a server
update keeps or opens, what comes from memory, and what a failure leaves on screen."""

from __future__ import annotations

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

HARNESS = """({html, script, layout, slider, pictures}) => {
    document.body.innerHTML = `<div id="root">${html}</div>`;
    const element = document.getElementById('root');
    let watcher = () => {};
    const props = { value: '', panel_layout: layout, slider };
    const record = window.record = { requests: [], events: [], failing: [], props };
    window.serverUpdate = (value) => { props.value = value; watcher(); };
    const held = {};
    window.hold = (id) => { held[id] = new Promise(done => { window.release = done; }); };
    const server = {
        fetch_panels: async (id, display) => {
            record.requests.push(id);
            await new Promise(done => setTimeout(done, 20));
            await held[id];
            if (record.failing.includes(id)) return { error: `cannot read ${id}` };
            return { id, tags: ['day'], panels: pictures };
        },
    };
    const trigger = (name) => record.events.push(name);
    const watch = (name, callback) => { watcher = callback; };
    new Function('element', 'props', 'server', 'trigger', 'watch', script)(
        element, props, server, trigger, watch);
}"""
"""Runs the board as Gradio does, with a server that answers after 20 ms, or, for the id
the test holds, once the test releases it."""


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
    page.evaluate(
        HARNESS,
        {
            "html": (ASSETS / "board.html").read_text(encoding="utf-8"),
            "script": (ASSETS / "board.js").read_text(encoding="utf-8"),
            "layout": [list(panel) for panel in PANEL_LABELS],
            "slider": {"key": SLIDER, "left": SLIDER_SIDES[0], "right": SLIDER_SIDES[1]},
            "pictures": {key: picture for key, _ in PANEL_LABELS if key != SLIDER},
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
