"""Image composition for the review panels: pure functions from arrays to RGB images.

Colours of classes come from :data:`models.labels.PALETTE`, those of the codes of error
and disagreement maps from their tables in :mod:`models.maps`.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

import cv2
import numpy as np

from models.labels import PALETTE
from models.maps import RGB, CodeMap

CODE_OPACITY = 0.7
"""Opacity of a code map's colours over the dimmed image: high, so that the few marked
pixels stand out, and fixed, since the image under them is only there to place them."""

LEGEND_CSS = """
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 0.85em; margin: 4px 0; }
.legend-chip { display: inline-flex; align-items: center; gap: 4px; }
.legend-chip > span { width: 14px; height: 14px; border: 1px solid #555; display: inline-block; }
"""
"""The style of :func:`legend_html`'s markup, for every page that shows a legend."""


def blend(image: np.ndarray, colors: np.ndarray, opacity: float, mask: np.ndarray) -> np.ndarray:
    """``image`` with ``colors`` laid over it at ``opacity`` where ``mask`` is true."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in 0..1, got {opacity}")
    mixed = cv2.addWeighted(image, 1.0 - opacity, colors, opacity, 0.0)
    return np.where(mask[..., None], mixed, image)


def class_overlay(
    image: np.ndarray,
    train_ids: np.ndarray,
    opacity: float,
    visible_classes: Iterable[int] | None = None,
) -> np.ndarray:
    """A label map in the class palette over the image; hidden classes show the image."""
    mask = _visible(train_ids, visible_classes)
    return blend(image, PALETTE[train_ids], opacity, mask)


def code_overlay(image: np.ndarray, codes: np.ndarray, code_map: CodeMap) -> np.ndarray:
    """A map of ``code_map``'s codes over a dimmed image; unmarked codes show the image."""
    dimmed = (image.astype(np.uint16) * 2 // 5).astype(np.uint8)
    return blend(dimmed, code_map.palette[codes], CODE_OPACITY, code_map.is_marked[codes])


def _visible(train_ids: np.ndarray, visible_classes: Iterable[int] | None) -> np.ndarray:
    if visible_classes is None:
        return np.ones(train_ids.shape, dtype=bool)
    lookup = np.zeros(256, dtype=bool)
    lookup[list(visible_classes)] = True
    return lookup[train_ids]


def draw_box(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    color: tuple[int, int, int] = (255, 255, 0),
) -> np.ndarray:
    """A copy of ``image`` with a rectangle (x0, y0, x1, y1) drawn on it."""
    out = image.copy()
    x0, y0, x1, y1 = box
    cv2.rectangle(out, (int(x0), int(y0)), (int(x1), int(y1)), color, 2)
    return out


def legend_html(entries: Iterable[tuple[str, RGB]]) -> str:
    """A compact colour legend; names are escaped because group files are user-written."""
    chips = "".join(
        f'<span class="legend-chip"><span style="background:rgb{tuple(color)};"></span>'
        f"{escape(name)}</span>"
        for name, color in entries
    )
    return f'<div class="legend">{chips}</div>'


def code_legend(code_map: CodeMap) -> str:
    """A map's legend: its colours, and under its title the codes left unmarked."""
    unmarked = "; ".join(code.legend for code in code_map.unmarked)
    note = f" (unmarked: {escape(unmarked)})" if unmarked else ""
    chips = legend_html((code.legend, code.color) for code in code_map.marked)
    return f"<div><b>{escape(code_map.title)}</b>{note}{chips}</div>"
