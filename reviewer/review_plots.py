"""The plots under the review board: the per-class IoU bars and both confusion heatmaps of
the image the board shows, in one HTML component with its own script.

Why not three Gradio Plot components filled by the details event: each update replaces a
Plot component, which draws its figure twice from scratch, on top of the event's own work
in the page; on a 2-core machine that put the plots about a second behind the panels. The
script asks the server for the figures as soon as the board has drawn an image and redraws
its plots in place (``bench/bench_gui.py`` measures the plots after the panels).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gradio as gr

ASSETS = Path(__file__).with_name("assets")
MATRIX_KINDS = ("groups", "classes")
"""The confusion matrices the plots show: importance groups, or the full 20x20 classes."""


def plotly_module() -> str | None:
    """Path, relative to the page, of the Plotly bundle Gradio's Plot component loads (its
    file name carries a build hash); None in a Gradio build without one."""
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    found = sorted(assets.glob("PlotlyPlot-*.js"))
    return f"assets/{found[0].name}" if found else None


def review_plots(fetch_plots: Callable[[list], dict], elem_id: str) -> gr.HTML:
    """The plots component; its value is the matrix kind (:data:`MATRIX_KINDS`), and
    ``fetch_plots([sample_id, display, matrix_kind])`` answers its script."""
    return gr.HTML(
        value=MATRIX_KINDS[0],
        html_template=(ASSETS / "plots.html").read_text(encoding="utf-8"),
        css_template=(ASSETS / "plots.css").read_text(encoding="utf-8"),
        js_on_load=(ASSETS / "plots.js").read_text(encoding="utf-8"),
        server_functions=[fetch_plots],
        plotly_module=plotly_module(),
        elem_id=elem_id,
    )
