"""Plotly figures of the review panels and reports: pure functions of scores.

Bars are coloured by importance group, so the classes that matter stand out, and patterned
by model (A solid, B hatched), each said by the legend; a class without a score (absent
from the image, or not annotated by the dataset) is a gap marked "n/a", never a bar at 0.
Confusion heatmaps are row-normalised (share of each true class) and mark the dangerous
cells: an important class predicted as a less important one. Axes make room for their
labels (plotly's automargin), so nothing is clipped at the 20-class size either.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from models.labels import CLASS_NAMES, NUM_EVALUATED, ImportanceGroups
from models.scores import format_value

if TYPE_CHECKING:
    import plotly.graph_objects as go

GROUP_COLORS = ("#b4bcc6", "#6fa8dc", "#e3a33b", "#7e57c2", "#2f9e44", "#8d6e63")
"""Colour of each importance group, least important first (cycled past six groups); no
red, which in the panels means person and rider."""
DANGER_COLOR = "#111111"
"""Border of a dangerous confusion cell: black on the blue heatmap, not red (see above)."""
MODEL_PATTERNS = ("", "/")
"""Bar fill pattern of model A (solid) and model B (hatched)."""
MODEL_LEGEND_COLOR = "#d9dde3"
"""Fill of the legend's model swatches, so they show the pattern and no group's colour."""
NOT_AVAILABLE = "n/a"


@cache
def plot_template() -> go.layout.Template:
    """The look of every figure, built once: naming a stock template ("plotly_white") makes
    plotly deep-copy the whole template into each figure and send all of it to the page."""
    import plotly.graph_objects as go  # plotly loads at the first figure, after serving

    return go.layout.Template(
        layout={
            "plot_bgcolor": "white",
            "paper_bgcolor": "white",
            "font": {"color": "#2a3f5f"},
            "xaxis": {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8"},
            "yaxis": {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8"},
        }
    )


def group_color(index: int) -> str:
    return GROUP_COLORS[index % len(GROUP_COLORS)]


def _figure(traces: list[dict], title: str, height: int = 360, **layout: object) -> go.Figure:
    """One figure in one validated construction (adding traces and layout piece by piece
    validates each piece again: about four times slower)."""
    common = {
        "title": {"text": title, "x": 0.01, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
        "template": plot_template(),
        "legend": {"orientation": "h", "y": -0.2, "yanchor": "top"},
    }
    merged = {**common, **layout}
    for axis in ("xaxis", "yaxis"):
        merged[axis] = {"automargin": True, **merged.get(axis, {})}
    import plotly.graph_objects as go

    return go.Figure({"data": traces, "layout": merged})


def _legend_traces(groups: ImportanceGroups, models: Sequence[str]) -> list[dict]:
    """Legend entries on an axis of their own (so they take no slot among the bars): one
    swatch per model showing its pattern, one per importance group showing its colour."""
    blank = {"type": "bar", "x": [None], "y": [None], "xaxis": "x2", "yaxis": "y2"}
    entries = [
        {
            **blank,
            "name": f"{model} ({'solid' if position % 2 == 0 else 'hatched'})",
            "legendgroup": "models",
            "legendgrouptitle": {"text": "model"},
            "marker": _bar_marker(MODEL_LEGEND_COLOR, position),
        }
        for position, model in enumerate(models)
    ]
    entries += [
        {
            **blank,
            "name": name,
            "legendgroup": "groups",
            "legendgrouptitle": {"text": "colour: importance group"},
            "marker": {"color": group_color(index)},
        }
        for index, name in enumerate(groups.names)
    ]
    return entries


LEGEND_AXES = {
    "xaxis2": {"visible": False, "overlaying": "x"},
    "yaxis2": {"visible": False, "overlaying": "y"},
}


def _bar_marker(color: str | list[str], position: int) -> dict:
    """Bars of the model at ``position`` (0: A, solid; 1: B, hatched) in ``color``."""
    return {
        "color": color,
        "pattern": {"shape": MODEL_PATTERNS[position % 2], "fgcolor": "#222"},
        "line": {"color": "#333", "width": 0.5},
    }


def _iou_bars(
    traces: list[dict],
    groups: ImportanceGroups,
    models: list[str],
    title: str,
    height: int,
    **layout: object,
) -> go.Figure:
    """Grouped IoU bars (0 to 1) with the legend of model patterns and group colours."""
    return _figure(
        [*traces, *_legend_traces(groups, models)],
        title,
        height=height,
        barmode="group",
        yaxis={"range": [0, 1], "title": {"text": "IoU"}},
        **LEGEND_AXES,
        **layout,
    )


def _gap_marks(names: Sequence[str], texts: dict[str, list[str]], missing: list[bool]) -> dict:
    """An "n/a" at the foot of each class without a score for some model, whose hover says
    every model's value: a missing score is a gap, never a bar at 0."""
    shown = [i for i, gap in enumerate(missing) if gap]
    hover = ["<br>".join(f"{m}: {t[i]}" for m, t in texts.items()) for i in shown]
    return {
        "type": "scatter",
        "mode": "text",
        "x": [names[i] for i in shown],
        "y": [0.03] * len(shown),
        "text": [NOT_AVAILABLE] * len(shown),
        "textfont": {"size": 10, "color": "#555"},
        "customdata": hover,
        "hovertemplate": "%{x}<br>%{customdata}<extra></extra>",
        "showlegend": False,
    }


