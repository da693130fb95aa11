"""What the review app does when someone acts in the page, as plain functions and small
objects over the services. They take and return plain values (markdown strings, lists of
table rows, figures, the board's JSON) and raise ordinary exceptions; turning those into
Gradio components, updates and error pop-ups is :mod:`reviewer.app`'s job, so every
behaviour here is testable without a running page."""

from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from db.engine import DatabaseAccessError
from db.store import FlagRecord, ValidationError
from models.catalogue import UPLOAD_KIND
from models.checkpoints import CheckpointError
from models.comparison import Comparison, compare_split
from models.conditions import condition_tags
from models.datasets import DatasetError, SkippedFile, count_of, read_picture, skipped_lines
from models.evaluate import ProgressCallback, all_skipped
from models.labels import NUM_EVALUATED
from models.object_sizes import HEADLINE_CLASS, ObjectsBySize, objects_by_size
from models.scoring import SplitScores, class_rows, group_iou_rows, split_rows
from reviewer import board, panels
from reviewer.background import LOADING, BackgroundScoring
from reviewer.export import ExportError, export_report, zip_export
from reviewer.flag_text import ACTIONS, TARGET_LABELS, box_text, change_text, target_text
from reviewer.plots import class_iou_bars, group_confusion_figure, group_iou_bars
from reviewer.review_plots import MATRIX_KINDS
from reviewer.text import markdown_text
from reviewer.workbench import Workbench

log = logging.getLogger(__name__)

WORST_IMAGES = 25
"""Images in the Dataset tab's worst-images table."""

AGREEMENT_SCOPES = ("critical pixels", "all labelled pixels")
"""The agreement toggle's choices, indexed by ``agreement_on_all_pixels``."""

ERROR_MAP_MODES = ("importance (miss / false alarm)", "kind (boundary / extent / segment)")
"""The error-map toggle's choices, indexed by ``errors_by_kind``."""

FLAG_HEADERS = [
    "id",
    "image",
    "target",
    "model A",
    "model B",
    "severity",
    "category",
    "status",
    "reviewer",
    "note",
    "region",
    "updated",
]
HISTORY_HEADERS = ["when", "who", "action", "what"]
CLASS_HEADERS = ["class", "group", "IoU A", "IoU B", "Boundary IoU A", "Boundary IoU B"]
SUMMARY_HEADERS = ["score", "A", "B"]

EXPECTED_ERRORS = (
    DatabaseAccessError,
    ValueError,
    KeyError,
    DatasetError,
    CheckpointError,
    ValidationError,
    ExportError,
    FileNotFoundError,
    PermissionError,
)
"""Failures a person can act on; anything else is a bug and is logged in full."""

Rows = list[list]

NO_REVIEWER = (
    "Type your name in the Reviewer box at the top of the page first: every flag and "
    "status change records who made it."
)


class DuplicateFlag(ValueError):
    """The form repeats an open flag of the image: the person is asked before a second
    identical flag is written (saving the same form again confirms)."""

    def __init__(self, existing: FlagRecord, signature: str) -> None:
        super().__init__(
            f"Flag #{existing.id} on this image already says exactly this and is still open. "
            "Save again to add a second, identical flag."
        )
        self.existing = existing
        self.signature = signature
        """What the form said; the confirmation must say the same."""


def readable(error: BaseException, where: str) -> str:
    """The message a person sees for a failure; unexpected ones are logged in full."""
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, EXPECTED_ERRORS):
        return str(error)
    log.error("unexpected error in %s:\n%s", where, "".join(traceback.format_exception(error)))
    return f"Unexpected error ({type(error).__name__}): {error}"


def model_card(bench: Workbench, name: str) -> str:
    """Markdown describing a model: what it is, how it was trained, and whether it fits
    the data on screen (a misfit is said first, as a warning)."""
    model = bench.registry.model(name)
    meta = model.checkpoint.metadata
    entry = bench.catalogue[name]
    mismatch = entry.mismatch(bench.dataset.kind)
    lines = (
        [f"**Warning: Not trained on this kind of data:** {markdown_text(mismatch)}"]
        if mismatch
        else []
    )
    lines += [
        f"**{markdown_text(name)}** · loss {markdown_text(meta.loss or 'unknown')} · "
        f"width {meta.width:g} · input {meta.input_size[0]}x{meta.input_size[1]} · "
        f"sha256 `{model.hash[:12]}`",
        f"preprocessing: {markdown_text(model.checkpoint.preprocessing.describe())}",
    ]
    if meta.groups is not None:
        lines.append("groups: " + markdown_text(" < ".join(meta.groups.names)))
    lines.append(f"trained on: {markdown_text(entry.data_name)}")
    if meta.epochs:
        lines.append(f"epochs: {meta.epochs}")
    if model.checkpoint.assumed_preprocessing:
        lines.append(
            "**Warning: bare recipe checkpoint: preprocessing assumed** (BGR, /255, 96x96 "
            "nearest); scores are only meaningful if it was trained that way."
        )
    return "  \n".join(lines)


