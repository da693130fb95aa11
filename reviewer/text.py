"""Text that people or files wrote, made safe to show inside Markdown.

Gradio renders a Markdown component as Markdown and then as HTML, so escaping HTML alone
is not enough: a reviewer name ``![x](http://host/p.png)`` would still become an image that
every browser showing it fetches. :func:`markdown_text` neutralises both: HTML special
characters become entities and every Markdown punctuation character is backslash-escaped
(CommonMark shows an escaped punctuation character as itself), and line breaks become
spaces so that text cannot open a heading, list or table of its own. Quotes stay quotes:
they mean nothing in Markdown text, and Gradio shows an entity such as ``&#x27;`` as
written.
"""

from __future__ import annotations

from html import escape

MARKDOWN_PUNCTUATION = frozenset("\\`*_{}[]()#+-.!|~:")
"""Characters with a meaning in Markdown; ``<``, ``>`` and ``&`` are already HTML entities."""


def markdown_text(text: object) -> str:
    """``text`` as it should read, safe to put inside Markdown."""
    flat = " ".join(str(text).splitlines())
    return "".join(f"\\{c}" if c in MARKDOWN_PUNCTUATION else c for c in escape(flat, quote=False))
