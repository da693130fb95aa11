"""The Gradio review app: wiring only. Everything it shows comes from the workbench service,
the panel and plot functions, and the review store. Per-browser-session state lives in
component values (the review board's above all), so several people can review at once
without seeing each other's selection."""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from db.schema import SEVERITIES, STATUSES
from db.store import FlagRecord, ValidationError
from models.catalogue import UPLOAD_KIND
from models.checkpoints import CheckpointError
from models.conditions import condition_tags
from models.datasets import DatasetError
from models.labels import CLASS_NAMES, NUM_EVALUATED
from models.scoring import SplitScores, class_rows, group_iou_rows, split_rows
from reviewer import board, panels
from reviewer.export import FORMATS, ExportError, export_report, zip_export
from reviewer.overlays import LEGEND_CSS
from reviewer.plots import class_iou_bars, group_confusion_figure, group_iou_bars
from reviewer.workbench import FLAG_STATES, SORT_KEYS, Workbench

log = logging.getLogger(__name__)

WORST_IMAGES = 25
"""Images in the Dataset tab's worst-images table."""

IMAGE_HEIGHT = 240
"""Display height of the image panels in pixels (they keep their aspect ratio)."""

AGREEMENT_SCOPES = ("critical pixels", "all labelled pixels")
"""The agreement toggle's choices, indexed by ``agreement_on_all_pixels``."""

TARGET_LABELS = {
    "ground_truth": "ground truth",
    "model_a": "model A",
    "model_b": "model B",
    "both_models": "both models",
}
"""Flag targets as a person reads them; the keys are the store's values."""

CSS = (
    LEGEND_CSS
    + """
#flag-status { min-height: 1.5em; }
"""
)

EXPECTED_ERRORS = (
    ValueError,
    KeyError,
    DatasetError,
    CheckpointError,
    ValidationError,
    ExportError,
    FileNotFoundError,
    PermissionError,
)


def readable(error: Exception, where: str) -> str:
    """The message a person sees for a failure; unexpected ones are logged in full."""
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, EXPECTED_ERRORS):
        return str(error)
    log.error("unexpected error in %s:\n%s", where, "".join(traceback.format_exception(error)))
    return f"Unexpected error ({type(error).__name__}): {error}"