def default_pairs(bench: Workbench) -> tuple[tuple[str, str], tuple[str, str]]:
    """The pairs the pickers start with: one fit for the split, one for uploaded photos."""
    return bench.catalogue.pair_for(bench.dataset.kind), bench.catalogue.pair_for(UPLOAD_KIND)


@dataclass(frozen=True)
class ScoringProgress:
    """Where the split's first evaluation behind the app stands, for the page's banner."""

    message: str
    polling: bool
    """Whether the page should keep asking (the scoring still runs)."""
    scores_in: bool
    """True once the scores are in: the page then ranks its queue."""


def scoring_progress(scoring: BackgroundScoring | None) -> ScoringProgress:
    """The banner for a scoring that runs, failed or finished (none: nothing to say)."""
    if scoring is None:
        return ScoringProgress("", False, False)
    if scoring.running and scoring.stage == LOADING:
        message = (
            "Loading both models to look for the split's scores. The queue is in name "
            "order until they are in."
        )
        return ScoringProgress(message, True, False)
    if scoring.running:
        message = (
            f"Scoring the split with both models: {scoring.done} of {scoring.total} "
            "images. The queue is in name order until the scores are in."
        )
        return ScoringProgress(message, True, False)
    failure = scoring.failure()
    if failure is not None:
        message = (
            "**Warning:** scoring the split failed: "
            f"{markdown_text(readable(failure, 'scoring'))}. "
            "*Evaluate* in the Dataset tab tries again."
        )
        return ScoringProgress(message, False, False)
    return ScoringProgress("", False, True)


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


def region_text(boxes: list[tuple[int, int, int, int]], row: int) -> str:
    """The flag form's region for the object in row ``row`` of the objects table."""
    return box_text(boxes[row])


def suspect_flag(boxes: list[tuple[int, int, int, int]], row: int) -> tuple[str, str]:
    """The flag form's region and target for the suspect region in row ``row``: an
    annotator's flag, on the ground truth."""
    return region_text(boxes, row), TARGET_LABELS["ground_truth"]


def target_key(label: str) -> str:
    """The store's target for a form label (or for the store's value itself)."""
    for key, text in TARGET_LABELS.items():
        if label in (key, text):
            return key
    raise ValueError(f"unknown flag target {label!r}; choose one of {', '.join(TARGET_LABELS)}")


def reviewer_name(text: str | None) -> str:
    """The page's reviewer identity, required by every action that writes."""
    name = (text or "").strip()
    if not name:
        raise ValueError(NO_REVIEWER)
    return name


def flag_row(flag: FlagRecord) -> list:
    """A flag as a row under :data:`FLAG_HEADERS`."""
    return [
        flag.id,
        flag.image_key,
        target_text(flag.target, flag.model_a, flag.model_b),
        flag.model_a,
        flag.model_b,
        flag.severity,
        flag.category,
        flag.status,
        flag.reviewer,
        flag.note,
        "" if flag.region is None else box_text(flag.region.as_list()),
        flag.updated_at.strftime("%Y-%m-%d %H:%M"),
    ]


def shown_image(board_value: str) -> tuple[str | None, board.Display | None]:
    """The image the board shows and how, from the board's JSON value."""
    state = board.BoardState.from_json(board_value)
    return state.current, state.display


@dataclass(frozen=True)
class Details:
    """The class legend beside the board and the tables under it for the image it shows
    (its plots come from :meth:`ReviewDesk.fetch_plots`)."""

    legend: str | None = None
    score_rows: Rows | None = None
    instance_rows: Rows | None = None
    boxes: tuple[tuple[int, int, int, int], ...] = ()
    """The box of each row of ``instance_rows``, in order."""
    suspect_picture: np.ndarray | None = None
    """The image with its suspect ground-truth regions marked."""
    suspect_rows: Rows | None = None
    suspect_boxes: tuple[tuple[int, int, int, int], ...] = ()
    """The box of each row of ``suspect_rows``, in order."""
    flag_rows: Rows | None = None


