"""RGB images as JPEG ``data:`` URLs, for the pages that embed them (the review board, the
HTML report), so that a page shows them without another request.

JPEG rather than PNG: overlays of noisy street photos compress to a fraction of PNG's
bytes and encoding time. Chroma is kept at full resolution (4:4:4) so that the colours of
thin classes do not bleed across their boundaries; the exact label maps are in the
exported masks, not in the pages.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np


def shrink(image: np.ndarray, max_width: int | None) -> np.ndarray:
    """The image at most ``max_width`` pixels wide (area-averaged, which keeps it crisp);
    None keeps every size."""
    height, width = image.shape[:2]
    if max_width is None or width <= max_width:
        return image
    size = (max_width, max(1, round(height * max_width / width)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def jpeg_data_url(image: np.ndarray, quality: int, max_width: int | None = None) -> str:
    """An RGB image as a JPEG ``data:`` URL of ``quality`` (0..100), shrunk to
    ``max_width`` pixels if it is wider."""
    bgr = cv2.cvtColor(np.ascontiguousarray(shrink(image, max_width)), cv2.COLOR_RGB2BGR)
    params = [
        cv2.IMWRITE_JPEG_QUALITY,
        quality,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    ]
    ok, encoded = cv2.imencode(".jpg", bgr, params)
    if not ok:
        raise ValueError("could not encode an image as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")
