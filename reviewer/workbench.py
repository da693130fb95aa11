"""The services of one running review app, built together over one split: each does one
job and is thread-safe, since several browser sessions share them. Nothing here knows
about Gradio.

- :class:`~reviewer.views.ViewComposer`: an image and two models -> an ``ImageView``
  (the export uses it alone);
- :class:`~reviewer.registry.SplitRegistry`: the split's images and the models in use,
  registered in the review store;
- :class:`~reviewer.review_queue.ScoreCache` and
  :class:`~reviewer.review_queue.ReviewQueue`: the split's scores for a pair, and its
  images ranked by them;
- :class:`~reviewer.uploads.Uploads`: photos people upload, kept for their flags;
- :func:`~reviewer.background.score_in_background`: the first evaluation behind the app.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from db.store import ReviewStore
from models.catalogue import ModelCatalogue
from models.checkpoints import CheckpointError
from models.datasets import SegmentationDataset
from models.evaluate import ProgressCallback
from models.inference import InferenceEngine
from models.instances import DEFAULT_MIN_RECALL
from models.labels import DEFAULT_GROUPS, ImportanceGroups
from models.settings import ScoringSettings
from reviewer.background import BackgroundScoring, score_in_background
from reviewer.registry import SplitRegistry
from reviewer.review_queue import ReviewQueue, ScoreCache
from reviewer.uploads import Uploads
from reviewer.views import ViewComposer


@dataclass
class Workbench:
    """What one running review app shares between browser sessions."""

    dataset: SegmentationDataset
    engine: InferenceEngine
    store: ReviewStore
    catalogue: ModelCatalogue
    upload_dir: Path | None = None
    """Where images people upload for review are kept (so their flags point at a file)."""
    groups: ImportanceGroups = DEFAULT_GROUPS
    min_recall: float = DEFAULT_MIN_RECALL
    views: ViewComposer = field(init=False)
    registry: SplitRegistry = field(init=False)
    scores: ScoreCache = field(init=False)
    queue: ReviewQueue = field(init=False)
    uploads: Uploads = field(init=False)
    background: BackgroundScoring | None = field(init=False, default=None)
    """The split's first evaluation when it runs behind the app (:meth:`score_in_background`)."""

    def __post_init__(self) -> None:
        if not self.catalogue:
            raise CheckpointError("no model checkpoint found; pass --models FILE_OR_DIR")
        self.views = ViewComposer(
            self.dataset, self.engine, self.catalogue, self.groups, self.min_recall
        )
        self.registry = SplitRegistry(self.dataset, self.store, self.views)
        self.scores = ScoreCache(
            self.registry, ScoringSettings(self.groups, min_recall=self.min_recall)
        )
        self.queue = ReviewQueue(self.scores)
        self.uploads = Uploads(self.store, self.upload_dir)

    def score_in_background(
        self,
        name_a: str,
        name_b: str,
        progress: ProgressCallback | None = None,
        when_missing: bool = False,
        starting: Callable[[], None] | None = None,
        after: threading.Event | None = None,
    ) -> BackgroundScoring:
        """Start the pair's evaluation of the split behind the app (with ``when_missing``,
        only if the store lacks its scores, see :func:`score_in_background`); the page
        follows it through :attr:`background`."""
        self.background = score_in_background(
            self.scores, name_a, name_b, progress, when_missing, starting, after
        )
        return self.background
