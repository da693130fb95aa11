"""The review board: the queue list and the image panels of the Review tab in one HTML
component. Its script asks the server for an image's panels directly and keeps the ones
it has seen, so stepping through the queue waits for no Gradio event.

Why one component with its own script: every Gradio event rewrites the loading status of
each component of the page several times, about 300 ms of browser work per step on a
2-core machine whatever the event sends. A server-function call is a plain request
(about 25 ms), and a revisited image comes from the browser's memory at once.

The board's value is a JSON text, written by the server (queue, display options) and by
the script (the position a person moved to); :class:`BoardState` reads and writes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr

from models.labels import ImportanceGroups
from reviewer.panels import DEFAULT_DISPLAY, DisplayOptions, Panels, visible_classes
from reviewer.pictures import jpeg_data_url

ASSETS = Path(__file__).with_name("assets")

SLIDER = "slider"
SLIDER_SIDES = ("prediction_a", "prediction_b")
"""The A/B slider's panel key and the two panels it lays over each other (left, right)."""

PANEL_LABELS: tuple[tuple[str, str], ...] = (
    ("image", "Input"),
    ("ground_truth", "Ground truth"),
    ("prediction_a", "A: {a}"),
    ("prediction_b", "B: {b}"),
    ("error_a", "Errors of A: {a}"),
    ("error_b", "Errors of B: {b}"),
    ("disagreement", "Where A and B differ"),
    (SLIDER, "A ◀ slide ▶ B"),
)
"""The board's panels in reading order, two to a row (the four a reviewer reads first
lead): :class:`Panels` field (or the A/B slider over both predictions) and caption, where
the script puts the model names of the pair shown for {a} and {b}."""


def panel_caption(key: str, model_a: str, model_b: str) -> str:
    """The caption of panel ``key`` naming the pair shown, as the board's script writes it;
    the Your-image tab's panels use it too."""
    caption = dict(PANEL_LABELS)[key]
    return caption.replace("{a}", model_a).replace("{b}", model_b)


PANEL_JPEG_QUALITY = 90
"""JPEG quality of the board's panels (:mod:`reviewer.pictures` says why JPEG)."""


@dataclass(frozen=True)
class Display:
    """What a person chose to see: the model pair and how the panels are drawn."""

    model_a: str
    model_b: str
    opacity: float = DEFAULT_DISPLAY.opacity
    shown_groups: tuple[str, ...] | None = None
    """Importance groups drawn in the overlays; None draws them all."""
    hidden_classes: tuple[str, ...] = ()
    agreement_on_all_pixels: bool = DEFAULT_DISPLAY.agreement_on_all_pixels
    errors_by_kind: bool = DEFAULT_DISPLAY.errors_by_kind

    def options(self, groups: ImportanceGroups) -> DisplayOptions:
        """How to draw the panels: the opacity kept to 0..1 (the value came from a page),
        the group and class toggles as the classes to draw."""
        shown = groups.names if self.shown_groups is None else self.shown_groups
        return DisplayOptions(
            opacity=min(max(self.opacity, 0.0), 1.0),
            visible_classes=visible_classes(groups, shown, self.hidden_classes),
            agreement_on_all_pixels=self.agreement_on_all_pixels,
            errors_by_kind=self.errors_by_kind,
        )


@dataclass(frozen=True)
class QueueEntry:
    """One row of the queue list."""

    id: str
    sequence: str
    """The image's city or sequence (shown in its row's tooltip)."""
    score: float | None
    flags: int
    status: str