def class_iou_bars(
    ious: dict[str, Sequence[float | None]],
    groups: ImportanceGroups,
    title: str = "Per-class IoU",
    annotated: Sequence[bool] | None = None,
) -> go.Figure:
    """Grouped bars of per-class IoU for each model (up to two), coloured by group.

    ``None`` (class absent from image and predictions, or not annotated) shows no bar,
    an "n/a" mark, and says why in the hover text.
    """
    names = list(CLASS_NAMES[:NUM_EVALUATED])
    colors = [group_color(int(g)) for g in groups.group_of[:NUM_EVALUATED]]
    traces = []
    texts: dict[str, list[str]] = {}
    for position, (model, values) in enumerate(ious.items()):
        texts[model] = [
            f"{NOT_AVAILABLE} (not annotated)"
            if annotated is not None and not annotated[i]
            else (f"{NOT_AVAILABLE} (absent)" if values[i] is None else format_value(values[i]))
            for i in range(NUM_EVALUATED)
        ]
        traces.append(
            {
                "type": "bar",
                "name": model,
                "showlegend": False,
                "x": names,
                "y": [np.nan if v is None else float(v) for v in values],
                "marker": _bar_marker(colors, position),
                "customdata": [[groups.group_name_of(i), w] for i, w in enumerate(texts[model])],
                "hovertemplate": f"%{{x}} (%{{customdata[0]}})<br>{model}: %{{customdata[1]}}"
                "<extra></extra>",
            }
        )
    missing = [any(values[i] is None for values in ious.values()) for i in range(NUM_EVALUATED)]
    if any(missing):
        traces.append(_gap_marks(names, texts, missing))
    return _iou_bars(traces, groups, list(ious), title, height=400, xaxis={"tickangle": -45})


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
            "showlegend": False,
            "x": list(groups.names),
            "y": [np.nan if values.get(n) is None else values[n] for n in groups.names],
            "customdata": [format_value(values.get(n)) for n in groups.names],
            "hovertemplate": f"%{{x}}<br>{model}: %{{customdata}}<extra></extra>",
            "marker": _bar_marker([group_color(i) for i in range(groups.num_groups)], position),
        }
        for position, (model, values) in enumerate(group_ious.items())
    ]
    return _iou_bars(traces, groups, list(group_ious), title, height=340)


def confusion_heatmap(
    matrix: np.ndarray,
    labels: Sequence[str],
    title: str,
    dangerous: np.ndarray | None = None,
) -> go.Figure:
    """Row-normalised heatmap (rows: truth, columns: prediction) with counts on hover.

    Cells where ``dangerous`` is true and anything was counted get a dark border: the
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
        "text": [
            [format_value(v, percent=True) if v >= 0.0005 else "" for v in row] for row in shares
        ],
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
            "line": {"color": DANGER_COLOR, "width": 2},
        }
        for row, col in zip(*np.nonzero(marked & (counts > 0)), strict=True)
    ]
    return _figure(
        [heatmap],
        title,
        height=400 if len(labels) <= 8 else 640,
        shapes=borders,
        yaxis={"autorange": "reversed", "title": {"text": "ground truth", "standoff": 8}},
        xaxis={"title": {"text": "prediction", "standoff": 8}, "tickangle": -45},
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
