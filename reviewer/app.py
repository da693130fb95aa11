"""The Gradio review app: layout and event wiring only. What a handler does lives in
:mod:`reviewer.handlers` over the services; this module only turns its plain values into
components (tables, timers, updates) and its failures into readable pop-ups. Per-browser-
session state lives in component values (the review board's above all), so several people
can review at once without seeing each other's selection."""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from db.schema import SEVERITIES, STATUSES
from models.comparison import COMPARISON_HEADERS
from models.labels import CLASS_NAMES
from models.object_sizes import OBJECT_HEADERS
from reviewer import board, panels
from reviewer.export import FORMATS
from reviewer.flag_text import TARGET_LABELS
from reviewer.handlers import (
    AGREEMENT_SCOPES,
    CLASS_HEADERS,
    ERROR_MAP_MODES,
    FLAG_HEADERS,
    HISTORY_HEADERS,
    SUMMARY_HEADERS,
    DatasetSummary,
    DatasetView,
    DuplicateFlag,
    FlagDesk,
    ReviewDesk,
    Upload,
    UploadDesk,
    default_pairs,
    export_flags,
    model_card,
    readable,
    region_text,
    scoring_progress,
    suspect_flag,
)
from reviewer.overlays import LEGEND_CSS
from reviewer.review_plots import MATRIX_KINDS, review_plots
from reviewer.review_queue import FLAG_STATES, SORT_KEYS
from reviewer.text import markdown_text
from reviewer.workbench import Workbench

IMAGE_HEIGHT = 240
"""Display height of the image panels in pixels (they keep their aspect ratio)."""

CSS = (
    LEGEND_CSS
    + """
#flag-status { min-height: 1.5em; }
#flag-form {
  --checkbox-label-padding: 3px 8px; --checkbox-label-gap: 6px; --block-padding: 6px 10px;
}
.gradio-container { --layout-gap: 10px; }
.gradio-container .app { padding: 8px 16px; }
#page-title h3 { margin: 0; }
"""
)
"""The page's style: blocks closer together and narrower margins than Gradio's, so the
four image panels a reviewer reads first fit a 1400x900 window, and beside them the class
colours and the flag form up to its Save button (its choices drawn tighter)."""

SIDE_COLUMN_WIDTH = 270
"""Width in pixels of the column beside the board (options and the flag form)."""

CARDS_BUTTON = "Data and model cards"
MISFIT_BUTTON = "Model cards: a model does not fit this data"

QUIET_PROGRESS = "minimal"
"""Updates that follow a step to another image show a small timer: Gradio's default
("full") lays a loading overlay over each output and takes it off again, a large share of
the page's work in a step (``bench/bench_gui.py`` measures steps)."""

SCORING_POLL_SECONDS = 2.0
"""How often a page asks for the progress of the scoring behind the app: each poll is a
Gradio event, which costs the page and the server work of their own."""

PANEL_FORMAT = "jpeg"
"""Panels of an uploaded image are sent as JPEG, as the board's are (see
:data:`reviewer.board.PANEL_JPEG_QUALITY`)."""


FAILURE_TITLE = "Not done"


def refuse(message: str) -> Any:
    """What a failed action returns: one readable message (escaped, as Gradio shows it as
    HTML) and every output left as it was. Raising :class:`gr.Error` would instead mark
    each output of the event with an error badge."""
    gr.Warning(html.escape(message), title=FAILURE_TITLE)
    return gr.skip()


