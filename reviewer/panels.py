"""What the review panels show for one :class:`ImageView`: pure functions, no Gradio.

The GUI and the HTML report both call these, so an image looks the same in both.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

import numpy as np

from models.instances import InstanceScore
from models.labels import CLASS_NAMES, CLASSES, NUM_EVALUATED, ImportanceGroups
from models.maps import CODE_MAPS, DISAGREEMENT_MAP, ERROR_MAP, SUSPECT_MAP, TAXONOMY_MAP
from models.metrics import disagreement_map, group_confusion
from models.ranking import PAIR_ORDERS, rank
from models.scores import BY_KEY, IMAGE_SCORES
from models.scoring import SplitScores
from models.suspects import SuspectRegion
from reviewer.overlays import class_overlay, code_legend, code_overlay, draw_box, legend_html
from reviewer.plots import class_confusion_figure, class_iou_bars, group_confusion_figure
from reviewer.views import ImageView

if TYPE_CHECKING:
    import plotly.graph_objects as go


@dataclass(frozen=True)
class DisplayOptions:
    """How a person wants the panels drawn."""

    opacity: float = 0.6
    visible_classes: frozenset[int] | None = None
    """Classes drawn in the overlays; None draws all."""
    agreement_on_all_pixels: bool = False
    """Judge agreement on every labelled pixel instead of the critical ones only."""
    errors_by_kind: bool = False
    """Colour the error panels by kind of error (boundary, extent, segment) instead of by
    importance (miss, false alarm)."""


DEFAULT_DISPLAY = DisplayOptions()
"""What the panels look like before a person changes anything: the review board's and the
upload tab's controls start from it, and the HTML report draws with it."""


@dataclass(frozen=True)
class Panels:
    image: np.ndarray
    ground_truth: np.ndarray | None
    prediction_a: np.ndarray
    prediction_b: np.ndarray
    error_a: np.ndarray | None
    error_b: np.ndarray | None
    disagreement: np.ndarray


def visible_classes(
    groups: ImportanceGroups, shown_groups: Collection[str], hidden_classes: Collection[str]
) -> frozenset[int] | None:
    """Classes to draw from the group and class toggles; None when everything is shown."""
    shown = {
        train_id
        for name, members in zip(groups.names, groups.members, strict=True)
        if name in shown_groups
        for train_id in members
        if CLASS_NAMES[train_id] not in hidden_classes
    }
    return None if len(shown) == len(CLASS_NAMES) else frozenset(shown)


def _disagreement_codes(view: ImageView, options: DisplayOptions) -> np.ndarray:
    """The disagreement map to draw. Without ground truth it marks where A and B predict
    different classes (in the "both wrong" colour), so an uploaded image still shows
    their conflict."""
    if view.ground_truth is not None and options.agreement_on_all_pixels:
        return disagreement_map(
            view.ground_truth, view.prediction_a, view.prediction_b, critical_only=False
        )
    if view.disagreement is not None:
        return view.disagreement
    differ, unjudged = (DISAGREEMENT_MAP.value(key) for key in ("both_wrong", "ignored"))
    return np.where(view.models_differ, np.uint8(differ), np.uint8(unjudged))