@dataclass(frozen=True)
class FlagDesk:
    """Flags: written from the forms, listed for the tables, their status changed."""

    bench: Workbench

    def create(
        self,
        image_id: int,
        pair: tuple[str, str],
        judgement: tuple[str, str, str, str, str],
        region: str = "",
        confirmed: str = "",
    ) -> FlagRecord:
        """A flag from the form's (reviewer, target, severity, category, note); the store
        validates and writes it with its event. A copy of an open flag is refused with
        :class:`DuplicateFlag` unless ``confirmed`` is the signature that refusal gave."""
        reviewer, target, severity, category, note = judgement
        reviewer = reviewer_name(reviewer)
        fields = {
            "image_id": image_id,
            "target": target_key(target),
            "model_a_id": self.bench.registry.model_id(pair[0]),
            "model_b_id": self.bench.registry.model_id(pair[1]),
            "severity": severity,
            "category": category,
            "note": note or "",
            "region": parse_region(region),
        }
        signature = json.dumps(fields, sort_keys=True)
        existing = self._open_copy(fields)
        if existing is not None and confirmed != signature:
            raise DuplicateFlag(existing, signature)
        return self.bench.store.create_flag(reviewer=reviewer, **fields)

    def _open_copy(self, fields: dict[str, Any]) -> FlagRecord | None:
        """An open flag of the image that says what ``fields`` say, if any."""
        for flag in self.bench.store.list_flags(
            image_id=fields["image_id"], status="open", target=fields["target"]
        ):
            region = None if flag.region is None else tuple(flag.region.as_list())
            said = (flag.model_a_id, flag.model_b_id, flag.severity, flag.category, flag.note)
            wanted = tuple(fields[k] for k in ("model_a_id", "model_b_id", "severity"))
            if said == (*wanted, fields["category"], fields["note"]) and region == fields["region"]:
                return flag
        return None

    def image_rows(self, sample_id: str | None) -> Rows:
        """The flags on one image of the split (none without an image)."""
        if not sample_id:
            return []
        flags = self.bench.store.list_flags(image_id=self.bench.registry.image_id(sample_id))
        return [flag_row(f) for f in flags]

    def save_on_board(
        self,
        board_value: str,
        judgement: tuple[str, str, str, str, str],
        region: str,
        confirmed: str = "",
    ) -> tuple[str, Rows]:
        """Flag the image the board shows, against the pair of models it shows: the
        confirmation and the image's flags."""
        sample_id, display = shown_image(board_value)
        if not sample_id or display is None:
            raise ValueError("Pick an image before flagging it.")
        pair = (display.model_a, display.model_b)
        image_id = self.bench.registry.image_id(sample_id)
        flag = self.create(image_id, pair, judgement, region, confirmed)
        message = (
            f"Saved flag #{flag.id} on {markdown_text(sample_id)} "
            f"({flag.severity}, {markdown_text(flag.category)}) by {markdown_text(flag.reviewer)}."
        )
        return message, self.image_rows(sample_id)

    def rows(
        self, status: list[str], severity: list[str], category: list[str], reviewer: str
    ) -> Rows:
        """The flags of the split and of uploaded images matching the Flags tab's filters
        (an empty filter: any)."""
        datasets = [self.bench.registry.dataset_id]
        uploads = self.bench.uploads.dataset_id()
        flags = self.bench.store.list_flags(
            status=status or None,
            severity=severity or None,
            category=category or None,
            reviewer=(reviewer or "").strip() or None,
            dataset_id=datasets if uploads is None else [*datasets, uploads],
            limit=1000,
        )
        return [flag_row(f) for f in flags]

    def history_rows(self, flag_id: int | None) -> Rows:
        """A flag's audit trail under :data:`HISTORY_HEADERS` (none without a flag)."""
        if not flag_id:
            return []
        flag = self.bench.store.get_flag(int(flag_id))
        return [
            [
                e.at.strftime("%Y-%m-%d %H:%M:%S"),
                e.reviewer,
                ACTIONS.get(e.action, e.action),
                change_text(e.action, e.changes, (flag.model_a, flag.model_b)),
            ]
            for e in self.bench.store.flag_history(int(flag_id))
        ]

    def change_status(self, flag_id: int | None, new_status: str, reviewer: str) -> str:
        """Set the selected flag's status; the confirmation."""
        if not flag_id:
            raise ValueError("Select a flag in the table first.")
        flag = self.bench.store.update_flag(
            int(flag_id), reviewer_name(reviewer), status=new_status
        )
        return f"Flag #{flag.id} is now {flag.status}."


