"""The review queue and its score cache: the split's per-image scores for a pair of models,
kept in the review store so a restart does not score again, and the split's images ranked
by them, filtered by flag state, sequence and condition."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from functools import cached_property

from models.conditions import condition_tags
from models.evaluate import ProgressCallback, evaluate_split
from models.instances import DEFAULT_MIN_RECALL
from models.labels import DEFAULT_GROUPS, ImportanceGroups
from models.ranking import ORDERS_BY_LABEL, PAIR_ORDERS, rank
from models.scores import IMAGE_KEYS
from models.scoring import SplitScores
from reviewer.registry import SplitRegistry

SORT_KEYS: dict[str, str] = {order.label: order.description for order in PAIR_ORDERS}
"""Review-queue orders (label -> what it puts first); the first is the default (worst first)."""

PAIR_KEYS = ("both_right", "only_a", "only_b", "both_wrong")

FLAG_STATES = ("any", "unflagged", "open", "confirmed", "dismissed", "resolved")

Pair = tuple[str, str]


@dataclass
class ScoreCache:
    """Scores of pairs of models on the registered split: per image in the store (filled
    by :meth:`evaluate`), per split for the pairs evaluated since start; thread-safe."""

    registry: SplitRegistry
    groups: ImportanceGroups = DEFAULT_GROUPS
    min_recall: float = DEFAULT_MIN_RECALL
    _pairs: dict[Pair, dict[str, dict]] = field(init=False, default_factory=dict)
    _results: dict[Pair, SplitScores] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def cached_scores(self, name_a: str, name_b: str) -> dict[str, dict] | None:
        """Per-image scores of both models from the store, when the whole split has every
        score of the table (rows cached before a score was added are scored again)."""
        registry = self.registry
        scores = {}
        for side, name in (("A", name_a), ("B", name_b)):
            stored = registry.store.get_scores(
                registry.model_id(name), dataset_id=registry.dataset_id
            )
            complete = [row for row in stored.values() if set(IMAGE_KEYS) <= row.keys()]
            if len(complete) < registry.image_count:
                return None
            scores[side] = stored
        pair = self._pair_scores(name_a, name_b)
        if pair is None:
            return None
        scores["pair"] = pair
        return scores

    def _pair_scores(self, name_a: str, name_b: str) -> dict[str, dict] | None:
        with self._lock:
            if (name_a, name_b) in self._pairs:
                return self._pairs[(name_a, name_b)]
        registry = self.registry
        key = _pair_prefix(registry.model(name_a).hash)
        stored = registry.store.get_scores(
            registry.model_id(name_b), dataset_id=registry.dataset_id
        )
        pair = {}
        for sample_id, scores in stored.items():
            if f"{key}only_a" not in scores:
                return None
            pair[sample_id] = {k: scores[f"{key}{k}"] for k in PAIR_KEYS}
        return pair

    def evaluate(
        self, name_a: str, name_b: str, progress: ProgressCallback | None = None
    ) -> SplitScores:
        """Evaluate the split with both models and fill the store's score cache."""
        registry = self.registry
        models = {"A": registry.model(name_a), "B": registry.model(name_b)}
        result = evaluate_split(
            registry.dataset,
            registry.views.engine,
            models,
            self.groups,
            min_recall=self.min_recall,
            progress=progress,
        )
        prefix = _pair_prefix(models["A"].hash)
        for side, name in (("A", name_a), ("B", name_b)):
            by_image = {}
            for image in result.images:
                flat = {k: image.scores[side][k] for k in IMAGE_KEYS}
                if side == "B" and image.disagreement is not None:
                    flat.update({f"{prefix}{k}": image.disagreement[k] for k in PAIR_KEYS})
                by_image[registry.image_id(image.sample_id)] = flat
            registry.store.put_scores_bulk(registry.model_id(name), by_image)
        with self._lock:
            self._pairs[(name_a, name_b)] = {
                image.sample_id: dict(image.disagreement or {}) for image in result.images
            }
            self._results[(name_a, name_b)] = result
        return result

    def split_results(self) -> dict[tuple[int, int, int], SplitScores]:
        """Every evaluation since start, keyed (dataset id, model A id, model B id)."""
        with self._lock:
            pairs = dict(self._results)
        registry = self.registry
        return {
            (registry.dataset_id, registry.model_id(a), registry.model_id(b)): result
            for (a, b), result in pairs.items()
        }

    def split_result(self, name_a: str, name_b: str) -> SplitScores | None:
        """The split-level scores of the pair if it was evaluated since the app started."""
        with self._lock:
            return self._results.get((name_a, name_b))