@dataclass(frozen=True)
class BoardState:
    """The board's value: the queue, where the person is in it and what the panels show.

    The script owns ``position`` (the server's copy may be a step behind, so the script
    ignores it in server updates); the server moves the board only through ``goto``.
    """

    queue: tuple[QueueEntry, ...] = ()
    position: int = 0
    display: Display | None = None
    score_label: str = "score"
    goto: str | None = None
    """An image the server wants shown (opened from another tab); None keeps the current."""
    to_top: bool = False
    """The queue was just ranked (the split's scores came in): a person who has not moved
    yet is taken to its top, the worst image."""
    revision: int = 0
    """Bumped by every server update, so the script notices even an unchanged queue."""

    @property
    def current(self) -> str | None:
        """Id of the image shown, None when the queue is empty."""
        if not self.queue:
            return None
        return self.queue[min(max(self.position, 0), len(self.queue) - 1)].id

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> BoardState:
        """Read a value the script sent back; anything malformed is a clear ValueError."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            display = data.get("display")
            goto = data.get("goto")
            return cls(
                queue=tuple(QueueEntry(**entry) for entry in data.get("queue", [])),
                position=int(data.get("position", 0)),
                display=None if display is None else _display(display),
                score_label=str(data.get("score_label", "score")),
                goto=None if goto is None else str(goto),
                to_top=bool(data.get("to_top", False)),
                revision=int(data.get("revision", 0)),
            )
        except (TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"the review board sent a malformed state: {error}") from None

    def updated(self, **changes: Any) -> BoardState:
        """A server update with ``changes``; it keeps the script's image unless it says
        goto or to_top."""
        changes.setdefault("goto", None)
        changes.setdefault("to_top", False)
        return replace(self, revision=self.revision + 1, **changes)

    def opening(self, sample_id: str) -> BoardState:
        """A server update showing ``sample_id``, put first in the queue if not there."""
        if sample_id in (entry.id for entry in self.queue):
            return self.updated(goto=sample_id)
        entry = QueueEntry(sample_id, "", None, 0, "")
        return self.updated(queue=(entry, *self.queue), goto=sample_id)


def _display(data: dict) -> Display:
    """A display a page sent; what it leaves out is drawn as by default."""
    shown_groups = data.get("shown_groups")
    return Display(
        model_a=str(data["model_a"]),
        model_b=str(data["model_b"]),
        opacity=float(data.get("opacity", DEFAULT_DISPLAY.opacity)),
        shown_groups=None if shown_groups is None else tuple(str(n) for n in shown_groups),
        hidden_classes=tuple(str(name) for name in data.get("hidden_classes", ())),
        agreement_on_all_pixels=bool(
            data.get("agreement_on_all_pixels", DEFAULT_DISPLAY.agreement_on_all_pixels)
        ),
        errors_by_kind=bool(data.get("errors_by_kind", DEFAULT_DISPLAY.errors_by_kind)),
    )


def display_from_request(data: object) -> Display:
    """The display options a board script sent with a panel request."""
    if not isinstance(data, dict):
        raise ValueError("the review board sent no display options")
    try:
        return _display(data)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"the review board sent malformed display options: {error}") from None


PANEL_MAX_WIDTH = 1024
"""Panels wider than this are shrunk for the page: a board column is about 450 px wide, so
1024 px still gives a high-density screen all it can show, while a 2048 px Cityscapes
frame would cost four times the encoding, transfer and browser memory."""


def panel_payload(
    sample_id: str,
    title_tags: Sequence[str],
    drawn: Panels,
    max_width: int | None = PANEL_MAX_WIDTH,
) -> dict[str, Any]:
    """What the board script draws for one image: its id, tags and panel pictures
    (None for a panel the image has not, such as ground truth of an unlabelled image),
    at most ``max_width`` wide, and whether that is the image's full resolution (the
    script asks again with None for a zoom that needs more pixels)."""
    pictures = {}
    for key, _ in PANEL_LABELS:
        if key == SLIDER:
            continue
        picture = getattr(drawn, key)
        pictures[key] = (
            None if picture is None else jpeg_data_url(picture, PANEL_JPEG_QUALITY, max_width)
        )
    full = max_width is None or drawn.image.shape[1] <= max_width
    return {"id": sample_id, "tags": list(title_tags), "panels": pictures, "full_resolution": full}


def review_board(fetch_panels: Callable[[list], dict], elem_id: str) -> gr.HTML:
    """The board component; ``fetch_panels([sample_id, display, full_resolution])``
    answers its script."""
    return gr.HTML(
        value=BoardState().to_json(),
        html_template=(ASSETS / "board.html").read_text(encoding="utf-8"),
        css_template=(ASSETS / "board.css").read_text(encoding="utf-8"),
        js_on_load=(ASSETS / "board.js").read_text(encoding="utf-8"),
        server_functions=[fetch_panels],
        panel_layout=[list(panel) for panel in PANEL_LABELS],
        slider={"key": SLIDER, "left": SLIDER_SIDES[0], "right": SLIDER_SIDES[1]},
        elem_id=elem_id,
    )
