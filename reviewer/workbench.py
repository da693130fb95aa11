"""The review service behind the GUI and the export: one object per running app.

It owns what is shared between browser sessions: the dataset split, the model catalogue,
the inference engine (with its prediction cache) and the review store. It turns an image
id and two model names into an :class:`ImageView` (every array and score a panel shows)
and a split into a ranked review queue. Nothing here knows about Gradio.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from db.store import ImageRecord, ModelInfo, ReviewStore
from models.catalogue import ModelCatalogue
from models.checkpoints import CheckpointError
from models.conditions import condition_tags
from models.datasets import (
    SegmentationDataset,
    file_fingerprint,
    image_size,
    read_rgb_image,
)
from models.evaluate import ProgressCallback, evaluate_split
from models.inference import InferenceEngine, LoadedModel
from models.instances import DEFAULT_MIN_RECALL
from models.labels import DEFAULT_GROUPS, ImportanceGroups
from models.metrics import disagreement_map, error_map
from models.ranking import ORDERS_BY_LABEL, PAIR_ORDERS, rank
from models.scores import IMAGE_KEYS
from models.scoring import ImageResult, SplitScores, score_image

SORT_KEYS: dict[str, str] = {order.label: order.description for order in PAIR_ORDERS}
"""Review-queue orders (label -> what it puts first); the first is the default (worst first)."""

PAIR_KEYS = ("both_right", "only_a", "only_b", "both_wrong")

ViewKey = tuple[str, str, str]
"""(image id, name of model A, name of model B): what one :class:`ImageView` shows."""


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB image (OpenCV writes BGR)."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("the image could not be encoded as PNG")
    return encoded.tobytes()


def file_sha256(*paths: Path) -> str:
    """SHA-256 of the files' bytes, one after the other."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ImageView:
    """Everything the review panels show for one image and one pair of models."""

    sample_id: str
    image: np.ndarray
    ground_truth: np.ndarray | None
    prediction_a: np.ndarray
    prediction_b: np.ndarray
    result: ImageResult | None
    """Scores of models "A" and "B" on this image (:func:`score_image`); None without labels."""
    error_a: np.ndarray | None
    error_b: np.ndarray | None
    disagreement: np.ndarray | None
    """Codes of :func:`models.metrics.disagreement_map` on critical pixels (GT needed)."""
    models_differ: np.ndarray
    """Where A and B predict different classes (works without ground truth)."""
    meta: dict = field(default_factory=dict)


def predictions_only_view(
    sample_id: str,
    image: np.ndarray,
    prediction_a: np.ndarray,
    prediction_b: np.ndarray,
    meta: dict | None = None,
) -> ImageView:
    """The view of an image without ground truth: predictions and where they differ."""
    return ImageView(
        sample_id=sample_id,
        image=image,
        ground_truth=None,
        prediction_a=prediction_a,
        prediction_b=prediction_b,
        result=None,
        error_a=None,
        error_b=None,
        disagreement=None,
        models_differ=prediction_a != prediction_b,
        meta=meta or {},
    )


@dataclass(frozen=True)
class QueueRow:
    sample_id: str
    group: str | None
    value: float | None
    """The image's value under the queue's order (the mIoU itself for "mIoU of A"); None
    before the split is scored, and for the name order."""
    flags: int
    flag_status: str


@dataclass
class BackgroundScoring:
    """An evaluation of the split running in its own thread while people already review."""

    names: tuple[str, str]
    total: int
    future: Future[SplitScores] = field(default_factory=Future)
    done: int = 0

    @property
    def running(self) -> bool:
        return not self.future.done()

    def failure(self) -> BaseException | None:
        """The error that stopped it, None while it runs or once it succeeded."""
        return None if self.running else self.future.exception()


