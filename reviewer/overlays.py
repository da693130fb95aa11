"""Image composition for the review panels: pure functions from arrays to RGB images.

Colours of classes come from :data:`models.labels.PALETTE`; the colours of error and
disagreement codes are defined here once and used by the GUI legend and the reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

import cv2
import numpy as np

from models.labels import PALETTE

IGNORED = 255
"""Code of pixels that carry no judgement (ignored ground truth, non-critical pixels)."""

ERROR_CODES = {
    0: ("correct", (0, 0, 0)),
    1: ("missed important (predicted as less important)", (230, 30, 30)),
    2: ("false alarm (predicted as more important)", (255, 150, 0)),
    3: ("other error", (150, 150, 150)),
}
"""Error-map codes (see ``models.metrics.error_map``) -> legend text and RGB colour."""

DISAGREEMENT_CODES = {
    0: ("both right", (40, 170, 60)),
    1: ("only A right", (40, 110, 230)),
    2: ("only B right", (230, 200, 0)),
    3: ("both wrong", (220, 30, 30)),
}
"""Disagreement-map codes (see ``models.metrics.disagreement_map``) -> legend and colour."""


def _code_palette(codes: dict[int, tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    palette = np.zeros((256, 3), dtype=np.uint8)
    for code, (_, color) in codes.items():
        palette[code] = color
    return palette


ERROR_PALETTE = _code_palette(ERROR_CODES)
DISAGREEMENT_PALETTE = _code_palette(DISAGREEMENT_CODES)


def blend(image: np.ndarray, colors: np.ndarray, opacity: float, mask: np.ndarray) -> np.ndarray:
    """``image`` with ``colors`` laid over it at ``opacity`` where ``mask`` is true."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in 0..1, got {opacity}")
    mixed = cv2.addWeighted(image, 1.0 - opacity, colors, opacity, 0.0)
    return np.where(mask[..., None], mixed, image)


def class_overlay(
    image: np.ndarray,
    train_ids: np.ndarray,
    opacity: float = 0.6,
    visible_classes: Iterable[int] | None = None,
) -> np.ndarray:
    """A label map in the class palette over the image; hidden classes show the image."""
    mask = _visible(train_ids, visible_classes)
    return blend(image, PALETTE[train_ids], opacity, mask)


def code_overlay(
    image: np.ndarray,
    codes: np.ndarray,
    palette: np.ndarray,
    opacity: float = 0.7,
    hide_codes: Iterable[int] = (0, IGNORED),
) -> np.ndarray:
    """An error or disagreement map over a dimmed image; ``hide_codes`` show the image."""
    dimmed = (image.astype(np.uint16) * 2 // 5).astype(np.uint8)
    mask = ~np.isin(codes, list(hide_codes))
    return blend(dimmed, palette[codes], opacity, mask)


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


def legend_html(entries: Iterable[tuple[str, tuple[int, int, int]]]) -> str:
    """A compact colour legend; names are escaped because group files are user-written."""
    chips = "".join(
        f'<span class="legend-chip"><span style="background:rgb{tuple(color)};"></span>'
        f"{escape(name)}</span>"
        for name, color in entries
    )
    return f'<div class="legend">{chips}</div>'