@dataclass(frozen=True)
class ReviewDesk:
    """The Review tab: the board's queue and panels, and the details under it."""

    bench: Workbench
    flags: FlagDesk

    def board(
        self,
        pair: tuple[str, str],
        filters: tuple[str, str, str, str],
        looks: tuple[float, list[str], list[str], str, str],
        board_value: str,
        to_top: bool = False,
    ) -> str:
        """The board's JSON with the queue for (order, flag status, sequence, condition)
        and the display (opacity, shown groups, hidden classes, agreement scope, error-map
        mode)."""
        sort_key = filters[0]
        rows = self.bench.queue.rows(*pair, *filters)
        opacity, shown_groups, hidden, agreement_scope, error_mode = looks
        display = board.Display(
            model_a=pair[0],
            model_b=pair[1],
            opacity=float(opacity),
            shown_groups=tuple(shown_groups or ()),
            hidden_classes=tuple(hidden or ()),
            agreement_on_all_pixels=agreement_scope == AGREEMENT_SCOPES[1],
            errors_by_kind=error_mode == ERROR_MAP_MODES[1],
        )
        queue = tuple(
            board.QueueEntry(r.sample_id, r.sequence or "", r.value, r.flags, r.flag_status)
            for r in rows
        )
        unranked = sort_key != "name" and all(row.value is None for row in rows)
        label = f"{sort_key} (not scored yet, so in name order)" if unranked else sort_key
        state = board.BoardState.from_json(board_value)
        changes = {"queue": queue, "display": display, "score_label": label, "to_top": to_top}
        return state.updated(**changes).to_json()

    def fetch_panels(self, request: list) -> dict[str, Any]:
        """Answer the board script: the panels of one image as the person wants them drawn
        (at full resolution when its third item is true, for a zoom). The scores and
        suspect regions wait for :meth:`details` unless the error maps are drawn by kind.
        Failures come back as ``{"error": message}`` for the board to show."""
        try:
            sample_id, display_data, *full_resolution = request
            display = board.display_from_request(display_data)
            compose = (
                self.bench.views.view if display.errors_by_kind else self.bench.views.panels_view
            )
            view = compose(str(sample_id), display.model_a, display.model_b)
            drawn = panels.render_panels(view, display.options(self.bench.groups))
            tags = condition_tags(view.meta or {})
            width = None if any(full_resolution) else board.PANEL_MAX_WIDTH
            return board.panel_payload(view.sample_id, tags, drawn, width)
        except Exception as error:
            return {"error": readable(error, "fetch_panels")}

    def details(self, board_value: str) -> Details:
        """Legend and tables of the image the board shows, sent once it is drawn."""
        sample_id, display = shown_image(board_value)
        if not sample_id or display is None:
            return Details(flag_rows=[])
        view = self.bench.views.view(sample_id, display.model_a, display.model_b)
        return Details(
            legend=panels.class_legend(view),
            score_rows=panels.scores_table(view),
            instance_rows=panels.instance_rows(view),
            boxes=tuple(panels.instance_boxes(view)),
            suspect_picture=panels.suspect_picture(view),
            suspect_rows=panels.suspect_rows(view),
            suspect_boxes=tuple(panels.suspect_boxes(view)),
            flag_rows=self.flags.image_rows(sample_id),
        )

    def fetch_plots(self, request: list) -> dict[str, Any]:
        """Answer the plots script: the per-class IoU bars and the confusion heatmaps of A
        and B (``[sample_id, display, matrix kind]``, the kind one of
        :data:`~reviewer.review_plots.MATRIX_KINDS`) as Plotly JSON, None for a figure the
        image has not (no ground truth). Failures come back as ``{"error": message}``."""
        try:
            sample_id, display_data, matrix = request
            display = board.display_from_request(display_data)
            view = self.bench.views.view(str(sample_id), display.model_a, display.model_b)
            groups = self.bench.groups
            iou = panels.iou_figure(view, groups, self.bench.dataset.annotated_classes)
            confusions = panels.confusion_figures(view, groups, matrix == MATRIX_KINDS[1])
            figures = [None if f is None else f.to_json() for f in (iou, *confusions)]
            return {"id": view.sample_id, "figures": figures}
        except Exception as error:
            return {"error": readable(error, "fetch_plots")}


