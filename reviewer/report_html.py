"""The HTML error report: one self-contained file a safety lead reads on screen or on paper.

It opens with the verdict (each pair's paired comparison B - A with its intervals, the
flags by severity and status, the worst flagged cases as thumbnails), then every flagged
image, and ends with the details and the provenance (datasets, models' training and
settings) in compact tables: no raw JSON, no absolute paths. An image section is kept on
one printed page where it fits.

Images are embedded as JPEG data URIs (at most 640 pixels wide), tables and bars are
plain HTML and CSS (no script, no network at view time; a Content-Security-Policy forbids
both), and every string a person wrote or a file named (notes, reviewer names, categories,
group names, image ids, model names, metadata) is escaped. The panels come from
:func:`reviewer.panels.render_panels`, so an image looks as it does in the GUI.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import PurePath
from typing import Any

import numpy as np

from db.schema import SEVERITIES, STATUSES
from db.store import ModelInfo
from models.comparison import COMPARISON_HEADERS, compare_split
from models.conditions import condition_tags
from models.datasets import count_of
from models.labels import CLASS_NAMES, NUM_EVALUATED, ImportanceGroups
from models.object_sizes import HEADLINE_CLASS, OBJECT_HEADERS, objects_by_size
from models.ranking import PAIR_ORDERS
from models.scores import IMAGE_SCORES, format_value
from models.scoring import ModelScores, SplitScores, split_rows
from reviewer.flag_text import ACTIONS, change_text, target_text
from reviewer.overlays import LEGEND_CSS, draw_box
from reviewer.panels import (
    DEFAULT_DISPLAY,
    INSTANCE_HEADERS,
    SCORE_HEADERS,
    WORST_HEADERS,
    class_legend,
    code_legends,
    instance_rows,
    render_panels,
    scores_table,
    worst_rows,
)
from reviewer.pictures import jpeg_data_url
from reviewer.report import ExportedFlag
from reviewer.views import ImageView

PANEL_WIDTH = 640
"""Images wider than this are shrunk for the report (the masks keep full resolution)."""
JPEG_QUALITY = 85
"""JPEG quality of the report's images (:mod:`reviewer.pictures` says why JPEG): a little
lower than the board's, since one file holds every flagged image."""

CSS = """
body { font-family: system-ui, sans-serif; color: #111; background: #fff; margin: 1.5em;
       line-height: 1.35; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 2px solid #333; }
h3 { font-size: 1.1em; margin-bottom: 0.3em; }
table { border-collapse: collapse; margin: 0.4em 0 0.8em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 8px; }
figure { margin: 0; } figure img { width: 100%; height: auto; border: 1px solid #999; }
figcaption { font-size: 0.85em; color: #333; }
.note { white-space: pre-wrap; border-left: 3px solid #888; padding: 2px 8px; margin: 4px 0;
        overflow-wrap: anywhere; }
.problem { color: #a00; font-weight: bold; }
.muted { color: #555; font-size: 0.9em; }
.bar { display: inline-block; height: 0.8em; vertical-align: middle; margin-right: 4px; }
.bar.a { background: #5b8def; } .bar.b { background: #f2a541; }
.sev-critical { color: #b00; font-weight: bold; } .sev-major { color: #c60; }
.meta td { overflow-wrap: anywhere; max-width: 60em; }
section.image { margin-top: 2em; page-break-inside: avoid; break-inside: avoid; }
.verdict-better { font-weight: bold; }
.thumbs { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 8px; }
.thumbs a { color: inherit; text-decoration: none; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media print {
  body { margin: 0; font-size: 10pt; }
  section.image { break-before: page; }
  figure, table, .flag { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class PairView:
    """One compared pair of models on one image: the view, or why there is none."""

    model_a: ModelInfo
    model_b: ModelInfo
    view: ImageView | None
    problem: str | None = None


@dataclass(frozen=True)
class ImageSection:
    """Everything the report shows for one flagged image."""

    anchor: str
    dataset: str
    split: str
    sample_id: str
    image: np.ndarray | None
    """The input photo, or None when it could not be read (see ``problem``)."""
    problem: str | None
    pairs: tuple[PairView, ...]
    flags: tuple[ExportedFlag, ...]
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TocEntry:
    """One line of the contents: a flagged image and its flags' severities, worst first."""

    anchor: str
    dataset: str
    sample_id: str
    severities: tuple[str, ...]
    thumbnail: np.ndarray | None = None
    """The input image, for the worst cases of the verdict (None: not among them, or
    unreadable)."""


