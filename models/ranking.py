"""Worst-first orders of a split's images, and the one function that ranks by them.

An order is either a score of the table for one model ("safety error of A", "mIoU of
B"), the worst of two models on a score, the change from one model to the other (the
improvement of B over A, or its regression), the critical pixels exactly one model of the
pair gets right, or the area where both confidently contradict the ground truth. The review
queue, the Dataset tab's worst images and the report all rank with :func:`rank`, so the
same order puts the same images first everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from models.scores import BY_KEY, Score


class Rankable(Protocol):
    """What an order reads of an image: per-model score values and the pair's agreement."""

    @property
    def sample_id(self) -> str: ...

    @property
    def disagreement(self) -> Mapping[str, int] | None: ...

    @property
    def suspect_pixels(self) -> int | None: ...

    def value(self, model: str, key: str) -> float | None: ...


Image = TypeVar("Image", bound=Rankable)


@dataclass(frozen=True)
class Order:
    """A worst-first order: the value it ranks by, and whether a high value comes first."""

    label: str
    description: str
    measure: Callable[[Rankable], float | None]
    """The value of an image under this order (None: the image has none, it goes last)."""
    high_first: bool = True


def by_score(score: Score, model: str, description: str = "") -> Order:
    """The images where ``model`` does worst on ``score`` first."""
    return Order(
        f"{score.label} of {model}",
        description,
        lambda image: image.value(model, score.key),
        high_first=not score.higher_is_better,
    )


def by_worst_of(score: Score, models: Sequence[str], label: str, description: str) -> Order:
    """The images where the worse of ``models`` on ``score`` does worst first."""
    pick = min if score.higher_is_better else max

    def measure(image: Rankable) -> float | None:
        values = [v for v in (image.value(m, score.key) for m in models) if v is not None]
        return pick(values) if values else None

    return Order(label, description, measure, high_first=not score.higher_is_better)


def by_change(
    score: Score, base: str, other: str, label: str, description: str, improvement: bool
) -> Order:
    """The images where ``other`` improves most on ``base`` first (or regresses most)."""

    def measure(image: Rankable) -> float | None:
        before, after = image.value(base, score.key), image.value(other, score.key)
        if before is None or after is None:
            return None
        gain = after - before if score.higher_is_better else before - after
        return gain if improvement else -gain

    return Order(label, description, measure)


def _exactly_one_right(image: Rankable) -> float | None:
    counts = image.disagreement
    return None if not counts else float(counts["only_a"] + counts["only_b"])


SAFETY, MIOU = BY_KEY["safety_error"], BY_KEY["miou"]

PAIR_ORDERS: tuple[Order, ...] = (
    by_worst_of(
        SAFETY,
        ("A", "B"),
        "safety error of either model",
        "Images where A or B makes the most dangerous errors first",
    ),
    by_score(SAFETY, "A", "Images where A makes the most dangerous errors first"),
    by_score(SAFETY, "B", "Images where B makes the most dangerous errors first"),
    by_change(
        SAFETY,
        "A",
        "B",
        "improvement of B over A",
        "Images where B is safer than A by the widest margin first",
        improvement=True,
    ),
    by_change(
        SAFETY,
        "A",
        "B",
        "regression of B against A",
        "Images where B is less safe than A by the widest margin first",
        improvement=False,
    ),
    Order(
        "disagreement on critical pixels",
        "Critical pixels exactly one model gets right, most first",
        _exactly_one_right,
    ),
    Order(
        "suspect ground truth",
        "For annotators: the most pixels where both models confidently agree against "
        "the label first",
        lambda image: image.suspect_pixels,
    ),
    by_score(MIOU, "A", "Lowest mIoU of A first"),
    by_score(MIOU, "B", "Lowest mIoU of B first"),
    Order("name", "Image id, alphabetical", lambda image: None),
)
"""The orders of a pair of models "A" and "B" (the review queue's); the first is the default."""

ORDERS_BY_LABEL = {order.label: order for order in PAIR_ORDERS}


def rank(images: Iterable[Image], order: Order) -> list[tuple[Image, float | None]]:
    """(image, value) worst first under ``order``; ties and images without a value (last)
    in image id order."""
    sign = -1.0 if order.high_first else 1.0
    measured = [(image, order.measure(image)) for image in images]
    return sorted(
        measured,
        key=lambda pair: (pair[1] is None, sign * (pair[1] or 0.0), pair[0].sample_id),
    )
