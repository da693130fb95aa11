"""Conditions of a scene (dusk, fog, rain, blur, contrast, noise) and their effect on the image.

Photometry touches the image only, never the labels: a foggy road is still road.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.labels import LABEL_ID_BY_NAME as L
from models.synthetic.canvas import SHIFT, SUB

# Texture amplitudes per label id: (fine per-pixel noise, blotchy low-frequency noise).
_TEXTURE = np.zeros((256, 2), np.float32)
for _name, _amp in {
    "road": (5, 5),
    "sidewalk": (4, 5),
    "building": (3, 6),
    "wall": (6, 6),
    "fence": (4, 4),
    "vegetation": (16, 26),
    "terrain": (10, 16),
    "sky": (1, 6),
    "pole": (2, 3),
    "traffic light": (2, 2),
    "traffic sign": (2, 2),
    "person": (3, 4),
    "rider": (3, 4),
    "car": (3, 3),
    "truck": (3, 4),
    "bus": (3, 3),
    "train": (3, 3),
    "motorcycle": (3, 4),
    "bicycle": (3, 4),
}.items():
    _TEXTURE[L[_name]] = _amp


@dataclass(frozen=True)
class Conditions:
    """The photometric and camera conditions of one scene (recorded in its sidecar)."""

    dusk: bool
    brightness: float
    tint: tuple[float, float, float]
    contrast: float
    fog: float
    rain: float
    blur: float
    noise: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Conditions:
        dusk = rng.random() < 0.22
        low = rng.random() < 0.18
        r, g, b = ((1.08, 0.95, 0.82) if dusk else (1.0, 1.0, 1.0)) * rng.uniform(0.94, 1.06, 3)
        return cls(
            dusk=dusk,
            brightness=rng.uniform(0.5, 0.75) if dusk else rng.uniform(0.85, 1.15),
            tint=(float(r), float(g), float(b)),
            contrast=rng.uniform(0.4, 0.6) if low else rng.uniform(0.85, 1.1),
            fog=rng.uniform(0.25, 0.6) if rng.random() < 0.15 else 0.0,
            rain=rng.uniform(0.3, 1.0) if rng.random() < 0.15 else 0.0,
            blur=rng.uniform(0.6, 1.4) if rng.random() < 0.3 else 0.0,
            noise=rng.uniform(1.0, 4.0),
        )

    @property
    def low_contrast(self) -> bool:
        return self.contrast < 0.65 or self.fog > 0.4 or (self.dusk and self.brightness < 0.6)


def apply_photometry(
    rng: np.random.Generator,
    image: np.ndarray,
    label_ids: np.ndarray,
    cond: Conditions,
    horizon: float,
) -> np.ndarray:
    """Texture, lighting, fog, contrast, rain, blur and sensor noise: the image only."""
    h, w = label_ids.shape
    fine = rng.standard_normal((h, w), np.float32)
    coarse = rng.standard_normal((max(2, h // 8), max(2, w // 8)), np.float32)
    blotch = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    delta = (_TEXTURE[label_ids, 0] + np.float32(cond.noise)) * fine
    delta += _TEXTURE[label_ids, 1] * blotch
    # Lighting, fog (strongest near the horizon) and contrast are one affine map per row and
    # channel, out = image * gain + offset, applied in a single pass.
    gain = np.asarray(cond.tint, np.float32) * np.float32(cond.brightness)
    rows = np.arange(h, dtype=np.float32)
    fog_weight = np.zeros(h, np.float32)
    if cond.fog:
        fog_weight = cond.fog * (np.exp(-np.abs(rows - horizon) / (0.35 * h)) + 0.15)
        fog_weight = np.clip(fog_weight, 0, 0.95).astype(np.float32)
    fog = np.float32(200 * cond.brightness)
    row_means = cv2.reduce(image, 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).reshape(h, 3)
    keep = (1 - fog_weight)[:, None]
    lit_rows = row_means * gain * keep + fog * fog_weight[:, None]
    mean = lit_rows.mean(axis=0)
    k = np.float32(cond.contrast)
    scale = (k * gain * keep)[:, None, :]
    offset = (k * fog * fog_weight[:, None] + (1 - k) * mean)[:, None, :]
    img = (image.astype(np.float32) + delta[..., None]) * scale + offset
    if cond.rain:
        n = int(300 * cond.rain)
        starts = rng.uniform((0, 0), (w, h), (n, 2))
        length = rng.uniform(6, 16, (n, 1))
        ends = starts + length * np.array([0.25, 1.0])
        streaks = np.stack([starts, ends], 1)
        layer = np.zeros((h, w), np.float32)
        cv2.polylines(
            layer,
            list(np.round(streaks * SUB).astype(np.int32)),
            False,
            1.0,
            1,
            cv2.LINE_AA,
            SHIFT,
        )
        img += (45 * cond.rain * layer)[..., None]
    if cond.blur:
        img = cv2.GaussianBlur(img, (0, 0), cond.blur)
    return np.clip(img, 0, 255).astype(np.uint8)