def friendly(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Show failures as a readable message in the page, never as a traceback."""

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except Exception as error:
            return refuse(readable(error, handler.__name__))

    return wrapped


@dataclass(frozen=True)
class AppOptions:
    """What the app needs besides the workbench."""

    export_dir: Path


def _frame(rows: list[list] | None, headers: list[str]) -> pd.DataFrame | None:
    """A table's value; None (no rows to speak of) clears it."""
    return None if rows is None else pd.DataFrame(rows, columns=headers)


def _selected_row(event: gr.SelectData) -> int:
    """Row index of a Dataframe selection (Gradio gives [row, column])."""
    index = event.index
    return int(index[0] if isinstance(index, list | tuple) else index)


def _dataset_outputs(summary: DatasetSummary) -> tuple[Any, ...]:
    """The Dataset tab's outputs in the order of its components."""
    return (
        summary.message,
        gr.Dataframe(
            _frame(summary.comparison_rows, COMPARISON_HEADERS),
            label=summary.comparison_title or "B - A with 95% intervals",
        ),
        _frame(summary.class_rows, CLASS_HEADERS),
        _frame(summary.summary_rows, SUMMARY_HEADERS),
        summary.iou,
        summary.group_iou,
        summary.confusion_a,
        summary.confusion_b,
        _frame(summary.worst_rows, panels.WORST_HEADERS),
        summary.objects_message,
        _frame(summary.object_rows, OBJECT_HEADERS),
    )


class Page:
    """The handlers in the shape Gradio calls them: positional component values in,
    component values out, failures as :class:`gr.Error`."""

    def __init__(self, bench: Workbench, options: AppOptions) -> None:
        self.bench = bench
        self.options = options
        self.flags = FlagDesk(bench)
        self.review = ReviewDesk(bench, self.flags)
        self.dataset = DatasetView(bench)
        self.uploads = UploadDesk(bench, self.flags)

    @friendly
    def cards(self, name_a: str, name_b: str) -> tuple[str, str, gr.Button]:
        """Both model cards, folded; their button turns into a warning when a model does
        not fit the data on screen (the card says how)."""
        kind = self.bench.dataset.kind
        misfit = any(self.bench.catalogue[name].mismatch(kind) for name in (name_a, name_b))
        button = (
            gr.Button(MISFIT_BUTTON, variant="stop")
            if misfit
            else gr.Button(CARDS_BUTTON, variant="secondary")
        )
        return model_card(self.bench, name_a), model_card(self.bench, name_b), button

    @staticmethod
    def toggle_cards(shown: bool) -> tuple[gr.Column, bool]:
        """Show or fold the data and model cards."""
        return gr.Column(visible=not shown), not shown

    @friendly
    def refresh_board(
        self,
        name_a: str,
        name_b: str,
        sort_key: str,
        status: str,
        sequence: str,
        condition: str,
        opacity: float,
        shown_groups: list[str],
        hidden: list[str],
        agreement_scope: str,
        error_mode: str,
        board_value: str,
        to_top: bool = False,
    ) -> str:
        filters = (sort_key, status, sequence, condition)
        looks = (opacity, shown_groups, hidden, agreement_scope, error_mode)
        return self.review.board((name_a, name_b), filters, looks, board_value, to_top)

    def reorder_board(self, *controls: Any) -> str:
        """The board once the split's scores are in: its queue is ranked now."""
        return self.refresh_board(*controls, to_top=True)

    def check_scoring(self) -> tuple[str, gr.Timer, Any]:
        """The scoring banner and its poll; the last output turns True (once, in each page
        that waited) when the scores are in."""
        progress = scoring_progress(self.bench.background)
        scores_in = True if progress.scores_in else gr.skip()
        return progress.message, gr.Timer(active=progress.polling), scores_in

    def show_scoring(self) -> tuple[str, gr.Timer]:
        """On page load: the scoring's progress, and its poll started if it still runs."""
        message, timer, _ = self.check_scoring()
        return message, timer

    @friendly
    def show_details(self, board_value: str) -> tuple[Any, ...]:
        details = self.review.details(board_value)
        return (
            details.legend,
            _frame(details.score_rows, panels.SCORE_HEADERS),
            _frame(details.instance_rows, panels.INSTANCE_HEADERS),
            list(details.boxes),
            _frame(details.flag_rows, FLAG_HEADERS),
            details.suspect_picture,
            _frame(details.suspect_rows, panels.SUSPECT_HEADERS),
            list(details.suspect_boxes),
        )

    @friendly
    def fill_region(self, event: gr.SelectData, boxes: list) -> str:
        return region_text(boxes, _selected_row(event))

    @friendly
    def flag_suspect(self, event: gr.SelectData, boxes: list) -> tuple[str, str]:
        return suspect_flag(boxes, _selected_row(event))

    @friendly
    def open_worst(
        self, event: gr.SelectData, table: pd.DataFrame, board_value: str
    ) -> tuple[Any, ...]:
        sample_id = str(table.iloc[_selected_row(event)]["image"])
        opened = board.BoardState.from_json(board_value).opening(sample_id)
        return gr.Tabs(selected="review"), opened.to_json()

    @friendly
    def save_flag(
        self,
        board_value: str,
        reviewer: str,
        target: str,
        severity: str,
        category: str,
        note: str,
        region: str,
        confirmed: str,
    ) -> tuple[Any, ...]:
        """Outputs: the form's message, the image's flags, the note, the duplicate asked
        about (saving the same form again confirms it)."""
        judgement = (reviewer, target, severity, category, note)
        try:
            message, rows = self.flags.save_on_board(board_value, judgement, region, confirmed)
        except DuplicateFlag as duplicate:
            return markdown_text(str(duplicate)), gr.skip(), gr.skip(), duplicate.signature
        return message, _frame(rows, FLAG_HEADERS), "", ""

    @friendly
    def evaluate_split(
        self,
        name_a: str,
        name_b: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's API)
    ) -> tuple[Any, ...]:
        progress((0, len(self.bench.dataset)), desc="Evaluating the split with both models")
        summary = self.dataset.evaluate(
            (name_a, name_b),
            progress=lambda done, total: progress((done, total), desc="Evaluating", unit="images"),
        )
        return _dataset_outputs(summary)

    @friendly
    def show_dataset(self, name_a: str, name_b: str) -> tuple[Any, ...]:
        return _dataset_outputs(self.dataset.show((name_a, name_b)))

    @friendly
    def list_flags(
        self, status: list[str], severity: list[str], category: list[str], reviewer: str
    ) -> pd.DataFrame | None:
        return _frame(self.flags.rows(status, severity, category, reviewer), FLAG_HEADERS)

    @friendly
    def pick_flag(self, event: gr.SelectData, table: pd.DataFrame) -> tuple[Any, ...]:
        flag_id = int(table.iloc[_selected_row(event)]["id"])
        history = _frame(self.flags.history_rows(flag_id), HISTORY_HEADERS)
        return flag_id, history, f"Flag #{flag_id} selected."

    @friendly
    def change_status(
        self, flag_id: int | None, new_status: str, reviewer: str, *filters: Any
    ) -> tuple[Any, ...]:
        message = self.flags.change_status(flag_id, new_status, reviewer)
        history = _frame(self.flags.history_rows(flag_id), HISTORY_HEADERS)
        return message, history, self.list_flags(*filters)

    @friendly
    def export_flags(
        self,
        status: list[str],
        severity: list[str],
        category: list[str],
        formats: list[str],
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's API)
    ) -> tuple[str, str]:
        return export_flags(
            self.bench,
            self.options.export_dir,
            (status, severity, category),
            formats,
            progress=lambda done, total: progress((done, total), desc="Exporting", unit="images"),
        )

    @friendly
    def predict_upload(
        self, image: Upload, name_a: str, name_b: str, opacity: float
    ) -> tuple[Any, ...]:
        shown = self.uploads.predict(image, (name_a, name_b), opacity)
        captioned = (
            gr.update(value=picture, label=board.panel_caption(key, name_a, name_b))
            for key, picture in (
                ("prediction_a", shown.prediction_a),
                ("prediction_b", shown.prediction_b),
                ("disagreement", shown.disagreement),
            )
        )
        return (*captioned, shown.summary, shown.legend)

    @friendly
    def flag_upload(self, image: Upload, name_a: str, name_b: str, *form: str) -> tuple[str, str]:
        """Outputs: the message and the duplicate asked about, as :meth:`save_flag`."""
        *judgement, confirmed = form
        try:
            return self.uploads.flag(image, (name_a, name_b), tuple(judgement), confirmed), ""
        except DuplicateFlag as duplicate:
            return markdown_text(str(duplicate)), duplicate.signature


def panel_image(label: str, elem_id: str | None = None) -> gr.Image:
    """A read-only image panel."""
    return gr.Image(
        label=label, interactive=False, format=PANEL_FORMAT, height=IMAGE_HEIGHT, elem_id=elem_id
    )


def plot(label: str) -> gr.Plot:
    """A plot panel; the figure carries its own title, so Gradio's label tag is hidden."""
    return gr.Plot(label=label, show_label=False)


def build_app(bench: Workbench, options: AppOptions) -> gr.Blocks:
    """The Blocks app for one workbench; launch it with :func:`launch`."""
    page = Page(bench, options)
    with gr.Blocks(title="SegNet review bench", fill_width=True) as app:
        ui = _header(bench)
        with gr.Tabs() as ui.tabs:
            with gr.Tab("Review", id="review"):
                _review_board(bench, page, ui)
                _review_details(bench, page, ui)
            with gr.Tab("Dataset", id="dataset"):
                _dataset_tab(ui)
            with gr.Tab("Flags", id="flags"):
                _flags_tab(bench, ui)
            with gr.Tab("Your image", id="upload"):
                _upload_tab(bench, ui)
        _wire_models(app, page, ui)
        _wire_review(app, page, ui)
        _wire_flags(page, ui)
    return app


def _header(bench: Workbench) -> SimpleNamespace:
    """Title, the two model pickers with their cards, and the scoring banner."""
    (default_a, default_b), _ = default_pairs(bench)
    choices = bench.catalogue.choices()
    ui = SimpleNamespace()
    ui.reviewer_memory = gr.BrowserState("", storage_key="segbench-reviewer")
    with gr.Row(equal_height=True, elem_id="page-header"):
        with gr.Column(scale=1, min_width=200):
            gr.Markdown("### SegNet review bench", elem_id="page-title")
            ui.cards_button = gr.Button(CARDS_BUTTON, size="sm", elem_id="cards-button")
        ui.model_a = gr.Dropdown(choices, value=default_a, label="Model A", scale=2)
        ui.model_b = gr.Dropdown(choices, value=default_b, label="Model B", scale=2)
        ui.reviewer = gr.Textbox(
            label="Reviewer",
            placeholder="your name, kept with every flag",
            elem_id="reviewer-name",
            scale=1,
            min_width=240,
        )
    ui.cards_shown = gr.State(False)
    with gr.Column(visible=False, elem_id="model-cards") as ui.cards:
        gr.Markdown(
            f"{markdown_text(bench.dataset.describe())} · "
            f"importance groups: {markdown_text(' < '.join(bench.groups.names))}"
        )
        with gr.Row():
            ui.card_a = gr.Markdown(elem_id="model-a-card")
            ui.card_b = gr.Markdown(elem_id="model-b-card")
    ui.scoring_status = gr.Markdown(elem_id="scoring-status")
    ui.scoring_timer = gr.Timer(SCORING_POLL_SECONDS, active=False)
    ui.scores_in = gr.State(False)
    return ui


def _review_controls(bench: Workbench, ui: SimpleNamespace) -> None:
    """The queue's order and filters, and the display options of the board, folded so
    that the image panels come first."""
    with gr.Accordion("Queue order, filters and display", open=False):
        ui.sort_key = gr.Dropdown(
            list(SORT_KEYS), value=next(iter(SORT_KEYS)), label="Order (worst first)"
        )
        ui.status_filter = gr.Dropdown(list(FLAG_STATES), value="any", label="Flag status")
        ui.sequence_filter = gr.Dropdown(
            ["any", *bench.queue.sequences()], value="any", label="City / sequence"
        )
        ui.condition_filter = gr.Dropdown(
            ["any", *bench.queue.conditions()],
            value="any",
            label="Condition (synthetic set)",
            visible=bool(bench.queue.conditions()),
        )
        ui.opacity = gr.Slider(
            0,
            1,
            value=panels.DEFAULT_DISPLAY.opacity,
            step=0.05,
            label="Overlay opacity",
        )
        ui.shown_groups = gr.CheckboxGroup(
            list(bench.groups.names), value=list(bench.groups.names), label="Show groups"
        )
        ui.hidden_classes = gr.Dropdown(
            list(CLASS_NAMES), value=[], multiselect=True, label="Hide classes"
        )
        ui.agreement_scope = gr.Radio(
            list(AGREEMENT_SCOPES),
            value=AGREEMENT_SCOPES[panels.DEFAULT_DISPLAY.agreement_on_all_pixels],
            label="Disagreement judged on",
        )
        ui.error_mode = gr.Radio(
            list(ERROR_MAP_MODES),
            value=ERROR_MAP_MODES[panels.DEFAULT_DISPLAY.errors_by_kind],
            label="Error maps coloured by",
        )


def _judgement(bench: Workbench, targets: list[str]) -> tuple[gr.Radio, gr.Radio, gr.Dropdown]:
    """The target, severity and category fields of a flag form."""
    target = gr.Radio(targets, value="model A", label="What is wrong")
    severity = gr.Radio(list(SEVERITIES), value="major", label="Severity")
    categories = bench.store.categories()
    category = gr.Dropdown(categories, value=categories[0], label="Category")
    return target, severity, category


def _review_board(bench: Workbench, page: Page, ui: SimpleNamespace) -> None:
    """The board, and beside it the folded queue and display options, the colours of the
    classes in the image, the flag form and the legends of the error and disagreement
    panels: the image panels get the width, and the class colours sit beside the four
    panels read first."""

    def fetch_panels(request: list) -> dict[str, Any]:
        """The board script calls this by name; Gradio marks it, so it is a function."""
        return page.review.fetch_panels(request)

    with gr.Row():
        with gr.Column(scale=4):
            ui.review_board = board.review_board(fetch_panels, elem_id="review-board")
        with gr.Column(scale=0, min_width=SIDE_COLUMN_WIDTH):
            _review_controls(bench, ui)
            ui.legend = gr.HTML(elem_id="map-legend")
            _flag_form(bench, ui)
            gr.HTML(panels.code_legends(), elem_id="code-legend")


def _flag_form(bench: Workbench, ui: SimpleNamespace) -> None:
    """The flag form beside the board."""
    with gr.Group(elem_id="flag-form"):
        gr.Markdown("### Flag this image")
        ui.target, ui.severity, ui.category = _judgement(bench, list(TARGET_LABELS.values()))
        ui.note = gr.Textbox(label="Note", lines=2, max_length=10_000, elem_id="flag-note")
        ui.region = gr.Textbox(
            label="Region x0, y0, x1, y1 (optional)",
            placeholder="click an object, or 120, 40, 180, 130",
        )
        ui.save_button = gr.Button("Save flag", variant="primary", elem_id="save-flag")
        ui.flag_status = gr.Markdown(elem_id="flag-status")
        ui.duplicate_asked = gr.State("")


def _review_details(bench: Workbench, page: Page, ui: SimpleNamespace) -> None:
    """Tables and plots of the image the board shows."""
    with gr.Column(elem_id="review-details"):
        with gr.Row():
            ui.scores = gr.Dataframe(
                headers=panels.SCORE_HEADERS,
                interactive=False,
                label="Scores on this image",
                column_widths=["60%", "20%", "20%"],
                wrap=True,
            )
            ui.instances = gr.Dataframe(
                headers=panels.INSTANCE_HEADERS,
                interactive=False,
                label=(
                    "Objects (click one to use its box as flag region)"
                    if bench.dataset.annotates_objects
                    else "Objects: not annotated in this dataset (it labels classes only)"
                ),
            )
            ui.instance_boxes = gr.State([])
        with gr.Row():
            ui.suspect_picture = panel_image("Suspect ground truth", elem_id="suspect-picture")
            ui.suspects = gr.Dataframe(
                headers=panels.SUSPECT_HEADERS,
                interactive=False,
                label="Suspect ground truth: both models confidently see another class "
                "(click one to flag the ground truth there)",
                elem_id="suspects",
            )
            ui.suspect_boxes = gr.State([])
        ui.matrix_kind = gr.Radio(
            list(MATRIX_KINDS), value=MATRIX_KINDS[0], label="Confusion matrix"
        )

        def fetch_plots(request: list) -> dict[str, Any]:
            """The plots script calls this by name; Gradio marks it, so it is a function."""
            return page.review.fetch_plots(request)

        ui.review_plots = review_plots(fetch_plots, elem_id="review-plots")
        ui.this_image_flags = gr.Dataframe(
            headers=FLAG_HEADERS, interactive=False, label="Flags on this image"
        )


def _dataset_tab(ui: SimpleNamespace) -> None:
    """The split's scores for the pair, and its worst images."""
    ui.evaluate_button = gr.Button("Evaluate the split with both models", variant="primary")
    ui.evaluation_status = gr.Markdown()
    ui.comparison_table = gr.Dataframe(
        interactive=False, label="B - A with 95% intervals", elem_id="comparison", wrap=True
    )
    with gr.Row():
        ui.class_table = gr.Dataframe(interactive=False, label="Per-class IoU", elem_id="class-iou")
        ui.summary_table = gr.Dataframe(interactive=False, label="Split scores")
    ui.objects_message = gr.Markdown(elem_id="objects-by-size")
    ui.object_table = gr.Dataframe(
        interactive=False, label="Objects missed by class and size, B - A with 95% intervals"
    )
    with gr.Column(elem_id="dataset-plots"):
        ui.split_iou_plot = plot("Per-class IoU over the split")
        ui.split_group_plot = plot("IoU per importance group")
        with gr.Row():
            ui.split_confusion_a = plot("Importance-group confusion of A")
            ui.split_confusion_b = plot("Importance-group confusion of B")
    ui.worst_table = gr.Dataframe(
        interactive=False,
        label="Worst images (click one to review it)",
        elem_id="worst-images",
    )


def _flags_tab(bench: Workbench, ui: SimpleNamespace) -> None:
    """Every flag of the split with filters, a flag's history and status, the export."""
    with gr.Row():
        ui.flags_status = gr.Dropdown(list(STATUSES), multiselect=True, label="Status")
        ui.flags_severity = gr.Dropdown(list(SEVERITIES), multiselect=True, label="Severity")
        ui.flags_category = gr.Dropdown(
            bench.store.categories(), multiselect=True, label="Category"
        )
        ui.flags_reviewer = gr.Textbox(
            label="Filter: reviewer", placeholder="any reviewer", elem_id="flags-reviewer-filter"
        )
        ui.refresh_flags = gr.Button("Refresh")
    ui.all_flags = gr.Dataframe(
        headers=FLAG_HEADERS,
        interactive=False,
        label="All flags (click one for its history)",
        elem_id="all-flags",
    )
    ui.selected_flag = gr.State(None)
    with gr.Row():
        ui.new_status = gr.Dropdown(
            list(STATUSES), value="confirmed", label="Set status of the selected flag"
        )
        ui.apply_status = gr.Button("Apply")
    ui.status_message = gr.Markdown()
    ui.history = gr.Dataframe(
        headers=HISTORY_HEADERS, interactive=False, label="Audit trail", elem_id="audit-trail"
    )
    with gr.Group():
        gr.Markdown("### Export the flags matching the filters above")
        with gr.Row():
            ui.export_formats = gr.CheckboxGroup(
                list(FORMATS), value=list(FORMATS), label="Formats"
            )
            ui.export_button = gr.Button("Export", variant="primary")
        ui.export_message = gr.Markdown(elem_id="export-message")
        ui.export_file = gr.File(label="Download", interactive=False)


def _upload_tab(bench: Workbench, ui: SimpleNamespace) -> None:
    """Both models on a person's own photo, and a flag on it."""
    _, (upload_a_default, upload_b_default) = default_pairs(bench)
    choices = bench.catalogue.choices()
    with gr.Row():
        ui.upload = gr.Image(
            label="Your road scene",
            type="filepath",
            image_mode=None,
            sources=["upload", "clipboard"],
            elem_id="upload-image",
        )
        with gr.Column():
            ui.upload_model_a = gr.Dropdown(
                choices, value=upload_a_default, label="Model A", elem_id="upload-model-a"
            )
            ui.upload_model_b = gr.Dropdown(
                choices, value=upload_b_default, label="Model B", elem_id="upload-model-b"
            )
            ui.run_upload = gr.Button("Predict with both models", variant="primary")
            ui.upload_summary = gr.Markdown()
            ui.upload_legend = gr.HTML()
    with gr.Row():
        ui.upload_a, ui.upload_b, ui.upload_diff = (
            panel_image(
                board.panel_caption(key, upload_a_default, upload_b_default),
                elem_id=f"upload-{key}",
            )
            for key in ("prediction_a", "prediction_b", "disagreement")
        )
    with gr.Row():
        ui.upload_target, ui.upload_severity, ui.upload_category = _judgement(
            bench, list(TARGET_LABELS.values())[1:]
        )
    ui.upload_note = gr.Textbox(label="Note", lines=2, max_length=10_000)
    ui.flag_upload_button = gr.Button("Flag this image", elem_id="flag-upload")
    ui.upload_status = gr.Markdown(elem_id="upload-status")
    ui.upload_duplicate_asked = gr.State("")


BOARD_INPUTS = (
    "model_a model_b sort_key status_filter sequence_filter condition_filter opacity "
    "shown_groups hidden_classes agreement_scope error_mode review_board"
)
"""What :meth:`Page.refresh_board` reads, in its order; all but the board are controls
whose change refreshes it."""

DATASET_VIEWS = (
    "evaluation_status comparison_table class_table summary_table split_iou_plot split_group_plot "
    "split_confusion_a split_confusion_b worst_table objects_message object_table"
)
"""The Dataset tab's outputs, in the order of :func:`_dataset_outputs`."""


def _pick(ui: SimpleNamespace, names: str) -> list:
    """The components of ``ui`` named (space-separated) in ``names``, in that order."""
    return [getattr(ui, name) for name in names.split()]


def _wire_models(app: gr.Blocks, page: Page, ui: SimpleNamespace) -> None:
    """Cards, the Dataset tab and the board follow the pair; the scoring banner polls."""
    pair = [ui.model_a, ui.model_b]
    cards = [ui.card_a, ui.card_b, ui.cards_button]
    app.load(page.cards, pair, cards)
    ui.cards_button.click(page.toggle_cards, [ui.cards_shown], [ui.cards, ui.cards_shown])
    for event in (app.load, ui.model_a.change, ui.model_b.change):
        event(page.show_dataset, pair, _pick(ui, DATASET_VIEWS))
    app.load(lambda remembered: remembered or "", [ui.reviewer_memory], [ui.reviewer])
    for trigger in pair:
        trigger.change(page.cards, pair, cards)
    controls = _pick(ui, BOARD_INPUTS)[:-1]
    for event in [app.load, *(control.change for control in controls)]:
        event(
            page.refresh_board,
            _pick(ui, BOARD_INPUTS),
            [ui.review_board],
            show_progress=QUIET_PROGRESS,
        )
    scoring_outputs = [ui.scoring_status, ui.scoring_timer, ui.scores_in]
    app.load(page.show_scoring, None, scoring_outputs[:2], show_progress="hidden")
    ui.scoring_timer.tick(page.check_scoring, None, scoring_outputs, show_progress="hidden")
    ui.scores_in.change(page.reorder_board, _pick(ui, BOARD_INPUTS), [ui.review_board]).then(
        page.show_dataset, pair, _pick(ui, DATASET_VIEWS)
    )


def _wire_review(app: gr.Blocks, page: Page, ui: SimpleNamespace) -> None:
    """The details follow the board; the flag form saves; the Dataset tab evaluates and
    opens a worst image on the board."""
    detail_outputs = [
        ui.legend,
        ui.scores,
        ui.instances,
        ui.instance_boxes,
        ui.this_image_flags,
        ui.suspect_picture,
        ui.suspects,
        ui.suspect_boxes,
    ]
    ui.review_board.navigate(
        page.show_details,
        [ui.review_board],
        detail_outputs,
        show_progress=QUIET_PROGRESS,
        trigger_mode="always_last",
    )
    ui.matrix_kind.change(lambda kind: kind, [ui.matrix_kind], [ui.review_plots])
    ui.instances.select(page.fill_region, [ui.instance_boxes], [ui.region])
    ui.suspects.select(page.flag_suspect, [ui.suspect_boxes], [ui.region, ui.target])
    ui.reviewer.change(lambda name: name, [ui.reviewer], [ui.reviewer_memory])
    form = [ui.reviewer, ui.target, ui.severity, ui.category, ui.note, ui.region]
    ui.save_button.click(
        page.save_flag,
        [ui.review_board, *form, ui.duplicate_asked],
        [ui.flag_status, ui.this_image_flags, ui.note, ui.duplicate_asked],
    ).success(
        page.refresh_board, _pick(ui, BOARD_INPUTS), [ui.review_board], show_progress=QUIET_PROGRESS
    )
    ui.evaluate_button.click(
        page.evaluate_split, [ui.model_a, ui.model_b], _pick(ui, DATASET_VIEWS)
    ).then(page.refresh_board, _pick(ui, BOARD_INPUTS), [ui.review_board])
    ui.worst_table.select(
        page.open_worst, [ui.worst_table, ui.review_board], [ui.tabs, ui.review_board]
    )


def _wire_flags(page: Page, ui: SimpleNamespace) -> None:
    """The Flags tab's table, history, status changes and export; the upload tab."""
    filters = [ui.flags_status, ui.flags_severity, ui.flags_category, ui.flags_reviewer]
    ui.refresh_flags.click(page.list_flags, filters, [ui.all_flags])
    ui.tabs.select(page.list_flags, filters, [ui.all_flags])
    ui.all_flags.select(
        page.pick_flag, [ui.all_flags], [ui.selected_flag, ui.history, ui.status_message]
    )
    ui.apply_status.click(
        page.change_status,
        [ui.selected_flag, ui.new_status, ui.reviewer, *filters],
        [ui.status_message, ui.history, ui.all_flags],
    )
    ui.export_button.click(
        page.export_flags,
        [ui.flags_status, ui.flags_severity, ui.flags_category, ui.export_formats],
        [ui.export_message, ui.export_file],
    )
    # preprocess=False: the handlers read the uploaded file themselves (see handlers._rgb),
    # bounded by the pixel limit; the inputs' other values are plain strings and numbers.
    ui.run_upload.click(
        page.predict_upload,
        [ui.upload, ui.upload_model_a, ui.upload_model_b, ui.opacity],
        [ui.upload_a, ui.upload_b, ui.upload_diff, ui.upload_summary, ui.upload_legend],
        preprocess=False,
    )
    form = [ui.reviewer, ui.upload_target, ui.upload_severity, ui.upload_category, ui.upload_note]
    ui.flag_upload_button.click(
        page.flag_upload,
        [ui.upload, ui.upload_model_a, ui.upload_model_b, *form, ui.upload_duplicate_asked],
        [ui.upload_status, ui.upload_duplicate_asked],
        preprocess=False,
    )
