"""A flag and its audit trail in the reviewer's terms, for the page and the report alike:
targets name their model ("model A (segnet-ce)"), changes read "status: open → confirmed",
and the ids the store also records (image, model versions) stay out of the text (the flag's
own columns show them)."""

from __future__ import annotations

from typing import Any

TARGET_LABELS = {
    "ground_truth": "ground truth",
    "model_a": "model A",
    "model_b": "model B",
    "both_models": "both models",
}
"""Flag targets as a person reads them; the keys are the store's values."""

AUDITED_FIELDS = ("target", "severity", "category", "status", "note", "region")
"""The fields of an audit entry a reviewer reads, in this order."""

ACTIONS = {"create": "created", "update": "changed"}


def target_text(target: str, model_a: str, model_b: str) -> str:
    """A flag's target naming the model: "model A (segnet-ce)"."""
    label = TARGET_LABELS.get(target, target)
    named = {"model_a": model_a, "model_b": model_b, "both_models": f"{model_a}, {model_b}"}
    return f"{label} ({named[target]})" if target in named else label


def box_text(region: list[int] | tuple[int, ...] | None) -> str:
    """A flag region as the forms write it: "x0, y0, x1, y1" (none: the whole image)."""
    return "none" if region is None else ", ".join(str(v) for v in region)


def _value_text(name: str, value: Any, models: tuple[str, str]) -> str:
    if name == "target":
        return target_text(str(value), *models)
    if name == "region":
        return box_text(value)
    if name == "note":
        return f"“{value}”" if value else "none"
    return str(value)


def change_text(action: str, changes: dict[str, tuple[Any, Any]], models: tuple[str, str]) -> str:
    """An audit entry's changes against the flag's (model A, model B): "status: open →
    confirmed", or for a new flag what it said."""
    parts = []
    for name in AUDITED_FIELDS:
        if name not in changes:
            continue
        old, new = changes[name]
        if action == "create":
            if name not in ("note", "region") or new:
                parts.append(f"{name} {_value_text(name, new, models)}")
        else:
            before, after = (_value_text(name, value, models) for value in (old, new))
            parts.append(f"{name}: {before} → {after}")
    return "; ".join(parts)