@dataclass(frozen=True)
class DatasetSummary:
    """The Dataset tab's contents for one pair: a message, tables and figures."""

    message: str
    comparison_rows: Rows | None = None
    """B - A with its 95% interval and verdict for every score (the tab leads with it)."""
    comparison_title: str = ""
    class_rows: Rows | None = None
    summary_rows: Rows | None = None
    iou: Any = None
    group_iou: Any = None
    confusion_a: Any = None
    confusion_b: Any = None
    worst_rows: Rows | None = None
    objects_message: str = ""
    """Misses of :data:`HEADLINE_CLASS` by size ("small persons missed: A 41%, B 28% ...")."""
    object_rows: Rows | None = None
    """Objects and misses per class and size, B - A of the miss rates with intervals."""


@dataclass(frozen=True)
class PairStatistics:
    """The paired-bootstrap statistics of one split result: B - A of every score and of
    the objects' miss rates."""

    comparison: Comparison
    objects: ObjectsBySize


NOT_EVALUATED = (
    "This pair of models has not been evaluated on the split since the app "
    "started: click *Evaluate* (progress is shown)."
)


@dataclass(frozen=True)
class DatasetView:
    """The Dataset tab: the split's scores for a pair, evaluated on request."""

    bench: Workbench
    _statistics: dict[int, tuple[SplitScores, PairStatistics]] = field(default_factory=dict)
    """The statistics of each split result shown, kept with it: pickers and page loads show
    the same result again and again, and resampling it each time would make them wait."""

    def statistics(self, result: SplitScores) -> PairStatistics:
        """The paired bootstraps of B - A on this result (computed once per result)."""
        kept = self._statistics.get(id(result))
        if kept is None or kept[0] is not result:
            objects = objects_by_size(result.images, ["A", "B"])
            kept = (result, PairStatistics(compare_split(result), objects))
            self._statistics[id(result)] = kept
        return kept[1]

    def evaluate(
        self, pair: tuple[str, str], progress: ProgressCallback | None = None
    ) -> DatasetSummary:
        """Evaluate the split with the pair (filling the score cache) and show it."""
        return self.summary(self.bench.scores.evaluate(*pair, progress=progress))

    def show(self, pair: tuple[str, str]) -> DatasetSummary:
        """The pair's scores if it was evaluated since start, else how to get them."""
        result = self.bench.scores.split_result(*pair)
        return DatasetSummary(NOT_EVALUATED) if result is None else self.summary(result)

    def summary(self, result: SplitScores) -> DatasetSummary:
        """The tab for one evaluation: per-class and summary tables, the plots and the
        worst images (ranked as the queue ranks them)."""
        groups = self.bench.groups
        annotated = self.bench.dataset.annotated_classes
        a, b = result.models["A"], result.models["B"]
        classes = [
            [row[0], groups.group_name_of(train_id), *row[1:]]
            for train_id, row in enumerate(class_rows(result.models, with_boundary_iou=True))
        ]
        statistics = self.statistics(result)
        comparison = statistics.comparison
        dataset = self.bench.dataset
        return DatasetSummary(
            f"Evaluated {count_of(len(result.images), 'image')} of "
            f"{markdown_text(dataset.describe())}."
            + skipped_markdown(all_skipped(dataset, result), dataset.root),
            comparison.rows(),
            comparison.title,
            classes,
            split_rows(result.models) + group_iou_rows(result.models),
            class_iou_bars(
                {"A": list(a.iou), "B": list(b.iou)},
                groups,
                title="Per-class IoU over the split",
                annotated=[i in annotated for i in range(NUM_EVALUATED)],
            ),
            group_iou_bars({"A": a.to_dict()["group_iou"], "B": b.to_dict()["group_iou"]}, groups),
            group_confusion_figure(a.group_confusion, groups, "A: importance-group confusion"),
            group_confusion_figure(b.group_confusion, groups, "B: importance-group confusion"),
            panels.worst_rows(result, WORST_IMAGES),
            statistics.objects.headline(HEADLINE_CLASS),
            statistics.objects.rows() if statistics.objects.annotated else None,
        )


SKIPPED_LISTED = 50
"""Skipped files the Dataset tab lists by name (then how many more)."""