@dataclass(frozen=True)
class SplitSummary:
    """Split-level scores of one compared pair, and where they come from."""

    dataset: str
    split: str
    model_a: ModelInfo
    model_b: ModelInfo
    source: str
    """Human-readable: given by the caller, evaluated during the export, cached means, none."""
    scores: SplitScores | None = None
    """Per-class and per-group scores (keys "A" and "B") when the split was evaluated."""
    means: Mapping[str, Mapping[str, float | None]] | None = None
    """Side ("A", "B") -> mean of the per-image scores cached in the store."""


@dataclass(frozen=True)
class ReportSummary:
    generated: datetime
    filters: Mapping[str, Sequence[str] | None]
    datasets: Sequence[Mapping[str, Any]]
    """name, layout, split, root, flagged images."""
    models: Sequence[ModelInfo]
    counts: Mapping[str, Mapping[str, int]]
    """"severity", "category", "status", "reviewer" -> value -> number of flags."""
    severity_status: Mapping[tuple[str, str], int]
    """(severity, status) -> number of flags."""
    flag_count: int
    image_count: int
    splits: Sequence[SplitSummary]
    groups: ImportanceGroups
    problems: Sequence[str] = ()


# ----------------------------------------------------------------------------- helpers


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[^\s,;:'\"<>/]+/)*([^\s,;:'\"<>/]+)")


def _said(message: Any) -> str:
    """A message of the export itself (a problem, where scores came from), escaped, with
    every absolute path cut to its last part: the reader is a colleague, not this machine."""
    return _e(ABSOLUTE_PATH.sub(r"\1", str(message)))