def friendly(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Show failures as a readable message in the page, never as a traceback."""

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:
            raise gr.Error(readable(error, handler.__name__), print_exception=False) from None

    return wrapped


@dataclass(frozen=True)
class AppOptions:
    """What the app needs besides the workbench."""

    export_dir: Path


def _frame(rows: list[list], headers: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=headers)


FLAG_HEADERS = [
    "id",
    "image",
    "target",
    "severity",
    "category",
    "status",
    "reviewer",
    "note",
    "region",
    "updated",
]
HISTORY_HEADERS = ["when", "who", "action", "changes"]


def build_app(bench: Workbench, options: AppOptions) -> gr.Blocks:
    """The Blocks app for one workbench; launch it with :func:`launch`."""
    groups = bench.groups
    catalogue = bench.catalogue
    default_a, default_b = catalogue.pair_for(bench.dataset.kind)
    upload_a_default, upload_b_default = catalogue.pair_for(UPLOAD_KIND)
    annotated = bench.dataset.annotated_classes
    store = bench.store

    def model_card(name: str) -> str:
        model = bench.model(name)
        meta = model.checkpoint.metadata
        mismatch = catalogue[name].mismatch(bench.dataset.kind)
        lines = [f"⚠️ **Not trained on this kind of data:** {escape(mismatch)}"] if mismatch else []
        lines += [
            f"**{escape(name)}** · loss `{escape(str(meta.loss or 'unknown'))}` · "
            f"width {meta.width:g} · input {meta.input_size[0]}x{meta.input_size[1]} · "
            f"sha256 `{model.hash[:12]}`",
            f"preprocessing: {escape(model.checkpoint.preprocessing.describe())}",
        ]
        if meta.groups is not None:
            lines.append("groups: " + escape(" < ".join(meta.groups.names)))
        lines.append(f"trained on: {escape(catalogue[name].data_name)}")
        if meta.epochs:
            lines.append(f"epochs: {meta.epochs}")
        if model.checkpoint.assumed_preprocessing:
            lines.append(
                "⚠️ **bare recipe checkpoint: preprocessing assumed** (BGR, /255, 96x96 "
                "nearest); scores are only meaningful if it was trained that way."
            )
        return "  \n".join(lines)

    # ----------------------------------------------------------------- handlers

    @friendly
    def on_models(name_a: str, name_b: str) -> tuple[str, str]:
        return model_card(name_a), model_card(name_b)

    @friendly
    def refresh_board(
        name_a: str,
        name_b: str,
        sort_key: str,
        status: str,
        group: str,
        condition: str,
        opacity: float,
        shown_groups: list[str],
        hidden: list[str],
        agreement_scope: str,
        board_value: str,
        to_top: bool = False,
    ) -> str:
        """The board with the queue for the filters and the display options chosen."""
        rows = bench.queue(name_a, name_b, sort_key, status, group, condition)
        display = board.Display(
            model_a=name_a,
            model_b=name_b,
            opacity=float(opacity),
            shown_groups=tuple(shown_groups or ()),
            hidden_classes=tuple(hidden or ()),
            agreement_on_all_pixels=agreement_scope == AGREEMENT_SCOPES[1],
        )
        queue = tuple(
            board.QueueEntry(r.sample_id, r.group or "", r.value, r.flags, r.flag_status)
            for r in rows
        )
        unranked = sort_key != "name" and all(row.value is None for row in rows)
        label = f"{sort_key} (not scored yet, so in name order)" if unranked else sort_key
        state = board.BoardState.from_json(board_value)
        changes = {"queue": queue, "display": display, "score_label": label, "to_top": to_top}
        return state.updated(**changes).to_json()

    def reorder_board(*controls: Any) -> str:
        """The board once the split's scores are in: its queue is ranked now."""
        return refresh_board(*controls, to_top=True)

    def check_scoring() -> tuple[str, gr.Timer, Any]:
        """Progress of the split's first evaluation while it runs behind the app; the last
        output turns True (once, in each page that waited) when its scores are in."""
        scoring = bench.background
        if scoring is None:
            return "", gr.Timer(active=False), gr.skip()
        if scoring.running:
            message = (
                f"⏳ Scoring the split with both models: {scoring.done} of {scoring.total} "
                "images. The queue is in name order until the scores are in."
            )
            return message, gr.Timer(active=True), gr.skip()
        failure = scoring.failure()
        if failure is not None:
            message = (
                f"⚠️ Scoring the split failed: {escape(readable(failure, 'scoring'))}. "
                "*Evaluate* in the Dataset tab tries again."
            )
            return message, gr.Timer(active=False), gr.skip()
        return "", gr.Timer(active=False), True

    def show_scoring() -> tuple[str, gr.Timer]:
        """On page load: the scoring's progress, and its poll started if it still runs."""
        message, timer, _ = check_scoring()
        return message, timer

    def fetch_panels(request: list) -> dict[str, Any]:
        """Answer the board script: the panels of one image as the person wants them drawn.
        Failures come back as ``{"error": message}`` for the board to show."""
        try:
            sample_id, display_data = request
            display = board.display_from_request(display_data)
            view = bench.view(str(sample_id), display.model_a, display.model_b)
            drawn = panels.render_panels(view, display.options(groups))
            return board.panel_payload(view.sample_id, condition_tags(view.meta or {}), drawn)
        except Exception as error:
            return {"error": readable(error, "fetch_panels")}

    def shown_image(board_value: str) -> tuple[str | None, board.Display | None]:
        state = board.BoardState.from_json(board_value)
        return state.current, state.display

    @friendly
    def show_details(board_value: str, full_matrix: str) -> tuple[Any, ...]:
        """Legend, tables and plots of the image the board shows, sent once it is drawn."""
        sample_id, display = shown_image(board_value)
        if not sample_id or display is None:
            return (None, None, None, image_flags(None), None, None, None)
        view = bench.view(sample_id, display.model_a, display.model_b)
        figure_a, figure_b = panels.confusion_figures(view, groups, full_matrix == "classes")
        return (
            panels.class_legend(view) + panels.code_legends(),
            _frame(panels.scores_table(view), panels.SCORE_HEADERS),
            _frame(panels.instance_rows(view), panels.INSTANCE_HEADERS),
            image_flags(sample_id),
            panels.iou_figure(view, groups, annotated),
            figure_a,
            figure_b,
        )

    def image_flags(sample_id: str | None) -> pd.DataFrame:
        if not sample_id:
            return _frame([], FLAG_HEADERS)
        flags = store.list_flags(image_id=bench.image_id(sample_id))
        return _frame([_flag_row(f) for f in flags], FLAG_HEADERS)

    @friendly
    def open_worst(event: gr.SelectData, table: pd.DataFrame, board_value: str) -> tuple[Any, ...]:
        sample_id = str(table.iloc[_selected_row(event)]["image"])
        opened = board.BoardState.from_json(board_value).opening(sample_id)
        return gr.Tabs(selected="review"), opened.to_json()

    def create_flag(
        image_id: int,
        name_a: str,
        name_b: str,
        reviewer: str,
        target: str,
        severity: str,
        category: str,
        note: str,
        region_text: str = "",
    ) -> FlagRecord:
        """A flag from the form's values; the store validates and writes it with its event."""
        return store.create_flag(
            image_id=image_id,
            reviewer=reviewer or "",
            target=_target_key(target),
            model_a_id=bench.model_id(name_a),
            model_b_id=bench.model_id(name_b),
            severity=severity,
            category=category,
            note=note or "",
            region=parse_region(region_text),
        )

    @friendly
    def save_flag(
        board_value: str,
        reviewer: str,
        target: str,
        severity: str,
        category: str,
        note: str,
        region_text: str,
    ) -> tuple[str, pd.DataFrame, str, str]:
        """Flag the image the board shows, against the pair of models it shows."""
        sample_id, display = shown_image(board_value)
        if not sample_id or display is None:
            raise ValueError("Pick an image before flagging it.")
        judgement = (reviewer, target, severity, category, note)
        flag = create_flag(
            bench.image_id(sample_id), display.model_a, display.model_b, *judgement, region_text
        )
        message = (
            f"✅ Saved flag #{flag.id} on {escape(sample_id)} "
            f"({flag.severity}, {escape(flag.category)}) by {escape(flag.reviewer)}."
        )
        return message, image_flags(sample_id), "", reviewer

    @friendly
    def fill_region_from_instance(event: gr.SelectData, instances: pd.DataFrame) -> str:
        box = instances.iloc[_selected_row(event)]["box"]
        numbers = [int(part[1:]) for part in box.replace("–", " ").split()]
        return ", ".join(str(n) for n in numbers)

    @friendly
    def evaluate_split(
        name_a: str,
        name_b: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's API)
    ) -> tuple[Any, ...]:
        progress((0, len(bench.dataset)), desc="Evaluating the split with both models")
        result = bench.evaluate(
            name_a,
            name_b,
            progress=lambda done, total: progress((done, total), desc="Evaluating", unit="images"),
        )
        return dataset_outputs(result)

    def dataset_outputs(result: SplitScores) -> tuple[Any, ...]:
        a, b = result.models["A"], result.models["B"]
        classes = [
            [row[0], groups.group_name_of(train_id), *row[1:]]
            for train_id, row in enumerate(class_rows(result.models))
        ]
        summary = split_rows(result.models) + group_iou_rows(result.models)
        return (
            f"Evaluated {len(result.images)} images of {escape(bench.dataset.describe())}.",
            _frame(classes, ["class", "group", "IoU A", "IoU B"]),
            _frame(summary, ["score", "A", "B"]),
            class_iou_bars(
                {"A": list(a.iou), "B": list(b.iou)},
                groups,
                title="Per-class IoU over the split",
                annotated=[i in annotated for i in range(NUM_EVALUATED)],
            ),
            group_iou_bars({"A": a.to_dict()["group_iou"], "B": b.to_dict()["group_iou"]}, groups),
            group_confusion_figure(a.group_confusion, groups, "A: importance-group confusion"),
            group_confusion_figure(b.group_confusion, groups, "B: importance-group confusion"),
            _frame(panels.worst_rows(result, WORST_IMAGES), panels.WORST_HEADERS),
        )

    @friendly
    def show_dataset(name_a: str, name_b: str) -> tuple[Any, ...]:
        result = bench.split_result(name_a, name_b)
        if result is None:
            message = (
                "This pair of models has not been evaluated on the split since the app "
                "started: click *Evaluate* (progress is shown)."
            )
            return (message, *([None] * 7))
        return dataset_outputs(result)

    @friendly
    def list_all_flags(
        status: list[str], severity: list[str], category: list[str], reviewer: str
    ) -> pd.DataFrame:
        flags = store.list_flags(
            status=status or None,
            severity=severity or None,
            category=category or None,
            reviewer=reviewer.strip() or None if reviewer else None,
            dataset_id=bench.dataset_id,
            limit=1000,
        )
        return _frame([_flag_row(f) for f in flags], FLAG_HEADERS)

    @friendly
    def pick_flag(event: gr.SelectData, table: pd.DataFrame) -> tuple[int, pd.DataFrame, str]:
        flag_id = int(table.iloc[_selected_row(event)]["id"])
        return flag_id, history_frame(flag_id), f"Flag #{flag_id} selected."

    def history_frame(flag_id: int | None) -> pd.DataFrame:
        if not flag_id:
            return _frame([], HISTORY_HEADERS)
        events = store.flag_history(int(flag_id))
        return _frame(
            [
                [
                    e.at.strftime("%Y-%m-%d %H:%M:%S"),
                    e.reviewer,
                    e.action,
                    "; ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in e.changes.items()),
                ]
                for e in events
            ],
            HISTORY_HEADERS,
        )

    @friendly
    def change_status(
        flag_id: int | None,
        new_status: str,
        reviewer: str,
        filters_status: list[str],
        severity: list[str],
        category: list[str],
        who: str,
    ) -> tuple[str, pd.DataFrame, pd.DataFrame]:
        if not flag_id:
            raise ValueError("Select a flag in the table first.")
        flag = store.update_flag(int(flag_id), reviewer or "", status=new_status)
        return (
            f"Flag #{flag.id} is now {flag.status}.",
            history_frame(flag.id),
            list_all_flags(filters_status, severity, category, who),
        )

    @friendly
    def export_flags(
        status: list[str],
        severity: list[str],
        category: list[str],
        formats: list[str],
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's API)
    ) -> tuple[str, str]:
        if not formats:
            raise ValueError("Choose at least one export format.")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        result = export_report(
            options.export_dir / f"flags-{stamp}",
            store,
            formats=formats,
            status=status or None,
            severity=severity or None,
            category=category or None,
            model_sources=[model.path for model in catalogue.models.values()],
            engine=bench.engine,
            split_scores=bench.split_results(),
            groups=groups,
            progress=lambda done, total: progress((done, total), desc="Exporting", unit="images"),
        )
        archive = zip_export(result)
        notes = "".join(f"\n- {escape(problem)}" for problem in result.problems)
        message = (
            f"Exported {result.flag_count} flags on {result.image_count} images to "
            f"`{escape(str(result.out))}`; the download holds every file.{notes}"
        )
        return message, str(archive)

    @friendly
    def predict_upload(
        image: np.ndarray | None, name_a: str, name_b: str, opacity: float
    ) -> tuple[Any, ...]:
        if image is None:
            raise ValueError("Upload an image first.")
        image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
        view = bench.view_upload(image, name_a, name_b)
        drawn = panels.render_panels(view, panels.DisplayOptions(opacity=opacity))
        changed = float(view.models_differ.mean())
        used = " and ".join(escape(catalogue[name].label) for name in (name_a, name_b))
        notes = [catalogue[name].mismatch(UPLOAD_KIND) for name in (name_a, name_b)]
        warnings = "".join(f"  \n⚠️ {escape(note)}" for note in notes if note)
        return (
            drawn.prediction_a,
            drawn.prediction_b,
            drawn.disagreement,
            f"Predicted with {used}. The models disagree on {changed:.1%} of the pixels "
            f"(red).{warnings}",
            panels.class_legend(view),
        )

    @friendly
    def flag_upload(
        image: np.ndarray | None,
        name_a: str,
        name_b: str,
        reviewer: str,
        target: str,
        severity: str,
        category: str,
        note: str,
    ) -> str:
        if image is None:
            raise ValueError("Upload an image first.")
        upload_id = bench.add_upload(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
        flag = create_flag(upload_id, name_a, name_b, reviewer, target, severity, category, note)
        return f"✅ Saved flag #{flag.id} on your image (stored as {escape(flag.image_key)})."

    # ------------------------------------------------------------------ layout

    with gr.Blocks(title="SegNet review bench") as app:
        reviewer_memory = gr.BrowserState("", storage_key="segbench-reviewer")
        gr.Markdown(
            f"## SegNet review bench\n{escape(bench.dataset.describe())} · "
            f"importance groups: {escape(' < '.join(groups.names))}"
        )
        with gr.Row():
            with gr.Column():
                model_a = gr.Dropdown(catalogue.choices(), value=default_a, label="Model A")
                card_a = gr.Markdown(elem_id="model-a-card")
            with gr.Column():
                model_b = gr.Dropdown(catalogue.choices(), value=default_b, label="Model B")
                card_b = gr.Markdown(elem_id="model-b-card")
        scoring_status = gr.Markdown(elem_id="scoring-status")
        scoring_timer = gr.Timer(SCORING_POLL_SECONDS, active=False)
        scores_in = gr.State(False)
        with gr.Tabs() as tabs:
            with gr.Tab("Review", id="review"):
                with gr.Row():
                    sort_key = gr.Dropdown(
                        list(SORT_KEYS), value=next(iter(SORT_KEYS)), label="Order (worst first)"
                    )
                    status_filter = gr.Dropdown(list(FLAG_STATES), value="any", label="Flag status")
                    group_filter = gr.Dropdown(
                        ["any", *bench.groups_available()], value="any", label="City / sequence"
                    )
                    condition_filter = gr.Dropdown(
                        ["any", *bench.conditions_available()],
                        value="any",
                        label="Condition (synthetic set)",
                    )
                with gr.Row():
                    opacity = gr.Slider(
                        0,
                        1,
                        value=panels.DEFAULT_DISPLAY.opacity,
                        step=0.05,
                        label="Overlay opacity",
                    )
                    shown_groups = gr.CheckboxGroup(
                        list(groups.names), value=list(groups.names), label="Show groups"
                    )
                    hidden_classes = gr.Dropdown(
                        list(CLASS_NAMES), value=[], multiselect=True, label="Hide classes"
                    )
                    agreement_scope = gr.Radio(
                        list(AGREEMENT_SCOPES),
                        value=AGREEMENT_SCOPES[panels.DEFAULT_DISPLAY.agreement_on_all_pixels],
                        label="Disagreement judged on",
                    )
                with gr.Row():
                    with gr.Column(scale=4):
                        review_board = board.review_board(fetch_panels, elem_id="review-board")
                    with gr.Column(scale=1, min_width=300), gr.Group():
                        gr.Markdown("### Flag this image")
                        reviewer = gr.Textbox(
                            label="Reviewer", placeholder="your name", elem_id="reviewer-name"
                        )
                        target = gr.Radio(
                            list(TARGET_LABELS.values()), value="model A", label="What is wrong"
                        )
                        severity = gr.Radio(list(SEVERITIES), value="major", label="Severity")
                        category = gr.Dropdown(
                            store.categories(), value=store.categories()[0], label="Category"
                        )
                        note = gr.Textbox(
                            label="Note", lines=3, max_length=10_000, elem_id="flag-note"
                        )
                        region = gr.Textbox(
                            label="Region x0, y0, x1, y1 (optional; click an object to fill)",
                            placeholder="e.g. 120, 40, 180, 130",
                        )
                        save_button = gr.Button("Save flag", variant="primary", elem_id="save-flag")
                        flag_status = gr.Markdown(elem_id="flag-status")
                with gr.Column(elem_id="review-details"):
                    legend = gr.HTML()
                    with gr.Row():
                        scores = gr.Dataframe(
                            headers=panels.SCORE_HEADERS,
                            interactive=False,
                            label="Scores on this image",
                            column_widths=["60%", "20%", "20%"],
                            wrap=True,
                        )
                        instances = gr.Dataframe(
                            headers=panels.INSTANCE_HEADERS,
                            interactive=False,
                            label="Objects (click one to use its box as flag region)",
                        )
                    iou_plot = gr.Plot(label="Per-class IoU")
                    matrix_kind = gr.Radio(
                        ["groups", "classes"], value="groups", label="Confusion matrix"
                    )
                    with gr.Row():
                        confusion_a = gr.Plot(label="Confusion of A")
                        confusion_b = gr.Plot(label="Confusion of B")
                    this_image_flags = gr.Dataframe(
                        headers=FLAG_HEADERS, interactive=False, label="Flags on this image"
                    )
            with gr.Tab("Dataset", id="dataset"):
                evaluate_button = gr.Button(
                    "Evaluate the split with both models", variant="primary"
                )
                evaluation_status = gr.Markdown()
                with gr.Row():
                    class_table = gr.Dataframe(interactive=False, label="Per-class IoU")
                    summary_table = gr.Dataframe(interactive=False, label="Split scores")
                split_iou_plot = gr.Plot()
                split_group_plot = gr.Plot()
                with gr.Row():
                    split_confusion_a = gr.Plot()
                    split_confusion_b = gr.Plot()
                worst_table = gr.Dataframe(
                    interactive=False,
                    label="Worst images (click one to review it)",
                    elem_id="worst-images",
                )
            with gr.Tab("Flags", id="flags"):
                with gr.Row():
                    flags_status = gr.Dropdown(list(STATUSES), multiselect=True, label="Status")
                    flags_severity = gr.Dropdown(
                        list(SEVERITIES), multiselect=True, label="Severity"
                    )
                    flags_category = gr.Dropdown(
                        store.categories(), multiselect=True, label="Category"
                    )
                    flags_reviewer = gr.Textbox(label="Reviewer")
                    refresh_flags = gr.Button("Refresh")
                all_flags = gr.Dataframe(
                    headers=FLAG_HEADERS,
                    interactive=False,
                    label="All flags (click one for its history)",
                    elem_id="all-flags",
                )
                selected_flag = gr.State(None)
                with gr.Row():
                    new_status = gr.Dropdown(
                        list(STATUSES), value="confirmed", label="Set status of the selected flag"
                    )
                    apply_status = gr.Button("Apply")
                status_message = gr.Markdown()
                history = gr.Dataframe(
                    headers=HISTORY_HEADERS, interactive=False, label="Audit trail"
                )
                with gr.Group():
                    gr.Markdown("### Export the flags matching the filters above")
                    with gr.Row():
                        export_formats = gr.CheckboxGroup(
                            list(FORMATS), value=list(FORMATS), label="Formats"
                        )
                        export_button = gr.Button("Export", variant="primary")
                    export_message = gr.Markdown(elem_id="export-message")
                    export_file = gr.File(label="Download", interactive=False)
            with gr.Tab("Your image", id="upload"):
                with gr.Row():
                    upload = gr.Image(
                        label="Your road scene", type="numpy", sources=["upload", "clipboard"]
                    )
                    with gr.Column():
                        upload_model_a = gr.Dropdown(
                            catalogue.choices(), value=upload_a_default, label="Model A"
                        )
                        upload_model_b = gr.Dropdown(
                            catalogue.choices(), value=upload_b_default, label="Model B"
                        )
                        run_upload = gr.Button("Predict with both models", variant="primary")
                        upload_summary = gr.Markdown()
                        upload_legend = gr.HTML()
                with gr.Row():
                    upload_a = panel_image("Prediction A")
                    upload_b = panel_image("Prediction B")
                    upload_diff = panel_image("Where A and B differ")
                with gr.Row():
                    upload_target = gr.Radio(
                        list(TARGET_LABELS.values())[1:], value="model A", label="What is wrong"
                    )
                    upload_severity = gr.Radio(list(SEVERITIES), value="major", label="Severity")
                    upload_category = gr.Dropdown(
                        store.categories(), value=store.categories()[0], label="Category"
                    )
                upload_note = gr.Textbox(label="Note", lines=2, max_length=10_000)
                flag_upload_button = gr.Button("Flag this image")
                upload_status = gr.Markdown()

        # ------------------------------------------------------------- events
        detail_inputs = [review_board, matrix_kind]
        detail_outputs = [
            legend,
            scores,
            instances,
            this_image_flags,
            iou_plot,
            confusion_a,
            confusion_b,
        ]
        board_inputs = [
            model_a,
            model_b,
            sort_key,
            status_filter,
            group_filter,
            condition_filter,
            opacity,
            shown_groups,
            hidden_classes,
            agreement_scope,
            review_board,
        ]

        app.load(on_models, [model_a, model_b], [card_a, card_b])
        dataset_views = [
            evaluation_status,
            class_table,
            summary_table,
            split_iou_plot,
            split_group_plot,
            split_confusion_a,
            split_confusion_b,
            worst_table,
        ]
        for event in (app.load, model_a.change, model_b.change):
            event(show_dataset, [model_a, model_b], dataset_views)
        app.load(lambda remembered: remembered or "", [reviewer_memory], [reviewer])
        for trigger in (model_a, model_b):
            trigger.change(on_models, [model_a, model_b], [card_a, card_b])
        board_events = [
            app.load,
            *(
                control.change
                for control in (
                    sort_key,
                    status_filter,
                    group_filter,
                    condition_filter,
                    model_a,
                    model_b,
                    opacity,
                    shown_groups,
                    hidden_classes,
                    agreement_scope,
                )
            ),
        ]
        for event in board_events:
            event(refresh_board, board_inputs, [review_board], show_progress=QUIET_PROGRESS)
        scoring_outputs = [scoring_status, scoring_timer, scores_in]
        app.load(show_scoring, None, scoring_outputs[:2], show_progress="hidden")
        scoring_timer.tick(check_scoring, None, scoring_outputs, show_progress="hidden")
        scores_in.change(reorder_board, board_inputs, [review_board]).then(
            show_dataset, [model_a, model_b], dataset_views
        )
        for event in (review_board.navigate, matrix_kind.change):
            event(
                show_details,
                detail_inputs,
                detail_outputs,
                show_progress=QUIET_PROGRESS,
                trigger_mode="always_last",
            )
        instances.select(fill_region_from_instance, [instances], [region])
        reviewer.change(lambda name: name, [reviewer], [reviewer_memory])
        save_button.click(
            save_flag,
            [review_board, reviewer, target, severity, category, note, region],
            [flag_status, this_image_flags, note, reviewer_memory],
        ).success(refresh_board, board_inputs, [review_board], show_progress=QUIET_PROGRESS)
        evaluate_button.click(evaluate_split, [model_a, model_b], dataset_views).then(
            refresh_board, board_inputs, [review_board]
        )
        worst_table.select(open_worst, [worst_table, review_board], [tabs, review_board])
        flag_filters = [flags_status, flags_severity, flags_category, flags_reviewer]
        refresh_flags.click(list_all_flags, flag_filters, [all_flags])
        tabs.select(list_all_flags, flag_filters, [all_flags])
        all_flags.select(pick_flag, [all_flags], [selected_flag, history, status_message])
        apply_status.click(
            change_status,
            [selected_flag, new_status, reviewer, *flag_filters],
            [status_message, history, all_flags],
        )
        export_button.click(
            export_flags,
            [flags_status, flags_severity, flags_category, export_formats],
            [export_message, export_file],
        )
        run_upload.click(
            predict_upload,
            [upload, upload_model_a, upload_model_b, opacity],
            [upload_a, upload_b, upload_diff, upload_summary, upload_legend],
        )
        flag_upload_button.click(
            flag_upload,
            [
                upload,
                upload_model_a,
                upload_model_b,
                reviewer,
                upload_target,
                upload_severity,
                upload_category,
                upload_note,
            ],
            [upload_status],
        )
    return app


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


def panel_image(label: str, elem_id: str | None = None) -> gr.Image:
    """A read-only image panel."""
    return gr.Image(
        label=label, interactive=False, format=PANEL_FORMAT, height=IMAGE_HEIGHT, elem_id=elem_id
    )


def _selected_row(event: gr.SelectData) -> int:
    """Row index of a Dataframe selection (Gradio gives [row, column])."""
    index = event.index
    return int(index[0] if isinstance(index, list | tuple) else index)


def _target_key(label: str) -> str:
    for key, text in TARGET_LABELS.items():
        if label in (key, text):
            return key
    raise ValueError(f"unknown flag target {label!r}; choose one of {', '.join(TARGET_LABELS)}")


def parse_region(text: str | None) -> tuple[int, int, int, int] | None:
    """``"x0, y0, x1, y1"`` -> a box; empty -> None; anything else a clear error."""
    if text is None or not text.strip():
        return None
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ValueError(
            f"region must be four whole numbers x0, y0, x1, y1; got {text!r}"
        ) from None
    if len(numbers) != 4:
        raise ValueError(f"region must be four whole numbers x0, y0, x1, y1; got {text!r}")
    x0, y0, x1, y1 = numbers
    return x0, y0, x1, y1


def _flag_row(flag: FlagRecord) -> list:
    region = "" if flag.region is None else ", ".join(str(v) for v in flag.region.as_list())
    return [
        flag.id,
        flag.image_key,
        TARGET_LABELS.get(flag.target, flag.target),
        flag.severity,
        flag.category,
        flag.status,
        flag.reviewer,
        flag.note,
        region,
        flag.updated_at.strftime("%Y-%m-%d %H:%M"),
    ]
