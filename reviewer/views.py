"""View composition: both models' predictions on one image turned into an :class:`ImageView`
(every array and score a panel shows). The GUI and the export both draw from it; it knows
nothing of the review store, the queue or Gradio."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field, fields, replace

import numpy as np

from models.bounded_cache import BoundedCache
from models.catalogue import ModelCatalogue
from models.datasets import Sample, SegmentationDataset
from models.inference import InferenceEngine, LoadedModel, Prediction
from models.instances import DEFAULT_MIN_RECALL
from models.labels import DEFAULT_GROUPS, ImportanceGroups
from models.metrics import disagreement_map, error_map
from models.scoring import ImageResult, score_image
from models.suspects import suspects_of_pair

VIEW_CACHE_BYTES = 512 * 1024**2
"""What the recent views may hold in all (:attr:`ImageView.nbytes`)."""
ViewKey = tuple[str, str, str]
"""(sample id, name of model A, name of model B): what one :class:`ImageView` shows."""


@dataclass(frozen=True)
class ImageView:
    """Everything the review panels show for one image and one pair of models."""

    sample_id: str
    image: np.ndarray
    ground_truth: np.ndarray | None
    prediction_a: np.ndarray
    prediction_b: np.ndarray
    result: ImageResult | None
    """Scores of models "A" and "B" on this image (:func:`score_image`); None without labels
    and in a view made for the panels only (:meth:`ViewComposer.panels_view`)."""
    error_a: np.ndarray | None
    error_b: np.ndarray | None
    kinds_a: np.ndarray | None
    """A's errors by kind: codes of :data:`models.maps.TAXONOMY_MAP` (GT needed)."""
    kinds_b: np.ndarray | None
    disagreement: np.ndarray | None
    """Codes of :func:`models.metrics.disagreement_map` on critical pixels (GT needed)."""
    models_differ: np.ndarray
    """Where A and B predict different classes (works without ground truth)."""
    meta: dict = field(default_factory=dict)
    suspect_map: np.ndarray | None = None
    """(H, W) int32: k inside the k-th suspect ground-truth region of ``result.suspects``
    (1-based), 0 elsewhere (GT needed)."""

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this view holds, each buffer counted once however many fields
        share it (whole buffers, for an array that is a slice of a larger one): what keeping
        the view costs. Its scores and metadata are kilobytes and left out."""
        buffers: dict[int, int] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, np.ndarray):
                owner = value.base if isinstance(value.base, np.ndarray) else value
                buffers[id(owner)] = owner.nbytes
        return sum(buffers.values())


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
        kinds_a=None,
        kinds_b=None,
        disagreement=None,
        models_differ=prediction_a != prediction_b,
        meta=meta or {},
    )


def unscored_view(
    sample_id: str,
    image: np.ndarray,
    ground_truth: np.ndarray,
    predictions: tuple[np.ndarray, np.ndarray],
    groups: ImportanceGroups,
    meta: dict,
) -> ImageView:
    """The view of an image with ground truth as far as the panels drawn by importance
    need it: the error and disagreement maps of :func:`labelled_view`, without the scores,
    the maps of error kinds and the suspect regions (None)."""
    prediction_a, prediction_b = predictions
    return ImageView(
        sample_id=sample_id,
        image=image,
        ground_truth=ground_truth,
        prediction_a=prediction_a,
        prediction_b=prediction_b,
        result=None,
        error_a=error_map(ground_truth, prediction_a, groups),
        error_b=error_map(ground_truth, prediction_b, groups),
        kinds_a=None,
        kinds_b=None,
        disagreement=disagreement_map(ground_truth, prediction_a, prediction_b, groups),
        models_differ=prediction_a != prediction_b,
        meta=meta,
    )


def labelled_view(
    sample_id: str,
    image: np.ndarray,
    ground_truth: np.ndarray,
    predictions: tuple[np.ndarray, np.ndarray],
    result: ImageResult,
    groups: ImportanceGroups,
    meta: dict,
    suspect_map: np.ndarray | None = None,
) -> ImageView:
    """The view of an image with ground truth: the scores, the error maps and the suspect
    ground-truth regions as well (the maps of error kinds come with ``result``, scored with
    ``keep_maps``)."""
    kinds = result.taxonomy_maps or {}
    return replace(
        unscored_view(sample_id, image, ground_truth, predictions, groups, meta),
        result=result,
        kinds_a=kinds.get("A"),
        kinds_b=kinds.get("B"),
        suspect_map=suspect_map,
    )


@dataclass
class ViewComposer:
    """Views of one split's images for pairs of catalogue models; thread-safe, with the
    recent views kept (people step back and forth through the queue) up to ``cache_bytes``
    of the arrays they hold (:attr:`ImageView.nbytes`), so large images keep fewer."""

    dataset: SegmentationDataset
    engine: InferenceEngine
    catalogue: ModelCatalogue
    groups: ImportanceGroups = DEFAULT_GROUPS
    min_recall: float = DEFAULT_MIN_RECALL
    cache_bytes: int = VIEW_CACHE_BYTES
    _views: BoundedCache[ViewKey, ImageView] = field(init=False)
    _computing: dict[ViewKey, Future[ImageView]] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._views = BoundedCache(self.cache_bytes)

    def model(self, name: str) -> LoadedModel:
        """The loaded model of a catalogue name (the engine keeps it loaded)."""
        return self.engine.load(self.catalogue.path(name))

    def view(self, sample_id: str, name_a: str, name_b: str) -> ImageView:
        """Both models' predictions, errors and scores on one image (cached per pair). A
        view asked for again while it is computed (the page's tables and its plots ask at
        once) waits for that computation instead of repeating it."""
        key = (sample_id, name_a, name_b)
        with self._lock:
            cached = self._views.get(key)
            if cached is not None:
                return cached
            computing = self._computing.get(key)
            owner = computing is None
            if owner:
                computing = self._computing[key] = Future()
                computing.set_running_or_notify_cancel()
        if not owner:
            return computing.result()
        try:
            view = self._compute(key)
        except BaseException as error:
            with self._lock:
                del self._computing[key]
            computing.set_exception(error)
            raise
        with self._lock:
            self._views.put(key, view)
            del self._computing[key]
        computing.set_result(view)
        return view

    def view_upload(self, image: np.ndarray, name_a: str, name_b: str) -> ImageView:
        """Predictions of both models on a user's image without ground truth."""
        prediction_a = self.engine.predict(self.model(name_a), image).labels
        prediction_b = self.engine.predict(self.model(name_b), image).labels
        return predictions_only_view("upload", image, prediction_a, prediction_b)

    def panels_view(self, sample_id: str, name_a: str, name_b: str) -> ImageView:
        """What the image panels drawn by importance need, sooner than :meth:`view`: the
        cached full view when there is one, else one without the scores, the maps of error
        kinds and the suspect regions (``result``, ``kinds_*`` and ``suspect_map`` None),
        which the details under the panels ask :meth:`view` for afterwards (the
        predictions are cached by the engine, so they are not computed twice)."""
        cached = self._views.get((sample_id, name_a, name_b))
        if cached is not None or not self.dataset.has_labels:
            return cached or self.view(sample_id, name_a, name_b)
        sample, image, predictions = self._predict(sample_id, name_a, name_b)
        labels = tuple(prediction.labels for prediction in predictions)
        gt = self.dataset.read_label(sample)
        meta = self.dataset.read_meta(sample)
        return unscored_view(sample_id, image, gt, labels, self.groups, meta)

    def _predict(
        self, sample_id: str, name_a: str, name_b: str
    ) -> tuple[Sample, np.ndarray, tuple[Prediction, Prediction]]:
        """The image's sample, its picture and both models' (cached) predictions."""
        sample = self.dataset.sample(sample_id)
        image = self.dataset.read_image(sample)
        pair = (
            self.engine.predict(self.model(name_a), image, sample_id),
            self.engine.predict(self.model(name_b), image, sample_id),
        )
        return sample, image, pair

    def _compute(self, key: ViewKey) -> ImageView:
        sample_id, name_a, name_b = key
        sample, image, pair = self._predict(sample_id, name_a, name_b)
        prediction_a, prediction_b = (prediction.labels for prediction in pair)
        meta = self.dataset.read_meta(sample)
        if not self.dataset.has_labels:
            return predictions_only_view(sample_id, image, prediction_a, prediction_b, meta)
        gt = self.dataset.read_label(sample)
        suspects = suspects_of_pair(gt, pair, self.dataset.annotated_classes)
        result = score_image(
            gt,
            {"A": prediction_a, "B": prediction_b},
            self.groups,
            annotated=self.dataset.annotated_classes,
            instance_ids=self.dataset.read_instances(sample),
            min_recall=self.min_recall,
            sample_id=sample_id,
            keep_maps=True,
            suspects=suspects.regions,
        )
        predictions = (prediction_a, prediction_b)
        return labelled_view(
            sample_id,
            image,
            gt,
            predictions,
            result,
            self.groups,
            meta,
            suspect_map=suspects.region_map,
        )
