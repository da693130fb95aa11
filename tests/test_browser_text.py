"""Text is text in a real headless Chromium: a reviewer name, a note and a checkpoint's card
written as Markdown and HTML images pointing at a listener on this machine make the page
fetch nothing from it; a non-image upload gets a message naming it, a photo its predictions
and a flag."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.chromium import free_port, launch_chromium, playwright_api, served_app

pytestmark = pytest.mark.browser


class _Listener(ThreadingHTTPServer):
    """An HTTP server that answers every request with an empty 200 and records its path."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                listener.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def wait_for(self, path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while path not in self.paths:
            assert time.monotonic() < deadline, f"{path} never reached the listener"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def listener() -> Iterator[_Listener]:
    server = _Listener()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join()


def _hostile(listener: _Listener, what: str) -> str:
    """Markdown and HTML images at the listener, named by where the text was written."""
    base = f"http://127.0.0.1:{listener.server_address[1]}"
    return f"![x]({base}/{what}-md.png) <img src={base}/{what}-html.png> [link]({base}/{what})"


@pytest.fixture(scope="module")
def hostile_app(tiny_synthetic: Path, tiny_models: Path, listener: _Listener, tmp_path_factory):
    """The app over the tiny split with the tiny pair, whose cards name their training data
    with hostile text."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    models = tmp_path / "models"
    models.mkdir()
    for path in tiny_models.glob("*.pt"):
        saved = torch.load(path, weights_only=True)
        saved["metadata"]["training_data"] = {"name": _hostile(listener, "card")}
        torch.save(saved, models / path.name)
    arguments = ["--data", str(tiny_synthetic), "--split", "val", "--models", str(models)]
    arguments += ["--only-my-models", "--db", f"sqlite:///{tmp_path / 'review.db'}"]
    with served_app(arguments, tmp_path / "data", free_port()) as url:
        yield url, tmp_path


@pytest.fixture()
def page(hostile_app):
    sync_api = playwright_api()
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1500, "height": 1800})
        page.goto(hostile_app[0])
        yield page
        browser.close()


def test_hostile_text_makes_the_page_fetch_nothing(page, listener: _Listener) -> None:
    sync_api = playwright_api()
    port = listener.server_address[1]
    asked: list[str] = []
    at_listener = f"http://127.0.0.1:{port}/"
    page.on("request", lambda r: asked.append(r.url) if r.url.startswith(at_listener) else None)
    page.locator("#cards-button").click()
    card = page.locator("#model-a-card")
    sync_api.expect(card).to_contain_text(_hostile(listener, "card"), timeout=60_000)
    sync_api.expect(page.locator("#review-board #image-title strong")).to_contain_text(
        "val/", timeout=60_000
    )
    name, note = _hostile(listener, "name"), _hostile(listener, "note")
    page.locator("#reviewer-name textarea, #reviewer-name input").first.fill(name)
    page.locator("#flag-note textarea").fill(note)
    page.locator("#save-flag").click()
    status = page.locator("#flag-status")
    sync_api.expect(status).to_contain_text("Saved flag", timeout=30_000)
    sync_api.expect(status).to_contain_text(name)
    page.get_by_role("tab", name="Flags").click()
    sync_api.expect(page.locator("#all-flags")).to_contain_text(note, timeout=30_000)

    # A control: an image really put in the page reaches the listener (and, asked after
    # everything above was on screen, tells that nothing before it did).
    page.evaluate(
        "src => { const i = document.createElement('img'); i.src = src; document.body.append(i); }",
        f"{at_listener}control.png",
    )
    listener.wait_for("/control.png")
    assert listener.paths == ["/control.png"]
    assert asked == [f"{at_listener}control.png"]


def test_uploads_are_read_by_the_app(page, hostile_app) -> None:
    sync_api = playwright_api()
    folder = hostile_app[1]
    (folder / "notes.png").write_text("meeting notes", encoding="utf-8")
    photo = np.random.default_rng(4).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    cv2.imwrite(str(folder / "photo.png"), photo)
    page.get_by_role("tab", name="Your image").click()
    upload = page.locator("#upload-image input[type=file]")
    upload.set_input_files(str(folder / "notes.png"))
    page.get_by_role("button", name="Predict with both models").click()
    sync_api.expect(page.locator(".toast-body").first).to_contain_text(
        "notes.png: not an image this app can read", timeout=30_000
    )
    page.goto(hostile_app[0])
    page.get_by_role("tab", name="Your image").click()
    page.locator("#upload-image input[type=file]").set_input_files(str(folder / "photo.png"))
    page.get_by_role("button", name="Predict with both models").click()
    sync_api.expect(page.get_by_text("The models disagree on")).to_be_visible(timeout=60_000)
    page.locator("#reviewer-name textarea, #reviewer-name input").first.fill("uploader")
    page.locator("#flag-upload").click()
    sync_api.expect(page.locator("#upload-status")).to_contain_text("Saved flag", timeout=30_000)