def _figure(image: np.ndarray, caption: str) -> str:
    source = jpeg_data_url(image, JPEG_QUALITY, PANEL_WIDTH)
    return (
        f'<figure><img src="{source}" alt="{_e(caption)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: bool = True) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = [f"<td>{_e(row[0])}</td>"]
        css = ' class="num"' if numeric else ""
        cells += [f"<td{css}>{_e(v)}</td>" for v in row[1:]]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _bar(value: float | None, side: str) -> str:
    if value is None:
        return format_value(value)
    width = max(0.0, min(1.0, value)) * 8
    return f'<span class="bar {side}" style="width:{width:.2f}em"></span>{format_value(value)}'


def _model_label(model: ModelInfo) -> str:
    return f"{model.name} ({model.file_hash[:12]})"


# ----------------------------------------------------------------------------- summary


SIGNIFICANT_DIGITS = 3
"""Digits of a number in the provenance table (a class weight needs no 16)."""
LISTED_VALUES = 6
"""Items of a list shown before "…" in the provenance table."""


def brief(value: Any) -> str:
    """A metadata value as a person reads it: numbers to a few digits, lists and mappings
    flattened to one line, a path by its last part (an absolute path says nothing to a
    colleague and tells where someone's files are)."""
    if value is None:
        return "none"
    if isinstance(value, bool | int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{SIGNIFICANT_DIGITS}g}"
    if isinstance(value, str):
        return PurePath(value).name if PurePath(value).is_absolute() else value
    if isinstance(value, Mapping):
        return "; ".join(f"{key} {brief(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        shown = ", ".join(brief(item) for item in value[:LISTED_VALUES])
        more = f", … ({len(value)} in all)" if len(value) > LISTED_VALUES else ""
        return f"[{shown}{more}]"
    return str(value)


def _models_html(models: Sequence[ModelInfo]) -> str:
    """One compact table: a row per metadata field, a column per model."""
    keys = list(dict.fromkeys(key for model in models for key in model.metadata))
    rows = [["file sha256", *(model.file_hash for model in models)]]
    rows += [[key, *(brief(model.metadata.get(key)) for model in models)] for key in keys]
    return _table(["", *(model.name for model in models)], rows, numeric=False)


def _counts_html(counts: Mapping[str, Mapping[str, int]]) -> str:
    tables = []
    for what, by_value in counts.items():
        rows = sorted(by_value.items(), key=lambda item: (-item[1], item[0]))
        tables.append(f"<div><h3>by {_e(what)}</h3>{_table([what, 'flags'], rows)}</div>")
    return f'<div class="grid">{"".join(tables)}</div>'


def _split_html(summary: SplitSummary, groups: ImportanceGroups) -> str:
    title = (
        f"<h3>{_e(summary.dataset)} / {_e(summary.split)}: A = {_e(_model_label(summary.model_a))}"
        f", B = {_e(_model_label(summary.model_b))}</h3>"
        f'<p class="muted">{_said(summary.source)}</p>'
    )
    if summary.scores is not None:
        return title + _split_scores_html(summary.scores, groups)
    if summary.means is not None:
        a, b = summary.means["A"], summary.means["B"]
        rows = [[s.label_of_mean, s.text(a[s.key]), s.text(b[s.key])] for s in IMAGE_SCORES]
        return title + _table(["mean over images", "A", "B"], rows)
    return title


def _class_iou_html(a: ModelScores, b: ModelScores) -> str:
    rows = []
    for train_id in range(NUM_EVALUATED):
        if not a.annotated[train_id]:
            rows.append(
                f"<tr><td>{_e(CLASS_NAMES[train_id])}</td><td colspan=3>not annotated</td></tr>"
            )
            continue
        iou_a, iou_b = a.iou[train_id], b.iou[train_id]
        delta = "n/a" if iou_a is None or iou_b is None else f"{iou_b - iou_a:+.3f}"
        rows.append(
            f"<tr><td>{_e(CLASS_NAMES[train_id])}</td><td>{_bar(iou_a, 'a')}</td>"
            f"<td>{_bar(iou_b, 'b')}</td><td class='num'>{delta}</td></tr>"
        )
    return (
        "<table><thead><tr><th>class</th><th>IoU A</th><th>IoU B</th><th>B − A</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _group_html(a: ModelScores, b: ModelScores, groups: ImportanceGroups) -> str:
    rows = [
        [
            name,
            format_value(a.group_iou[i]),
            format_value(b.group_iou[i]),
            format_value(a.miss_rate_per_group[i], percent=True),
            format_value(b.miss_rate_per_group[i], percent=True),
            format_value(a.false_alarm_rate_per_group[i], percent=True),
            format_value(b.false_alarm_rate_per_group[i], percent=True),
        ]
        for i, name in enumerate(groups.names)
    ]
    headers = ["importance group", "IoU A", "IoU B", "miss A", "miss B"]
    return _table([*headers, "false alarm A", "false alarm B"], rows)


WORST_IMAGES = 10
"""Images listed worst first under a split's scores in the report."""


def _split_scores_html(result: SplitScores, groups: ImportanceGroups) -> str:
    a, b = result.models["A"], result.models["B"]
    headline = _table(["split score", "A", "B"], split_rows(result.models))
    worst = _table(WORST_HEADERS, worst_rows(result, WORST_IMAGES))
    return (
        f'<div class="grid"><div>{headline}{_group_html(a, b, groups)}</div>'
        f"<div>{_class_iou_html(a, b)}</div></div>"
        f"<h3>Worst {WORST_IMAGES} images ({_e(PAIR_ORDERS[0].label)})</h3>{worst}"
    )


WORST_CASES = 6
"""Flagged images shown as thumbnails in the verdict, worst severity first."""
THUMBNAIL_WIDTH = 240


def _verdict_html(summary: SplitSummary) -> str:
    """One pair on one split: B - A with paired intervals, and in words which is better."""
    title = (
        f"<h3>{_e(summary.dataset)} / {_e(summary.split)}: A = {_e(summary.model_a.name)}, "
        f"B = {_e(summary.model_b.name)}</h3>"
    )
    if summary.scores is None:
        return title + f'<p class="muted">No paired comparison: {_said(summary.source)}</p>'
    comparison = compare_split(summary.scores)
    rows = comparison.rows()
    by_verdict = {
        verdict: [row[0] for row in rows if row[-1] == verdict]
        for verdict in ("B better", "A better")
    }
    said = [
        f'<span class="verdict-better">{_e(verdict)}</span> on {_e(", ".join(names))}'
        for verdict, names in by_verdict.items()
        if names
    ]
    noise = sum(row[-1] == "within noise" for row in rows)
    said.append(f"{count_of(noise, 'score')} within noise")
    return (
        f"{title}<p>{'; '.join(said)}.</p>"
        f'<p class="muted">{_e(comparison.title)}</p>{_table(COMPARISON_HEADERS, rows)}'
        f"{_objects_html(summary.scores)}"
    )


def _objects_html(scores: SplitScores) -> str:
    """Objects missed by size: the persons in words first, then every class and size with
    B - A of the miss rates (or why there is nothing to count)."""
    objects = objects_by_size(scores.images, list(scores.models)[:2])
    headline = f"<h4>Objects by size</h4><p>{_e(objects.headline(HEADLINE_CLASS))}</p>"
    if not objects.cells:
        return headline
    return headline + _table(OBJECT_HEADERS, objects.rows())


def _severity_status_html(counts: Mapping[tuple[str, str], int]) -> str:
    rows = [
        [severity, *(counts.get((severity, status), 0) for status in STATUSES)]
        for severity in SEVERITIES
    ]
    return _table(["severity", *STATUSES], rows)


def _worst_cases_html(toc: Sequence[TocEntry]) -> str:
    """The worst flagged images as thumbnails linking to their sections."""
    cases = [entry for entry in toc if entry.thumbnail is not None]
    if not cases:
        return ""
    tiles = "".join(
        f'<a href="#{_e(entry.anchor)}"><figure>'
        f'<img src="{jpeg_data_url(entry.thumbnail, JPEG_QUALITY, THUMBNAIL_WIDTH)}" '
        f'alt="{_e(entry.sample_id)}"><figcaption>{_e(entry.sample_id)}: '
        f"{_e(', '.join(entry.severities))}</figcaption></figure></a>"
        for entry in cases
    )
    return f'<h3>Worst flagged cases</h3><div class="thumbs">{tiles}</div>'


def summary_html(summary: ReportSummary, toc: Sequence[TocEntry]) -> str:
    """The report's opening: the verdict for every pair, the flags by severity and status,
    the worst cases, the contents (details and provenance come at the end)."""
    filters = ", ".join(
        f"{_e(k)}: {_e(', '.join(v)) if v else 'any'}" for k, v in summary.filters.items()
    )
    problems = "".join(f'<li class="problem">{_said(p)}</li>' for p in summary.problems)
    contents = "".join(
        f'<li><a href="#{_e(entry.anchor)}">{_e(entry.sample_id)}</a> <span class="muted">'
        f"({_e(entry.dataset)}; {count_of(len(entry.severities), 'flag')}: "
        f"{_e(', '.join(entry.severities))})</span></li>"
        for entry in toc
    )
    return (
        "<h1>Segmentation error report</h1>"
        f"<p>Generated {_e(summary.generated.isoformat(timespec='seconds'))} · "
        f"{count_of(summary.flag_count, 'flag')} on {count_of(summary.image_count, 'image')} · "
        f"filters: {filters}</p>"
        + (f"<ul>{problems}</ul>" if problems else "")
        + "<h2>Verdict</h2>"
        + "".join(_verdict_html(split) for split in summary.splits)
        + f"<h3>Flags by severity and status</h3>{_severity_status_html(summary.severity_status)}"
        + _worst_cases_html(toc)
        + f'<h2>Flagged images</h2><ol class="toc">{contents}</ol>'
    )


def provenance_html(summary: ReportSummary) -> str:
    """The report's end: split scores in detail, the flags by category and reviewer, and
    where everything came from (datasets by folder name, models' training and settings)."""
    datasets = _table(
        ["dataset", "layout", "split", "folder", "flagged images"],
        [
            [d["name"], d["layout"], d["split"], PurePath(d["root"]).name, d["images"]]
            for d in summary.datasets
        ],
        numeric=False,
    )
    details = "".join(_split_html(s, summary.groups) for s in summary.splits)
    counts = {
        what: summary.counts[what] for what in ("category", "reviewer") if what in summary.counts
    }
    return (
        f"<h2>Split scores in detail</h2>{details}"
        f"<h2>Flags by category and reviewer</h2>{_counts_html(counts)}"
        f"<h2>Provenance</h2><h3>Datasets</h3>{datasets}"
        f"<h3>Models</h3>{_models_html(summary.models)}"
    )


# ----------------------------------------------------------------------------- image sections


def _pair_html(pair: PairView) -> str:
    title = f"<h3>A = {_e(_model_label(pair.model_a))} · B = {_e(_model_label(pair.model_b))}</h3>"
    if pair.view is None:
        return title + f'<p class="problem">Predictions unavailable: {_said(pair.problem)}</p>'
    view = pair.view
    panels = render_panels(view, DEFAULT_DISPLAY)
    figures = []
    if panels.ground_truth is not None:
        figures.append(_figure(panels.ground_truth, "ground truth"))
    figures += [
        _figure(panels.prediction_a, f"prediction A: {pair.model_a.name}"),
        _figure(panels.prediction_b, f"prediction B: {pair.model_b.name}"),
    ]
    if panels.error_a is not None and panels.error_b is not None:
        figures += [_figure(panels.error_a, "errors of A"), _figure(panels.error_b, "errors of B")]
    disagreement = (
        "disagreement on critical pixels"
        if view.disagreement is not None
        else "where A and B differ (no ground truth)"
    )
    figures.append(_figure(panels.disagreement, disagreement))
    parts = [title, f'<div class="grid">{"".join(figures)}</div>', class_legend(view)]
    if view.error_a is not None:
        parts.append(code_legends())
    scores = scores_table(view)
    parts.append(_table(SCORE_HEADERS, scores) if scores else "<p>No scores: no ground truth.</p>")
    instances = instance_rows(view)
    if instances:
        parts.append(_table(INSTANCE_HEADERS, instances))
    elif view.ground_truth is not None:
        parts.append('<p class="muted">No instances annotated on this image.</p>')
    return "".join(parts)


def _flag_html(flag: ExportedFlag) -> str:
    region = "whole image" if flag.region is None else "x{} y{} – x{} y{}".format(*flag.region)
    rows = [
        ("severity", f'<span class="sev-{_e(flag.severity)}">{_e(flag.severity)}</span>'),
        ("category", _e(flag.category)),
        ("status", _e(flag.status)),
        ("target", _e(target_text(flag.target, flag.model_a, flag.model_b))),
        ("region", _e(region)),
        ("reviewer", _e(flag.reviewer)),
        (
            "created / updated",
            _e(f"{flag.created_at:%Y-%m-%d %H:%M} / {flag.updated_at:%Y-%m-%d %H:%M} UTC"),
        ),
        ("model A", _e(f"{flag.model_a} ({flag.model_a_hash[:12]})")),
        ("model B", _e(f"{flag.model_b} ({flag.model_b_hash[:12]})")),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    history = "".join(
        f"<li>{_e(f'{e.at:%Y-%m-%d %H:%M}')} {_e(e.reviewer)} "
        f"{_e(ACTIONS.get(e.action, e.action))}: "
        f"{_e(change_text(e.action, e.changes, (flag.model_a, flag.model_b)))}</li>"
        for e in flag.history
    )
    note = f'<div class="note">{_e(flag.note)}</div>' if flag.note else ""
    return (
        f'<div class="flag"><h3>Flag {flag.flag_id}</h3><table><tbody>{table}</tbody></table>'
        f"{note}<details open><summary>history</summary><ol>{history}</ol></details></div>"
    )


def image_section_html(section: ImageSection) -> str:
    """One flagged image: input, truth, both predictions and error maps, scores, flags."""
    tags = condition_tags(section.meta)
    parts = [
        f'<section class="image" id="{_e(section.anchor)}">'
        f"<h2>{_e(section.sample_id)}</h2>"
        f'<p class="muted">{_e(section.dataset)} / {_e(section.split)}'
        + (f" · {_e(', '.join(tags))}" if tags else "")
        + "</p>"
    ]
    if section.image is None:
        parts.append(f'<p class="problem">Image unavailable: {_said(section.problem)}</p>')
    else:
        marked = section.image
        for flag in section.flags:
            if flag.region is not None:
                marked = draw_box(marked, flag.region)
        regions = any(f.region is not None for f in section.flags)
        caption = "input (flagged regions boxed)" if regions else "input"
        parts.append(f'<div class="grid">{_figure(marked, caption)}</div>')
        parts += [_pair_html(pair) for pair in section.pairs]
    parts += [_flag_html(flag) for flag in section.flags]
    parts.append("</section>")
    return "".join(parts)


def document_start(title: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}{LEGEND_CSS}</style></head><body>"
    )


DOCUMENT_END = "</body></html>\n"
