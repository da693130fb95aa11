"""The figures of the review panels: dangerous confusion cells are the ones marked."""

from __future__ import annotations

import colorsys

import numpy as np

from models.labels import CLASS_NAMES, DEFAULT_GROUPS, NUM_EVALUATED
from reviewer import plots


def _marked_cells(figure: plots.go.Figure) -> set[tuple[int, int]]:
    """(row, column) of each marked border, read back from the rectangle's coordinates."""
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


def test_bars_say_pattern_and_colour_in_the_legend_and_mark_missing_scores() -> None:
    ious = {"A": [0.5] * NUM_EVALUATED, "B": [0.25] * NUM_EVALUATED}
    ious["A"][3] = None
    annotated = [index != 5 for index in range(NUM_EVALUATED)]
    ious["A"][5] = ious["B"][5] = None
    figure = plots.class_iou_bars(ious, DEFAULT_GROUPS, "t", annotated=annotated)
    legend = [trace.name for trace in figure.data if trace.showlegend is not False]
    assert legend == ["A (solid)", "B (hatched)", *DEFAULT_GROUPS.names]
    swatches = [trace.marker.color for trace in figure.data if trace.legendgroup == "models"]
    assert swatches == [plots.MODEL_LEGEND_COLOR] * 2, "no group's colour on a model swatch"
    bars_a, bars_b, gaps = figure.data[:3]
    assert np.isnan(bars_a.y[3]) and np.isnan(bars_a.y[5]) and bars_b.y[3] == 0.25
    assert list(gaps.x) == [CLASS_NAMES[3], CLASS_NAMES[5]] and list(gaps.text) == ["n/a"] * 2
    assert gaps.customdata[0] == "A: n/a (absent)<br>B: 0.250"
    assert gaps.customdata[1] == "A: n/a (not annotated)<br>B: n/a (not annotated)"
    assert figure.layout.xaxis.automargin and figure.layout.yaxis.automargin


def test_no_plot_colour_is_the_red_of_person_and_rider() -> None:
    for colour in (*plots.GROUP_COLORS, plots.DANGER_COLOR):
        red, green, blue = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
        hue, saturation, _ = colorsys.rgb_to_hsv(red, green, blue)
        off_red = min(hue * 360, 360 - hue * 360)
        assert saturation < 0.35 or off_red > 25, colour