def skipped_markdown(skipped: list[SkippedFile], root: Path) -> str:
    """The files left out of the evaluation with their reasons, as Markdown to follow the
    tab's message (nothing when none was)."""
    lines = skipped_lines(skipped, root, SKIPPED_LISTED)
    if not lines:
        return ""
    head, *listed = lines
    text = f"\n\n**Warning:** {markdown_text(head)}"
    if listed:
        text += "\n" + "".join(f"\n- {markdown_text(line.strip())}" for line in listed)
    return text


def export_flags(
    bench: Workbench,
    export_dir: Path,
    filters: tuple[list[str], list[str], list[str]],
    formats: list[str],
    progress: ProgressCallback | None = None,
) -> tuple[str, str]:
    """Export the flags matching (status, severity, category) into a new dated folder of
    ``export_dir``: the message and the path of the zip to download."""
    if not formats:
        raise ValueError("Choose at least one export format.")
    status, severity, category = filters
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    result = export_report(
        export_dir / f"flags-{stamp}",
        bench.store,
        formats=formats,
        status=status or None,
        severity=severity or None,
        category=category or None,
        model_sources=[model.path for model in bench.catalogue.models.values()],
        engine=bench.engine,
        split_scores=bench.scores.split_results(),
        groups=bench.groups,
        progress=progress,
    )
    archive = zip_export(result)
    notes = "".join(f"\n- {markdown_text(problem)}" for problem in result.problems)
    message = (
        f"Exported {count_of(result.flag_count, 'flag')} on "
        f"{count_of(result.image_count, 'image')} to "
        f"{markdown_text(result.out)}; the download holds every file.{notes}"
    )
    return message, str(archive)


Upload = np.ndarray | dict | None
"""An uploaded picture: an RGB(A) array, or the upload component's file record as Gradio
gives it unprocessed (``path`` in the app's temporary folder, checked by Gradio, and
``orig_name``, the file's name on the person's machine), or None before an upload."""


def _rgb(image: Upload) -> np.ndarray:
    """An uploaded picture as contiguous 8-bit RGB (alpha dropped). A file record is read
    here, not by Gradio, so that a bomb is refused from its header and a file that is not
    an image gets a message saying so instead of a bare "Error"."""
    if image is None:
        raise ValueError("Upload an image first.")
    if isinstance(image, dict):
        if not image.get("path"):
            raise ValueError("The image did not arrive as a file; upload it again.")
        return read_picture(Path(image["path"]), image.get("orig_name") or "your image")
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


@dataclass(frozen=True)
class UploadPrediction:
    """The Your-image tab's panels, summary and legend for one uploaded picture."""

    prediction_a: np.ndarray
    prediction_b: np.ndarray
    disagreement: np.ndarray
    summary: str
    legend: str


@dataclass(frozen=True)
class UploadDesk:
    """The Your-image tab: both models on a person's photo, and flags on it."""

    bench: Workbench
    flags: FlagDesk

    def predict(self, image: Upload, pair: tuple[str, str], opacity: float) -> UploadPrediction:
        """Both predictions and where they differ, with a warning for each model not
        trained for photos like these."""
        view = self.bench.views.view_upload(_rgb(image), *pair)
        drawn = panels.render_panels(view, panels.DisplayOptions(opacity=opacity))
        changed = float(view.models_differ.mean())
        catalogue = self.bench.catalogue
        used = " and ".join(markdown_text(catalogue[name].label) for name in pair)
        notes = [catalogue[name].mismatch(UPLOAD_KIND) for name in pair]
        warnings = "".join(f"  \n**Warning:** {markdown_text(note)}" for note in notes if note)
        return UploadPrediction(
            drawn.prediction_a,
            drawn.prediction_b,
            drawn.disagreement,
            f"Predicted with {used}. The models disagree on {changed:.1%} of the pixels "
            f"(magenta in the third panel).{warnings}",
            panels.class_legend(view),
        )

    def flag(
        self,
        image: Upload,
        pair: tuple[str, str],
        judgement: tuple[str, str, str, str, str],
        confirmed: str = "",
    ) -> str:
        """Keep the photo and flag it; the confirmation names the stored image."""
        upload_id = self.bench.uploads.add(_rgb(image))
        flag = self.flags.create(upload_id, pair, judgement, confirmed=confirmed)
        return f"Saved flag #{flag.id} on your image (stored as {markdown_text(flag.image_key)})."
