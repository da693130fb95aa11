"""The codes of the per-pixel maps drawn over an image (error maps, the disagreement of
two models), defined here once: one table, :data:`CODES`, holds every code of every map
with its key, pixel value, legend text and colour, as cityscapesscripts' ``labels`` table
carries the classes' colours.

The metric functions that write a map take its values from the table by key, and the
reviewer's palettes and legends are derived from it. A new kind of map is its title in
:data:`MAP_TITLES` and its rows in :data:`CODES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class MapCode:
    """One code of a map."""

    map: str
    """Name of the map (a key of :data:`MAP_TITLES`)."""
    key: str
    """Name the metric functions and the per-image counts use."""
    value: int
    """The pixel value in the uint8 map."""
    legend: str
    color: RGB | None = None
    """None leaves the pixel unmarked (the panel shows the dimmed image there), so that the
    pixels worth a look (errors, disagreement) stand out."""


@dataclass(frozen=True)
class CodeMap:
    """The codes of one kind of map, with the title its legend goes under."""

    title: str
    codes: tuple[MapCode, ...]

    def __post_init__(self) -> None:
        keys = [code.key for code in self.codes]
        values = [code.value for code in self.codes]
        if len(set(keys)) != len(keys) or len(set(values)) != len(values):
            raise ValueError(f"{self.title}: keys and values of codes must be unique")
        if any(not 0 <= value <= 255 for value in values):
            raise ValueError(f"{self.title}: code values must fit a uint8 map")

    def value(self, key: str) -> int:
        """The pixel value of the code named ``key``."""
        for code in self.codes:
            if code.key == key:
                return code.value
        raise KeyError(f"{self.title} has no code {key!r}")

    @property
    def marked(self) -> tuple[MapCode, ...]:
        """Codes drawn in their colour, in legend order."""
        return tuple(code for code in self.codes if code.color is not None)

    @property
    def unmarked(self) -> tuple[MapCode, ...]:
        """Codes left as the image, named in the legend's title."""
        return tuple(code for code in self.codes if code.color is None)

    @cached_property
    def palette(self) -> np.ndarray:
        """(256, 3) uint8 colour of each value (black where unmarked)."""
        palette = np.zeros((256, 3), dtype=np.uint8)
        for code in self.marked:
            palette[code.value] = code.color
        return palette

    @cached_property
    def is_marked(self) -> np.ndarray:
        """(256,) bool: which values are drawn in their colour."""
        marked = np.zeros(256, dtype=bool)
        marked[[code.value for code in self.marked]] = True
        return marked


NOT_JUDGED = 255
"""The value of pixels a map does not judge (ground-truth background, and pixels outside
the judged classes), the same in every map so that it reads as "nothing to see"."""

MAP_TITLES = {
    "error": "Error maps",
    "taxonomy": "Error maps by kind of error",
    "disagreement": "Disagreement of A and B",
    "suspect": "Suspect ground truth",
}
"""Every kind of map by name, with the title of its legend, in the order legends are shown.
``error``: one model's errors by importance (``models.metrics.error_map``);
``taxonomy``: one model's errors by kind, boundary, extent or segment
(``models.taxonomy.error_taxonomy``);
``disagreement``: which of two models is right (``models.metrics.disagreement_map``);
``suspect``: where both models confidently contradict the label (``models.suspects``)."""

WRONG: RGB = (255, 0, 255)
"""Magenta: an important pixel got wrong (a miss, both models wrong). Not red, which in the
class palette is person and rider, and no other code's hue."""

CODES = (
    MapCode("error", "correct", 0, "correct"),
    MapCode("error", "miss", 1, "missed important (predicted as less important)", WRONG),
    MapCode("error", "false_alarm", 2, "false alarm (predicted as more important)", (255, 150, 0)),
    MapCode("error", "other_error", 3, "other error", (150, 150, 150)),
    MapCode("error", "ignored", NOT_JUDGED, "not judged: ground-truth background"),
    MapCode("taxonomy", "correct", 0, "correct"),
    MapCode(
        "taxonomy", "boundary", 1, "boundary error (outline off by a few pixels)", (0, 200, 230)
    ),
    MapCode("taxonomy", "extent", 2, "extent error (region too big or too small)", (255, 190, 0)),
    MapCode(
        "taxonomy",
        "segment",
        3,
        "segment error (whole region missed or hallucinated)",
        (190, 0, 255),
    ),
    MapCode("taxonomy", "ignored", NOT_JUDGED, "not judged: ground-truth background"),
    MapCode("disagreement", "both_right", 0, "both right"),
    MapCode("disagreement", "only_a", 1, "only A right", (40, 110, 230)),
    MapCode("disagreement", "only_b", 2, "only B right", (230, 200, 0)),
    MapCode("disagreement", "both_wrong", 3, "both wrong", WRONG),
    MapCode(
        "disagreement",
        "ignored",
        NOT_JUDGED,
        "not judged: ground-truth background and, unless judged on all labelled pixels, "
        "non-critical classes",
    ),
    MapCode("suspect", "unsuspected", 0, "not suspect"),
    MapCode(
        "suspect",
        "suspect",
        1,
        "suspect label: both models confidently see another class",
        (255, 0, 170),
    ),
)
"""Every code of every map, one row each, in legend order within a map."""


def split_by_map(codes: tuple[MapCode, ...], titles: dict[str, str]) -> dict[str, CodeMap]:
    """The table as one :class:`CodeMap` per title; a row of a map with no title is an
    error rather than a code that silently never shows."""
    unknown = {code.map for code in codes} - titles.keys()
    if unknown:
        raise ValueError(f"codes of maps with no title: {sorted(unknown)}")
    return {
        name: CodeMap(title, tuple(code for code in codes if code.map == name))
        for name, title in titles.items()
    }


CODE_MAPS = split_by_map(CODES, MAP_TITLES)
ERROR_MAP = CODE_MAPS["error"]
TAXONOMY_MAP = CODE_MAPS["taxonomy"]
DISAGREEMENT_MAP = CODE_MAPS["disagreement"]
SUSPECT_MAP = CODE_MAPS["suspect"]
