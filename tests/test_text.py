"""User- and file-written text inside Markdown reads as itself and builds nothing."""

from __future__ import annotations

import html
import re

import pytest
from markdown_it import MarkdownIt

from reviewer.text import markdown_text

RENDERER = MarkdownIt("commonmark").enable("table").enable("strikethrough")


def shown(markdown: str) -> str:
    """What a person reads once Markdown is rendered: the HTML's text."""
    return html.unescape(re.sub(r"<[^>]+>", "", RENDERER.render(markdown))).strip()


HOSTILE = [
    "![x](http://127.0.0.1:9/p.png)",
    "[click](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "`code` and **bold** _it_ ~~gone~~",
    "# heading\n- item\n| a | b |\n|---|---|",
    "val/a`b`c.png",
    "ce</code>",
    "https://example.com/auto",
    "50% & <3 \\ back\\slash",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_renders_as_itself_with_no_markup(text: str) -> None:
    rendered = RENDERER.render(markdown_text(text))
    assert re.findall(r"<(\w+)", rendered) == ["p"], rendered
    assert shown(markdown_text(text)) == " ".join(text.splitlines())


def test_plain_names_are_unchanged_to_the_reader() -> None:
    label = "camvid-ce (CE, CamVid train, 367 real images (CC BY-NC 4.0))"
    assert shown(f"trained on: {markdown_text(label)}") == f"trained on: {label}"


def test_quotes_stay_quotes() -> None:
    text = "cityscapes split 'val' \"a\""
    assert "&#" not in markdown_text(text) and "&quot;" not in markdown_text(text)
    assert shown(markdown_text(text)) == text
