"""What the review panels show for one :class:`ImageView`: pure functions, no Gradio.

The GUI and the HTML report both call these, so an image looks the same in both.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from html import escape

import numpy as np
import plotly.graph_objects as go

from models.labels import CLASS_NAMES, CLASSES, NUM_EVALUATED, ImportanceGroups
from models.maps import CODE_MAPS, DISAGREEMENT_MAP, ERROR_MAP
from models.metrics import disagreement_map, group_confusion
from reviewer.overlays import class_overlay, code_legend, code_overlay, legend_html
from reviewer.plots import class_confusion_figure, class_iou_bars, group_confusion_figure
from reviewer.workbench import ImageView


@dataclass(frozen=True)
class DisplayOptions:
    """How a person wants the panels drawn."""

    opacity: float = 0.6
    visible_classes: frozenset[int] | None = None
    """Classes drawn in the overlays; None draws all."""
    agreement_on_all_pixels: bool = False
    """Judge agreement on every labelled pixel instead of the critical ones only."""


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


def render_panels(view: ImageView, options: DisplayOptions) -> Panels:
    """Colour overlays of truth and predictions, error maps and the disagreement map."""
    overlay = {"opacity": options.opacity, "visible_classes": options.visible_classes}
    disagreement = code_overlay(view.image, _disagreement_codes(view, options), DISAGREEMENT_MAP)
    return Panels(
        image=view.image,
        ground_truth=None
        if view.ground_truth is None
        else class_overlay(view.image, view.ground_truth, **overlay),
        prediction_a=class_overlay(view.image, view.prediction_a, **overlay),
        prediction_b=class_overlay(view.image, view.prediction_b, **overlay),
        error_a=None if view.error_a is None else code_overlay(view.image, view.error_a, ERROR_MAP),
        error_b=None if view.error_b is None else code_overlay(view.image, view.error_b, ERROR_MAP),
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
    return "".join(code_legend(code_map) for code_map in CODE_MAPS)


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None or np.isnan(value):
        return "n/a"
    return f"{value:.1%}" if percent else f"{value:.3f}"


def scores_table(view: ImageView) -> list[list[str]]:
    """Rows (score, A, B) for the image's headline scores."""
    if view.scores_a is None or view.scores_b is None:
        return []
    rows = [
        ("mIoU", "miou", False),
        ("pixel accuracy", "pixel_accuracy", True),
        ("critical-miss rate", "critical_miss_rate", True),
        ("false-alarm rate", "false_alarm_rate", True),
        ("safety error", "safety_error", False),
        ("expected cost", "expected_cost", False),
    ]
    table = [
        [label, _fmt(view.scores_a[key], pct), _fmt(view.scores_b[key], pct)]
        for label, key, pct in rows
    ]
    if view.disagreement_counts:
        counts = view.disagreement_counts
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


def instance_rows(view: ImageView) -> list[list]:
    """One row per ground-truth object: class, size, box, recall of A and B, missed marks."""
    rows = []
    for instance in sorted(view.instances, key=lambda i: -i.pixels):
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


INSTANCE_HEADERS = ["instance", "class", "pixels", "box", "recall A", "recall B"]
SCORE_HEADERS = ["score", "A", "B"]


def iou_figure(view: ImageView, groups: ImportanceGroups, annotated: Collection[int]) -> go.Figure:
    if view.scores_a is None or view.scores_b is None:
        return class_iou_bars({}, groups, title="Per-class IoU (no ground truth)")
    return class_iou_bars(
        {"A": view.scores_a["iou"], "B": view.scores_b["iou"]},
        groups,
        title=f"Per-class IoU on {escape(view.sample_id)} "
        "(A solid, B hatched; colour = importance group)",
        annotated=[i in annotated for i in range(NUM_EVALUATED)],
    )


def confusion_figures(
    view: ImageView, groups: ImportanceGroups, full: bool
) -> tuple[go.Figure | None, go.Figure | None]:
    """Importance-group (or full 20x20) confusion of A and of B on this image."""
    if view.confusion_a is None or view.confusion_b is None:
        return None, None
    image = escape(view.sample_id)
    if full:
        return (
            class_confusion_figure(view.confusion_a, groups, f"A: class confusion · {image}"),
            class_confusion_figure(view.confusion_b, groups, f"B: class confusion · {image}"),
        )
    matrix_a = group_confusion(view.confusion_a, groups)
    matrix_b = group_confusion(view.confusion_b, groups)
    return (
        group_confusion_figure(matrix_a, groups, f"A: groups · {image}"),
        group_confusion_figure(matrix_b, groups, f"B: groups · {image}"),
    )
