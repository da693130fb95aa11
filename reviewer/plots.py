"""Plotly figures of the review panels and reports: pure functions of scores.

Bars are coloured by importance group, so the classes that matter stand out; confusion
heatmaps are row-normalised (share of each true class) and mark the dangerous cells: an
important class predicted as a less important one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from models.labels import CLASS_NAMES, NUM_EVALUATED, ImportanceGroups

GROUP_COLORS = ("#9aa5b1", "#5b8def", "#f2a541", "#e5484d", "#8e4ec6", "#2f9e44")
"""Colour of each importance group, least important first (cycled past six groups)."""
MODEL_PATTERNS = ("", "/")
"""Bar fill pattern of model A (solid) and model B (hatched)."""


PLOT_TEMPLATE = go.layout.Template(
    layout={
        "plot_bgcolor": "white",
        "paper_bgcolor": "white",
        "font": {"color": "#2a3f5f"},
        "xaxis": {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8"},
        "yaxis": {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8"},
    }
)
"""The look of every figure, built once: naming a stock template ("plotly_white") makes
plotly deep-copy the whole template into each figure and send all of it to the page."""


def group_color(index: int) -> str:
    return GROUP_COLORS[index % len(GROUP_COLORS)]


def _figure(traces: list[dict], title: str, height: int = 360, **layout: object) -> go.Figure:
    """One figure in one validated construction (adding traces and layout piece by piece
    validates each piece again: about four times slower)."""
    common = {
        "title": {"text": title, "x": 0.01, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 50, "r": 20, "t": 50, "b": 40},
        "template": PLOT_TEMPLATE,
        "legend": {"orientation": "h", "y": -0.25},
    }
    return go.Figure({"data": traces, "layout": {**common, **layout}})


def class_iou_bars(
    ious: dict[str, Sequence[float | None]],
    groups: ImportanceGroups,
    title: str = "Per-class IoU",
    annotated: Sequence[bool] | None = None,
) -> go.Figure:
    """Grouped bars of per-class IoU for each model (up to two), coloured by group.

    ``None`` (class absent from image and predictions, or not annotated) shows no bar and
    says why in the hover text.
    """
    names = list(CLASS_NAMES[:NUM_EVALUATED])
    colors = [group_color(int(g)) for g in groups.group_of[:NUM_EVALUATED]]
    traces = []
    for position, (model, values) in enumerate(ious.items()):
        why = [
            "not annotated"
            if annotated is not None and not annotated[i]
            else ("absent" if values[i] is None else f"{values[i]:.3f}")
            for i in range(NUM_EVALUATED)
        ]
        traces.append(
            {
                "type": "bar",
                "name": model,
                "x": names,
                "y": [np.nan if v is None else float(v) for v in values],
                "marker": {
                    "color": colors,
                    "pattern": {"shape": MODEL_PATTERNS[position % 2], "fgcolor": "#222"},
                    "line": {"color": "#333", "width": 0.5},
                },
                "customdata": [[groups.group_name_of(i), w] for i, w in enumerate(why)],
                "hovertemplate": f"%{{x}} (%{{customdata[0]}})<br>{model}: %{{customdata[1]}}"
                "<extra></extra>",
            }
        )
    return _figure(traces, title, barmode="group", yaxis={"range": [0, 1], "title": "IoU"})


def group_iou_bars(
    group_ious: dict[str, dict[str, float | None]],
    groups: ImportanceGroups,
    title: str = "IoU per importance group",
) -> go.Figure:
    """Bars of the mean IoU of each group, one bar per model."""
    traces = [
        {
            "type": "bar",
            "name": model,
            "x": list(groups.names),
            "y": [np.nan if values.get(n) is None else values[n] for n in groups.names],
            "marker": {
                "color": [group_color(i) for i in range(groups.num_groups)],
                "pattern": {"shape": MODEL_PATTERNS[position % 2], "fgcolor": "#222"},
            },
        }
        for position, (model, values) in enumerate(group_ious.items())
    ]
    return _figure(
        traces, title, height=300, barmode="group", yaxis={"range": [0, 1], "title": "IoU"}
    )


def confusion_heatmap(
    matrix: np.ndarray,
    labels: Sequence[str],
    title: str,
    dangerous: np.ndarray | None = None,
) -> go.Figure:
    """Row-normalised heatmap (rows: truth, columns: prediction) with counts on hover.

    Cells where ``dangerous`` is true and anything was counted get a red border: the
    errors the importance-aware loss is meant to remove.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    heatmap = {
        "type": "heatmap",
        "z": shares,
        "x": list(labels),
        "y": list(labels),
        "zmin": 0,
        "zmax": 1,
        "colorscale": "Blues",
        "text": [[f"{v:.0%}" if v >= 0.005 else "" for v in row] for row in shares],
        "texttemplate": "%{text}" if len(labels) <= 8 else None,
        "customdata": counts.astype(np.int64),
        "hovertemplate": "truth %{y}<br>predicted %{x}<br>%{z:.1%} (%{customdata} px)"
        "<extra></extra>",
    }
    marked = np.zeros_like(counts, dtype=bool) if dangerous is None else np.asarray(dangerous)
    borders = [
        {
            "type": "rect",
            "x0": col - 0.5,
            "x1": col + 0.5,
            "y0": row - 0.5,
            "y1": row + 0.5,
            "line": {"color": "#d00", "width": 2},
        }
        for row, col in zip(*np.nonzero(marked & (counts > 0)), strict=True)
    ]
    return _figure(
        [heatmap],
        title,
        height=360 if len(labels) <= 8 else 560,
        shapes=borders,
        yaxis={"autorange": "reversed", "title": {"text": "ground truth"}},
        xaxis={"title": {"text": "prediction"}, "tickangle": -45 if len(labels) > 8 else -20},
    )


def dangerous_group_cells(groups: ImportanceGroups) -> np.ndarray:
    """(G, G) bool: truth group row predicted as a less important column group."""
    index = np.arange(groups.num_groups)
    return index[None, :] < index[:, None]


def dangerous_class_cells(groups: ImportanceGroups) -> np.ndarray:
    """(20, 20) bool: truth class predicted as a class of a less important group."""
    level = groups.group_of
    return level[None, :] < level[:, None]


def group_confusion_figure(matrix: np.ndarray, groups: ImportanceGroups, title: str) -> go.Figure:
    return confusion_heatmap(matrix, groups.names, title, dangerous_group_cells(groups))


def class_confusion_figure(matrix: np.ndarray, groups: ImportanceGroups, title: str) -> go.Figure:
    return confusion_heatmap(matrix, CLASS_NAMES, title, dangerous_class_cells(groups))
