"""The review queue and its score cache: the split's per-image scores for a pair of models,
kept in the review store so a restart does not score again, and the split's images ranked
by them, filtered by flag state, sequence and condition."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from functools import cached_property

from models.conditions import condition_tags
from models.evaluate import ProgressCallback, evaluate_split
from models.ranking import ORDERS_BY_LABEL, PAIR_ORDERS, rank
from models.scores import IMAGE_KEYS
from models.scoring import SplitScores
from models.settings import ScoringSettings
from reviewer.registry import SplitRegistry

SORT_KEYS: dict[str, str] = {order.label: order.description for order in PAIR_ORDERS}
"""Review-queue orders (label -> what it puts first); the first is the default (worst first)."""

PAIR_KEYS = ("both_right", "only_a", "only_b", "both_wrong")
"""The pair's critical-pixel counts of an image (:func:`models.metrics.disagreement_from_joint`)."""
SUSPECT_KEY = "suspect_pixels"
"""The pair's suspect-ground-truth pixels of an image, cached with its PAIR_KEYS."""

FLAG_STATES = ("any", "unflagged", "open", "confirmed", "dismissed", "resolved")

Pair = tuple[str, str]


@dataclass
class ScoreCache:
    """Scores of pairs of models on the registered split under one set of scoring settings:
    per image in the store (filled by :meth:`evaluate`, keyed by the settings' fingerprint so
    a start with other groups never ranks by scores of the old ones), per split for the
    pairs evaluated since start; thread-safe."""

    registry: SplitRegistry
    settings: ScoringSettings = field(default_factory=ScoringSettings)
    _results: dict[Pair, SplitScores] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def cached_scores(self, name_a: str, name_b: str) -> dict[str, dict] | None:
        """Per-image scores of both models and their pair counts from the store, when the
        whole split has every score of the table under these settings (rows cached before a
        score was added are scored again)."""
        registry = self.registry
        where = {"settings": self.settings.fingerprint, "dataset_id": registry.dataset_id}
        expected = self._scoreable_images(name_a, name_b)
        scores = {}
        for side, name in (("A", name_a), ("B", name_b)):
            stored = registry.store.get_scores(registry.model_id(name), **where)
            complete = [row for row in stored.values() if set(IMAGE_KEYS) <= row.keys()]
            if len(complete) < expected:
                return None
            scores[side] = stored
        ids = (registry.model_id(name_a), registry.model_id(name_b))
        pair = registry.store.get_pair_scores(*ids, **where)
        if sum(1 for row in pair.values() if SUSPECT_KEY in row) < expected:
            return None
        scores["pair"] = pair
        return scores

    def _scoreable_images(self, name_a: str, name_b: str) -> int:
        """Images the store must hold scores of: the split's, less those the pair's
        evaluation since start could not decode (they are skipped and ranked last). Which
        files fail to decode is known only from an evaluation, so after a restart a split
        with such files is scored again."""
        result = self.split_result(name_a, name_b)
        return self.registry.image_count - (len(result.skipped) if result else 0)

    def evaluate(
        self, name_a: str, name_b: str, progress: ProgressCallback | None = None
    ) -> SplitScores:
        """Evaluate the split with both models and fill the store's score cache."""
        registry = self.registry
        settings = self.settings
        models = {"A": registry.model(name_a), "B": registry.model(name_b)}
        result = evaluate_split(
            registry.dataset,
            registry.views.engine,
            models,
            settings.groups,
            resolution=settings.resolution,
            min_recall=settings.min_recall,
            band=settings.taxonomy_band,
            progress=progress,
        )
        ids = {side: registry.model_id(name) for side, name in (("A", name_a), ("B", name_b))}
        image_ids = [registry.image_id(image.sample_id) for image in result.images]
        for side, model_id in ids.items():
            by_image = {
                image_id: {k: image.scores[side][k] for k in IMAGE_KEYS}
                for image_id, image in zip(image_ids, result.images, strict=True)
            }
            registry.store.put_scores_bulk(model_id, by_image, settings=settings.fingerprint)
        counts = {
            image_id: {**image.disagreement, SUSPECT_KEY: image.suspect_pixels}
            for image_id, image in zip(image_ids, result.images, strict=True)
            if image.disagreement
        }
        registry.store.put_pair_scores(ids["A"], ids["B"], counts, settings=settings.fingerprint)
        with self._lock:
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


@dataclass(frozen=True)
class _CachedImage:
    """The cached scores of one image under "A" and "B", their critical-pixel counts and
    suspect pixels: what the queue ranks by (see :class:`models.ranking.Rankable`)."""

    sample_id: str
    scores: dict[str, dict[str, float | None]]
    disagreement: dict[str, int] | None
    suspect_pixels: int | None = None

    def value(self, model: str, key: str) -> float | None:
        return self.scores.get(model, {}).get(key)


def _cached_image(sample_id: str, cached: dict[str, dict] | None) -> _CachedImage:
    """The image's entry of :meth:`ScoreCache.cached_scores` (no scores when there are none)."""
    if cached is None:
        return _CachedImage(sample_id, {}, None)
    scores = {side: cached[side].get(sample_id, {}) for side in ("A", "B")}
    pair = cached["pair"].get(sample_id, {})
    counts = {key: pair[key] for key in PAIR_KEYS if key in pair}
    return _CachedImage(sample_id, scores, counts or None, pair.get(SUSPECT_KEY))


def _flag_status(counts: dict[str, int]) -> str:
    """One status per image for filtering: the most pressing of its flags' statuses."""
    for status in ("open", "confirmed", "resolved", "dismissed"):
        if counts.get(status):
            return status
    return "unflagged"