@dataclass(frozen=True)
class QueueRow:
    sample_id: str
    sequence: str | None
    value: float | None
    """The image's value under the queue's order (the mIoU itself for "mIoU of A"); None
    before the split is scored, and for the name order."""
    flags: int
    flag_status: str


@dataclass
class ReviewQueue:
    """The split's images in review order for a pair, ranked by the score cache."""

    scores: ScoreCache

    def rows(
        self,
        name_a: str,
        name_b: str,
        sort_key: str = next(iter(SORT_KEYS)),
        status: str = "any",
        sequence: str = "any",
        condition: str = "any",
    ) -> list[QueueRow]:
        """The split's images in review order, filtered by flag state, sequence and
        condition; in name order until the split has scores."""
        if sort_key not in ORDERS_BY_LABEL:
            raise ValueError(f"unknown order {sort_key!r}; choose one of {', '.join(SORT_KEYS)}")
        registry = self.scores.registry
        dataset = registry.dataset
        cached = self.scores.cached_scores(name_a, name_b) if dataset.has_labels else None
        flag_states = registry.store.images_with_flag_state(registry.dataset_id)
        states = {s.image_key: s for s in flag_states}
        rows = {}
        for sample in dataset.samples:
            state = states.get(sample.id)
            flag_status = _flag_status(state.counts if state else {})
            if status != "any" and flag_status != status:
                continue
            if sequence != "any" and sample.sequence != sequence:
                continue
            if condition != "any" and condition not in self._condition_tags.get(sample.id, ()):
                continue
            total = state.total if state else 0
            rows[sample.id] = QueueRow(sample.id, sample.sequence, None, total, flag_status)
        ranked = rank((_cached_image(key, cached) for key in rows), ORDERS_BY_LABEL[sort_key])
        return [replace(rows[image.sample_id], value=value) for image, value in ranked]

    def sequences(self) -> list[str]:
        """The split's cities or sequences, for the queue's filter."""
        return sorted({s.sequence for s in self.scores.registry.dataset.samples if s.sequence})

    def conditions(self) -> list[str]:
        """The condition tags of the split's images (synthetic sets), for the filter."""
        return sorted(set().union(*self._condition_tags.values()))

    @cached_property
    def _condition_tags(self) -> dict[str, frozenset[str]]:
        """Tags of every image with a sidecar, read once: the queue filters by them often."""
        dataset = self.scores.registry.dataset
        return {
            sample.id: frozenset(condition_tags(dataset.read_meta(sample)))
            for sample in dataset.samples
            if sample.meta_path is not None
        }


def _pair_prefix(hash_a: str) -> str:
    return f"pair:{hash_a[:16]}:"


@dataclass(frozen=True)
class _CachedImage:
    """The cached scores of one image under "A" and "B" and their critical-pixel counts:
    what the queue ranks by (see :class:`models.ranking.Rankable`)."""

    sample_id: str
    scores: dict[str, dict[str, float | None]]
    disagreement: dict[str, int] | None

    def value(self, model: str, key: str) -> float | None:
        return self.scores.get(model, {}).get(key)


def _cached_image(sample_id: str, cached: dict[str, dict] | None) -> _CachedImage:
    """The image's entry of :meth:`ScoreCache.cached_scores` (no scores when there are none)."""
    if cached is None:
        return _CachedImage(sample_id, {}, None)
    scores = {side: cached[side].get(sample_id, {}) for side in ("A", "B")}
    return _CachedImage(sample_id, scores, cached["pair"].get(sample_id) or None)


def _flag_status(counts: dict[str, int]) -> str:
    """One status per image for filtering: the most pressing of its flags' statuses."""
    for status in ("open", "confirmed", "resolved", "dismissed"):
        if counts.get(status):
            return status
    return "unflagged"