@dataclass
class Workbench:
    """Shared state of one running review app; thread-safe for several browser sessions."""

    dataset: SegmentationDataset
    engine: InferenceEngine
    store: ReviewStore
    catalogue: ModelCatalogue
    upload_dir: Path | None = None
    """Where images people upload for review are kept (so their flags point at a file)."""
    groups: ImportanceGroups = DEFAULT_GROUPS
    min_recall: float = DEFAULT_MIN_RECALL
    view_cache_size: int = 64
    register: bool = True
    """False for a split the store already knows (the export): nothing is registered, and
    only :meth:`view` and :meth:`model` may be used."""
    _dataset_id: int = field(init=False)
    _image_ids: dict[str, int] = field(init=False)
    _model_ids: dict[str, ModelInfo] = field(init=False, default_factory=dict)
    _views: OrderedDict = field(init=False, default_factory=OrderedDict)
    _pairs: dict[tuple[str, str], dict[str, dict]] = field(init=False, default_factory=dict)
    _results: dict[tuple[str, str], SplitScores] = field(init=False, default_factory=dict)
    _lock: threading.RLock = field(init=False, default_factory=threading.RLock)
    background: BackgroundScoring | None = field(init=False, default=None)
    """The split's first evaluation when it runs behind the app (:meth:`score_in_background`)."""

    def __post_init__(self) -> None:
        if not self.register:
            return
        if not self.catalogue:
            raise CheckpointError("no model checkpoint found; pass --models FILE_OR_DIR")
        info = self.store.register_dataset(
            name=f"{self.dataset.layout}:{self.dataset.root.name}",
            root=str(self.dataset.root),
            layout=self.dataset.layout,
            split=self.dataset.split,
        )
        self._dataset_id = info.id
        records = []
        for sample in self.dataset.samples:
            height, width = image_size(sample.image_path) or _decoded_size(sample.image_path)
            files = (sample.image_path, *([sample.label_path] if sample.label_path else []))
            records.append(
                ImageRecord(
                    image_key=sample.id,
                    path=str(sample.image_path),
                    content_hash=file_fingerprint(*files),
                    width=width,
                    height=height,
                )
            )
        self._image_ids = self.store.register_images(self._dataset_id, records)

    @property
    def dataset_id(self) -> int:
        return self._dataset_id

    @property
    def model_names(self) -> list[str]:
        return self.catalogue.names

    def image_id(self, sample_id: str) -> int:
        """The store's id of an image of the split (KeyError naming it if unknown)."""
        try:
            return self._image_ids[sample_id]
        except KeyError:
            raise KeyError(f"no image {sample_id!r} in {self.dataset.describe()}") from None

    def model(self, name: str) -> LoadedModel:
        """The loaded model of a catalogue name; registers its version in the store."""
        loaded = self.engine.load(self.catalogue.path(name))
        with self._lock:
            if name not in self._model_ids:
                metadata = loaded.checkpoint.metadata.to_dict()
                metadata["assumed_preprocessing"] = loaded.checkpoint.assumed_preprocessing
                self._model_ids[name] = self.store.register_model(name, loaded.hash, metadata)
        return loaded

    def model_id(self, name: str) -> int:
        self.model(name)
        return self._model_ids[name].id

    def view(self, sample_id: str, name_a: str, name_b: str) -> ImageView:
        """Both models' predictions, errors and scores on one image (cached per pair)."""
        key = (sample_id, name_a, name_b)
        with self._lock:
            cached = self._views.get(key)
            if cached is not None:
                self._views.move_to_end(key)
                return cached
        return self._compute_view(key)

    def _compute_view(self, key: ViewKey) -> ImageView:
        sample_id, name_a, name_b = key
        sample = self.dataset.sample(sample_id)
        image = self.dataset.read_image(sample)
        prediction_a = self.engine.predict(self.model(name_a), image, sample_id).labels
        prediction_b = self.engine.predict(self.model(name_b), image, sample_id).labels
        view = self._compose(sample_id, image, prediction_a, prediction_b)
        with self._lock:
            self._views[key] = view
            while len(self._views) > self.view_cache_size:
                self._views.popitem(last=False)
        return view

    def view_upload(self, image: np.ndarray, name_a: str, name_b: str) -> ImageView:
        """Predictions of both models on a user's image without ground truth."""
        prediction_a = self.engine.predict(self.model(name_a), image).labels
        prediction_b = self.engine.predict(self.model(name_b), image).labels
        return predictions_only_view("upload", image, prediction_a, prediction_b)

    def add_upload(self, image: np.ndarray) -> int:
        """Keep an uploaded RGB image as a PNG named by its content and return its store id."""
        if self.upload_dir is None:
            raise ValueError("this app keeps no uploads (no upload folder configured)")
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        encoded = encode_png(image)
        digest = hashlib.sha256(encoded).hexdigest()
        path = self.upload_dir / f"{digest[:16]}.png"
        if not path.exists():
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(encoded)
            temporary.replace(path)
        uploads = self.store.register_dataset(
            name="uploads", root=str(self.upload_dir), layout="images", split="uploads"
        )
        record = ImageRecord(
            image_key=f"uploads/{path.stem}",
            path=str(path),
            content_hash=digest,
            width=int(image.shape[1]),
            height=int(image.shape[0]),
        )
        return self.store.register_images(uploads.id, [record])[record.image_key]

    def _compose(
        self, sample_id: str, image: np.ndarray, prediction_a: np.ndarray, prediction_b: np.ndarray
    ) -> ImageView:
        sample = self.dataset.sample(sample_id)
        meta = self.dataset.read_meta(sample)
        if not self.dataset.has_labels:
            return predictions_only_view(sample_id, image, prediction_a, prediction_b, meta)
        gt = self.dataset.read_label(sample)
        result = score_image(
            gt,
            {"A": prediction_a, "B": prediction_b},
            self.groups,
            annotated=self.dataset.annotated_classes,
            instance_ids=self.dataset.read_instances(sample),
            min_recall=self.min_recall,
            sample_id=sample_id,
        )
        return ImageView(
            ground_truth=gt,
            result=result,
            error_a=error_map(gt, prediction_a, self.groups),
            error_b=error_map(gt, prediction_b, self.groups),
            disagreement=disagreement_map(gt, prediction_a, prediction_b, self.groups),
            sample_id=sample_id,
            image=image,
            prediction_a=prediction_a,
            prediction_b=prediction_b,
            models_differ=prediction_a != prediction_b,
            meta=meta,
        )

    def cached_scores(self, name_a: str, name_b: str) -> dict[str, dict] | None:
        """Per-image scores of both models from the store, when the whole split has every
        score of the table (rows cached before a score was added are scored again)."""
        scores = {}
        for side, name in (("A", name_a), ("B", name_b)):
            stored = self.store.get_scores(self.model_id(name), dataset_id=self._dataset_id)
            complete = [row for row in stored.values() if set(IMAGE_KEYS) <= row.keys()]
            if len(complete) < len(self._image_ids):
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
        key = _pair_prefix(self.model(name_a).hash)
        stored = self.store.get_scores(self.model_id(name_b), dataset_id=self._dataset_id)
        pair = {}
        for image_key, scores in stored.items():
            if f"{key}only_a" not in scores:
                return None
            pair[image_key] = {k: scores[f"{key}{k}"] for k in PAIR_KEYS}
        return pair

    def evaluate(
        self, name_a: str, name_b: str, progress: ProgressCallback | None = None
    ) -> SplitScores:
        """Evaluate the split with both models and fill the store's score cache."""
        models = {"A": self.model(name_a), "B": self.model(name_b)}
        result = evaluate_split(
            self.dataset,
            self.engine,
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
                by_image[self._image_ids[image.sample_id]] = flat
            self.store.put_scores_bulk(self.model_id(name), by_image)
        with self._lock:
            self._pairs[(name_a, name_b)] = {
                image.sample_id: dict(image.disagreement or {}) for image in result.images
            }
            self._results[(name_a, name_b)] = result
        return result

    def score_in_background(
        self, name_a: str, name_b: str, progress: ProgressCallback | None = None
    ) -> BackgroundScoring:
        """Evaluate the split with the pair in a thread of its own, so the app can serve
        at once: a large split takes minutes, and its images can be reviewed meanwhile
        (the queue is in name order until the scores are in)."""
        scoring = BackgroundScoring((name_a, name_b), len(self.dataset))

        def report(done: int, total: int) -> None:
            scoring.done = done
            if progress is not None:
                progress(done, total)

        scoring.future.set_running_or_notify_cancel()

        def run() -> None:
            try:
                scoring.future.set_result(self.evaluate(name_a, name_b, report))
            except BaseException as error:
                scoring.future.set_exception(error)

        self.background = scoring
        # A daemon thread: quitting the app must not wait for the evaluation to finish.
        threading.Thread(target=run, name="scoring", daemon=True).start()
        return scoring

    def split_results(self) -> dict[tuple[int, int, int], SplitScores]:
        """Every evaluation since start, keyed (dataset id, model A id, model B id)."""
        with self._lock:
            pairs = dict(self._results)
        return {
            (self._dataset_id, self.model_id(a), self.model_id(b)): result
            for (a, b), result in pairs.items()
        }

    def split_result(self, name_a: str, name_b: str) -> SplitScores | None:
        """The split-level scores of the pair if it was evaluated since the app started."""
        with self._lock:
            return self._results.get((name_a, name_b))

    def queue(
        self,
        name_a: str,
        name_b: str,
        sort_key: str = next(iter(SORT_KEYS)),
        status: str = "any",
        group: str = "any",
        condition: str = "any",
    ) -> list[QueueRow]:
        """The split's images in review order, filtered by flag state, group and condition;
        in name order until the split has scores."""
        if sort_key not in ORDERS_BY_LABEL:
            raise ValueError(f"unknown order {sort_key!r}; choose one of {', '.join(SORT_KEYS)}")
        scores = self.cached_scores(name_a, name_b) if self.dataset.has_labels else None
        states = {s.image_key: s for s in self.store.images_with_flag_state(self._dataset_id)}
        rows = {}
        for sample in self.dataset.samples:
            state = states.get(sample.id)
            flag_status = _flag_status(state.counts if state else {})
            if status != "any" and flag_status != status:
                continue
            if group != "any" and sample.group != group:
                continue
            if condition != "any" and condition not in self._condition_tags.get(sample.id, ()):
                continue
            total = state.total if state else 0
            rows[sample.id] = QueueRow(sample.id, sample.group, None, total, flag_status)
        ranked = rank((_cached_image(key, scores) for key in rows), ORDERS_BY_LABEL[sort_key])
        return [replace(rows[image.sample_id], value=value) for image, value in ranked]

    def groups_available(self) -> list[str]:
        return sorted({s.group for s in self.dataset.samples if s.group})

    def conditions_available(self) -> list[str]:
        return sorted(set().union(*self._condition_tags.values()))

    @cached_property
    def _condition_tags(self) -> dict[str, frozenset[str]]:
        """Tags of every image with a sidecar, read once: the queue filters by them often."""
        return {
            sample.id: frozenset(condition_tags(self.dataset.read_meta(sample)))
            for sample in self.dataset.samples
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
    """The image's entry of :meth:`Workbench.cached_scores` (no scores when there are none)."""
    if cached is None:
        return _CachedImage(sample_id, {}, None)
    scores = {side: cached[side].get(sample_id, {}) for side in ("A", "B")}
    return _CachedImage(sample_id, scores, cached["pair"].get(sample_id) or None)


FLAG_STATES = ("any", "unflagged", "open", "confirmed", "dismissed", "resolved")


def _flag_status(counts: dict[str, int]) -> str:
    """One status per image for filtering: the most pressing of its flags' statuses."""
    for status in ("open", "confirmed", "resolved", "dismissed"):
        if counts.get(status):
            return status
    return "unflagged"


def _decoded_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image whose header alone does not tell (formats other than
    PNG and JPEG), by decoding it."""
    height, width = read_rgb_image(path).shape[:2]
    return height, width
