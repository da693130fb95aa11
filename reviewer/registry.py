"""The split under review and the models in use, registered in the review store: flags and
cached scores refer to their store ids."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from db.store import ImageRecord, ModelInfo, ReviewStore
from models.datasets import SegmentationDataset, file_fingerprint, image_size
from models.inference import LoadedModel
from reviewer.views import ViewComposer

UNKNOWN_SIZE = (0, 0)
"""The size recorded for an image whose header no longer tells it (it changed since the
scan checked it): start-up reads headers only, never decodes."""


@dataclass
class SplitRegistry:
    """Registers the split's images at start (identified by a cheap fingerprint, so a
    changed file is scored again) and each model when first used; thread-safe."""

    dataset: SegmentationDataset
    store: ReviewStore
    views: ViewComposer
    """Where the models are loaded (the registry records the loaded file's hash)."""
    dataset_id: int = field(init=False)
    _image_ids: dict[str, int] = field(init=False)
    _models: dict[str, ModelInfo] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        info = self.store.register_dataset(
            name=f"{self.dataset.layout}:{self.dataset.root.name}",
            root=str(self.dataset.root),
            layout=self.dataset.layout,
            split=self.dataset.split,
        )
        self.dataset_id = info.id
        records = []
        for sample in self.dataset.samples:
            height, width = image_size(sample.image_path) or UNKNOWN_SIZE
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
        self._image_ids = self.store.register_images(self.dataset_id, records)

    @property
    def image_count(self) -> int:
        return len(self._image_ids)

    def image_id(self, sample_id: str) -> int:
        """The store's id of an image of the split (KeyError naming it if unknown)."""
        try:
            return self._image_ids[sample_id]
        except KeyError:
            raise KeyError(f"no image {sample_id!r} in {self.dataset.describe()}") from None

    def model(self, name: str) -> LoadedModel:
        """The loaded model of a catalogue name; registers its version in the store."""
        loaded = self.views.model(name)
        with self._lock:
            if name in self._models:
                return loaded
        metadata = loaded.checkpoint.metadata.to_dict()
        metadata["assumed_preprocessing"] = loaded.checkpoint.assumed_preprocessing
        info = self.store.register_model(name, loaded.hash, metadata)
        with self._lock:
            self._models.setdefault(name, info)
        return loaded

    def model_id(self, name: str) -> int:
        self.model(name)
        return self._models[name].id