def _error_panels(
    view: ImageView, options: DisplayOptions
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A's and B's error maps drawn in the mode chosen: by importance or by kind."""
    code_map, maps = (
        (TAXONOMY_MAP, (view.kinds_a, view.kinds_b))
        if options.errors_by_kind
        else (ERROR_MAP, (view.error_a, view.error_b))
    )
    drawn = (None if codes is None else code_overlay(view.image, codes, code_map) for codes in maps)
    return tuple(drawn)


def render_panels(view: ImageView, options: DisplayOptions) -> Panels:
    """Colour overlays of truth and predictions, error maps and the disagreement map."""
    overlay = {"opacity": options.opacity, "visible_classes": options.visible_classes}
    disagreement = code_overlay(view.image, _disagreement_codes(view, options), DISAGREEMENT_MAP)
    error_a, error_b = _error_panels(view, options)
    return Panels(
        image=view.image,
        ground_truth=None
        if view.ground_truth is None
        else class_overlay(view.image, view.ground_truth, **overlay),
        prediction_a=class_overlay(view.image, view.prediction_a, **overlay),
        prediction_b=class_overlay(view.image, view.prediction_b, **overlay),
        error_a=error_a,
        error_b=error_b,
        disagreement=disagreement,
    )


def class_legend(view: ImageView) -> str:
    """Legend of the classes present in the truth or either prediction."""
    maps = [view.prediction_a, view.prediction_b]
    if view.ground_truth is not None:
        maps.append(view.ground_truth)
    present = np.zeros(len(CLASSES), dtype=bool)
    for labels in maps:
        present |= np.bincount(labels.ravel(), minlength=len(CLASSES)).astype(bool)
    return legend_html((c.name, c.color) for c in CLASSES if present[c.train_id])


def code_legends() -> str:
    """Legends of the error and disagreement panels, from their code tables."""
    return "".join(code_legend(code_map) for code_map in CODE_MAPS.values())


def scores_table(view: ImageView) -> list[list[str]]:
    """Rows (score, A, B): the table's per-image scores, then the critical-pixel counts."""
    if view.result is None:
        return []
    a, b = view.result.scores["A"], view.result.scores["B"]
    table = [[s.label_of_image, s.text(a[s.key]), s.text(b[s.key])] for s in IMAGE_SCORES]
    if view.result.disagreement:
        counts = view.result.disagreement
        table.append(
            [
                "critical pixels: only A right / only B right",
                str(counts["only_a"]),
                str(counts["only_b"]),
            ]
        )
        table.append(
            [
                "critical pixels: both right / both wrong",
                str(counts["both_right"]),
                str(counts["both_wrong"]),
            ]
        )
    return table


def _objects(view: ImageView) -> list[InstanceScore]:
    """The image's ground-truth objects, largest first: the order of the objects table."""
    instances = () if view.result is None else view.result.instances
    return sorted(instances, key=lambda i: -i.pixels)


def instance_boxes(view: ImageView) -> list[tuple[int, int, int, int]]:
    """The boxes (x0, y0, x1, y1) of :func:`instance_rows`, row by row: a selected row's
    box is looked up here, never read back out of its formatted cell."""
    return [instance.box for instance in _objects(view)]


def instance_rows(view: ImageView) -> list[list]:
    """One row per ground-truth object: class, size, box, recall of A and B, missed marks."""
    rows = []
    for instance in _objects(view):
        recall_a, recall_b = instance.recall["A"], instance.recall["B"]
        rows.append(
            [
                instance.instance_id,
                instance.class_name,
                instance.pixels,
                "x{} y{} – x{} y{}".format(*instance.box),
                f"{recall_a:.0%}" + (" MISSED" if instance.missed["A"] else ""),
                f"{recall_b:.0%}" + (" MISSED" if instance.missed["B"] else ""),
            ]
        )
    return rows


NOT_ANNOTATED = "not annotated"

INSTANCE_HEADERS = ["instance", "class", "pixels", "box", "recall A", "recall B"]
SUSPECT_HEADERS = ["rank", "both models see", "labelled", "pixels", "confidence", "box"]


def _suspects(view: ImageView) -> tuple[SuspectRegion, ...]:
    return () if view.result is None else view.result.suspects or ()


def suspect_picture(view: ImageView) -> np.ndarray | None:
    """The image with its suspect ground-truth regions marked and boxed (None without
    ground truth)."""
    if view.suspect_map is None:
        return None
    marked = view.suspect_map > 0
    codes = np.where(marked, SUSPECT_MAP.value("suspect"), SUSPECT_MAP.value("unsuspected"))
    picture = code_overlay(view.image, codes.astype(np.uint8), SUSPECT_MAP)
    for region in _suspects(view):
        picture = draw_box(picture, region.box)
    return picture


def suspect_rows(view: ImageView) -> list[list]:
    """One row per suspect region, largest first (:data:`SUSPECT_HEADERS`)."""
    return [
        [
            rank,
            CLASS_NAMES[region.predicted],
            CLASS_NAMES[region.annotated],
            region.pixels,
            f"{region.confidence:.0%}",
            "x{} y{} – x{} y{}".format(*region.box),
        ]
        for rank, region in enumerate(_suspects(view), start=1)
    ]


def suspect_boxes(view: ImageView) -> list[tuple[int, int, int, int]]:
    """The boxes of :func:`suspect_rows`, row by row (a selected row's flag region)."""
    return [region.box for region in _suspects(view)]


SCORE_HEADERS = ["score", "A", "B"]

_WORST_SCORES = (BY_KEY["safety_error"], BY_KEY["miou"])
WORST_HEADERS = [
    "image",
    *(f"{score.label_of_image} {side}" for score in _WORST_SCORES for side in "AB"),
    "missed A",
    "missed B",
]


def worst_rows(result: SplitScores, n: int) -> list[list]:
    """The ``n`` images of a pair's split evaluation that the review queue's default order
    puts first, with their safety errors, mIoUs and missed objects (:data:`WORST_HEADERS`);
    a split without a single annotated object (CamVid labels classes only) says so rather
    than counting 0 missed."""
    ranked = rank(result.images, PAIR_ORDERS[0])[:n]
    objects = any(image.instances for image in result.images)
    return [
        [
            image.sample_id,
            *(s.text(image.value(side, s.key)) for s in _WORST_SCORES for side in "AB"),
            *(
                sum(1 for i in image.instances if i.missed[side]) if objects else NOT_ANNOTATED
                for side in "AB"
            ),
        ]
        for image, _ in ranked
    ]


def iou_figure(view: ImageView, groups: ImportanceGroups, annotated: Collection[int]) -> go.Figure:
    if view.result is None:
        return class_iou_bars({}, groups, title="Per-class IoU (no ground truth)")
    return class_iou_bars(
        {side: scores.iou for side, scores in view.result.scores.items()},
        groups,
        title=f"Per-class IoU on {escape(view.sample_id)}",
        annotated=[i in annotated for i in range(NUM_EVALUATED)],
    )


def confusion_figures(
    view: ImageView, groups: ImportanceGroups, full: bool
) -> tuple[go.Figure | None, go.Figure | None]:
    """Importance-group (or full 20x20) confusion of A and of B on this image."""
    if view.result is None:
        return None, None
    image = escape(view.sample_id)
    confusion_a, confusion_b = (view.result.scores[side].confusion for side in ("A", "B"))
    if full:
        return (
            class_confusion_figure(confusion_a, groups, f"A: class confusion · {image}"),
            class_confusion_figure(confusion_b, groups, f"B: class confusion · {image}"),
        )
    matrix_a = group_confusion(confusion_a, groups)
    matrix_b = group_confusion(confusion_b, groups)
    return (
        group_confusion_figure(matrix_a, groups, f"A: groups · {image}"),
        group_confusion_figure(matrix_b, groups, f"B: groups · {image}"),
    )
