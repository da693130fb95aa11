"""The figures of the review panels: dangerous confusion cells are the ones marked."""

from __future__ import annotations

import numpy as np

from models.labels import CLASS_NAMES, DEFAULT_GROUPS
from reviewer import plots


def _marked_cells(figure: plots.go.Figure) -> set[tuple[int, int]]:
    """(row, column) of each red border, read back from the rectangle's coordinates."""
    return {(round(s.y0 + 0.5), round(s.x0 + 0.5)) for s in figure.layout.shapes}


def test_full_confusion_marks_every_counted_cell_of_a_less_important_prediction() -> None:
    counts = np.random.default_rng(3).integers(0, 3, (len(CLASS_NAMES), len(CLASS_NAMES)))
    figure = plots.class_confusion_figure(counts, DEFAULT_GROUPS, "A")
    level = DEFAULT_GROUPS.group_of
    expected = {
        (truth, predicted)
        for truth in range(len(CLASS_NAMES))
        for predicted in range(len(CLASS_NAMES))
        if level[predicted] < level[truth] and counts[truth, predicted] > 0
    }
    assert expected and _marked_cells(figure) == expected


def test_group_confusion_marks_nothing_without_dangerous_errors() -> None:
    size = DEFAULT_GROUPS.num_groups
    upper = np.triu(np.full((size, size), 7))
    figure = plots.group_confusion_figure(upper, DEFAULT_GROUPS, "B")
    assert _marked_cells(figure) == set()
    shares = np.asarray(figure.data[0].z)
    assert np.allclose(shares.sum(axis=1), 1.0)


def test_figures_share_one_small_template() -> None:
    figure = plots.group_iou_bars({"A": {}}, DEFAULT_GROUPS)
    assert figure.layout.template.layout.plot_bgcolor == "white"
    assert len(figure.to_json()) < 4000
