"""Images people upload for review, kept as files so their flags point at something the
export can show again."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from db.store import ImageRecord, ReviewStore

UPLOADS = "uploads"
"""Name and split of the store's dataset that holds uploaded images."""


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB image (OpenCV writes BGR)."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("the image could not be encoded as PNG")
    return encoded.tobytes()


@dataclass(frozen=True)
class Uploads:
    """The upload folder and its images' records in the review store."""

    store: ReviewStore
    folder: Path | None
    """None for an app that keeps no uploads."""

    def add(self, image: np.ndarray) -> int:
        """Keep an uploaded RGB image as a PNG named by its content and return its store id
        (the same image uploaded twice is one file and one id)."""
        if self.folder is None:
            raise ValueError("this app keeps no uploads (no upload folder configured)")
        self.folder.mkdir(parents=True, exist_ok=True)
        encoded = encode_png(image)
        digest = hashlib.sha256(encoded).hexdigest()
        path = self.folder / f"{digest[:16]}.png"
        if not path.exists():
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(encoded)
            temporary.replace(path)
        uploads = self.store.register_dataset(
            name=UPLOADS, root=str(self.folder), layout="images", split=UPLOADS
        )
        record = ImageRecord(
            image_key=f"uploads/{path.stem}",
            path=str(path),
            content_hash=digest,
            width=int(image.shape[1]),
            height=int(image.shape[0]),
        )
        return self.store.register_images(uploads.id, [record])[record.image_key]

    def dataset_id(self) -> int | None:
        """The store's id of the uploaded images (None before the first upload)."""
        for info in self.store.list_datasets():
            if (info.name, info.split) == (UPLOADS, UPLOADS):
                return info.id
        return None
