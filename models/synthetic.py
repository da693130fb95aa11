"""Synthetic road scenes in the Cityscapes layout: a demo set that needs no download.

A new user gets two SegNet models trained and compared without any dataset, so the scenes
must be learnable by a small network: every class has a consistent colour family and
texture, objects have sensible sizes, and thin classes (pole, traffic light, traffic sign,
rider, bicycle, motorcycle) appear in most images. Scenes are drawn with OpenCV polygons
through a ground-plane pinhole camera, far to near (painter's algorithm), into the image
and a uint16 map in the Cityscapes instance encoding at the same time, so labels align
with the image exactly. Photometric effects (dusk, fog, rain, blur, contrast, noise) touch
the image only.

Each image's random stream comes from (seed, split, index), so a set is byte-identical
whatever the order or number of worker processes.

Run ``python -m models.synthetic --help`` for the command line.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from models.datasets import SYNTHETIC_STAMP
from models.labels import (
    CLASS_NAMES,
    INSTANCE_CLASSES,
    LABEL_COLOR_BY_ID,
    LABEL_ID_BY_NAME,
    LABEL_ID_TO_TRAIN_ID,
    NUM_EVALUATED,
)

GENERATOR_VERSION = 1
"""Bumped whenever the drawing changes, so a cached set of an older generator is rebuilt."""
STAMP_NAME = SYNTHETIC_STAMP
SETTINGS_NAME = "synthetic.settings.json"
"""Written first and kept: marks a folder as ours even when a run was cut short."""
FORMAT_NAME = "segnet-review-bench synthetic road scenes"
CITIES: dict[str, tuple[str, ...]] = {
    "train": ("synth_alpha", "synth_bravo", "synth_charlie"),
    "val": ("synth_delta", "synth_echo"),
    "test": ("synth_foxtrot", "synth_golf"),
}
FRAMES_PER_SEQUENCE = 10
ALL_TRAIN_IDS = frozenset(range(NUM_EVALUATED))

L = LABEL_ID_BY_NAME
INSTANCE_NAMES = tuple(CLASS_NAMES[train_id] for train_id in INSTANCE_CLASSES)
"""Cityscapes classes with instances, in ``instanceIds`` order of label id."""
INSTANCE_LABEL_IDS = tuple(L[name] for name in INSTANCE_NAMES)
SHIFT = 4
"""Sub-pixel bits for cv2 polygon vertices."""
_SUB = float(1 << SHIFT)
_CIRCLE = np.stack(
    [np.cos(np.linspace(0, 2 * np.pi, 17)[:-1]), np.sin(np.linspace(0, 2 * np.pi, 17)[:-1])], 1
)

Colour = tuple[int, int, int]


class SyntheticError(ValueError):
    """A synthetic-set request that cannot be carried out (bad folder, size or counts)."""


@dataclass(frozen=True)
class Scene:
    """One rendered scene: RGB image, Cityscapes labelIds, instanceIds and its conditions."""

    image: np.ndarray
    label_ids: np.ndarray
    instance_ids: np.ndarray
    meta: dict


@dataclass(frozen=True)
class SyntheticSettings:
    """What determines a synthetic set's content; stored in its ``synthetic.json`` stamp."""

    counts: Mapping[str, int]
    size: tuple[int, int] = (256, 512)
    seed: int = 0

    def to_dict(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "generator_version": GENERATOR_VERSION,
            "seed": int(self.seed),
            "size": [int(self.size[0]), int(self.size[1])],
            "counts": {split: int(n) for split, n in self.counts.items()},
        }


DEMO_SETTINGS = SyntheticSettings(counts={"train": 1000, "val": 200, "test": 200})
DEMO_FOLDER = "demo-v1"
DEMO_DATA = "demo"
"""What a user passes as ``--data`` to mean the demo set."""


# --------------------------------------------------------------------------- camera, canvas


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at lateral 0, height ``height`` above the road, looking along +Z."""

    focal: float
    cx: float
    horizon: float
    height: float
    yaw: float

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) as X right, Y up, Z forward (metres) -> pixels (..., 2)."""
        cos, sin = math.cos(self.yaw), math.sin(self.yaw)
        x, y, z = points[..., 0], points[..., 1], points[..., 2]
        inverse = self.focal / np.maximum(sin * x + cos * z, 0.1)
        out = np.empty((*points.shape[:-1], 2))
        out[..., 0] = self.cx + (cos * x - sin * z) * inverse
        out[..., 1] = self.horizon + (self.height - y) * inverse
        return out

    def scale(self, z: float) -> float:
        """Pixels per metre at depth ``z``."""
        return self.focal / max(z, 0.1)


class Canvas:
    """The image and the instance-encoded label map, drawn together so they always align."""

    def __init__(self, height: int, width: int, camera: Camera) -> None:
        self.image = np.zeros((height, width, 3), np.uint8)
        self.ids = np.zeros((height, width), np.uint16)
        self.camera = camera
        self._next_k: dict[int, int] = {}
        self._pending: list[tuple[np.ndarray, Colour, int, int]] = []
        self.witnesses: dict[str, list[int]] = {}
        """Hard-case tag -> instance ids that must stay visible for the tag to hold."""
        self._batching = False

    def new_instance(self, label_id: int) -> int:
        """A fresh instance id ``label_id * 1000 + k`` (renumbered densely at the end)."""
        k = self._next_k.get(label_id, 0)
        self._next_k[label_id] = k + 1
        return label_id * 1000 + min(k, 999)

    def fill(self, world: np.ndarray, colour: Colour, ident: int, px: int = 0) -> None:
        """Fill world polygons (K, N, 3) or (N, 3) that do not overlap each other, or draw
        them as open polylines ``px`` pixels thick. Inside :meth:`batch`, drawing waits for
        the end of the batch so that all its points are projected at once (a large saving:
        most polygons have four corners)."""
        world = np.asarray(world, np.float64)
        if world.ndim == 2:
            world = world[None]
        if len(world):
            self._pending.append((world, colour, ident, px))
        if not self._batching:
            self.flush()

    @contextmanager
    def batch(self) -> Iterator[None]:
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            self.flush()

    def flush(self) -> None:
        """Project and draw the pending polygons, in the order they were given."""
        if not self._pending:
            return
        points = np.concatenate([item[0].reshape(-1, 3) for item in self._pending])
        pix = (self.camera.project(points) * _SUB).round().astype(np.int32)
        start = 0
        for world, colour, ident, px in self._pending:
            k, n = world.shape[:2]
            polygons = list(pix[start : start + k * n].reshape(k, n, 2))
            start += k * n
            if px:
                cv2.polylines(self.image, polygons, False, colour, px, cv2.LINE_8, SHIFT)
                cv2.polylines(self.ids, polygons, False, int(ident), px, cv2.LINE_8, SHIFT)
            else:
                cv2.fillPoly(self.image, polygons, colour, cv2.LINE_8, SHIFT)
                cv2.fillPoly(self.ids, polygons, int(ident), cv2.LINE_8, SHIFT)
        self._pending.clear()


# A sprite part: ("poly" | "line", points (N, 2) in metres (u along the sprite plane, v up),
# colour, line thickness in metres). Sprites are drawn in a vertical plane through a ground
# point, so they foreshorten with the camera like any other geometry.
Part = tuple[str, np.ndarray, Colour, float]


def _poly(points: Sequence[Sequence[float]], colour: Colour) -> Part:
    return ("poly", np.asarray(points, np.float64), colour, 0.0)


def _ellipse(cu: float, cv: float, ru: float, rv: float, colour: Colour) -> Part:
    return ("poly", _CIRCLE * (ru, rv) + (cu, cv), colour, 0.0)


def _line(points: Sequence[Sequence[float]], colour: Colour, thickness: float) -> Part:
    return ("line", np.asarray(points, np.float64), colour, thickness)


def draw_sprite(
    canvas: Canvas, x: float, z: float, parts: Sequence[Part], ident: int, mirror: bool = False
) -> None:
    """Draw parts in the vertical plane facing the road axis through ground point (x, z)."""
    scale = canvas.camera.scale(z)
    with canvas.batch():
        for kind, uv, colour, thickness in parts:
            world = np.empty((len(uv), 3))
            world[:, 0] = x - uv[:, 0] if mirror else x + uv[:, 0]
            world[:, 1] = uv[:, 1]
            world[:, 2] = z
            px = max(1, round(thickness * scale)) if kind == "line" else 0
            canvas.fill(world, colour, ident, px)


def draw_box(
    canvas: Canvas,
    x0: float,
    x1: float,
    y0: float,
    y1: float,
    z0: float,
    z1: float,
    colour: Colour,
    ident: int,
) -> tuple[str | None, bool]:
    """Draw the visible faces of an axis-aligned box; return (visible side, top visible).

    Which faces of a box are visible depends only on where the camera is (the origin at
    ``camera.height``), so the side facing the road centre and the top (when below the
    camera) are drawn shaded, then the near face.
    """
    cam_h = canvas.camera.height
    side = "left" if x0 > 0 else ("right" if x1 < 0 else None)
    if side is not None:
        xs = x0 if side == "left" else x1
        face = [(xs, y0, z0), (xs, y0, z1), (xs, y1, z1), (xs, y1, z0)]
        canvas.fill(np.array(face), _shade(colour, 0.78), ident)
    top = y1 < cam_h
    if top:
        face = [(x0, y1, z0), (x1, y1, z0), (x1, y1, z1), (x0, y1, z1)]
        canvas.fill(np.array(face), _shade(colour, 1.1), ident)
    canvas.fill(np.array([(x0, y0, z0), (x1, y0, z0), (x1, y1, z0), (x0, y1, z0)]), colour, ident)
    return side, top


def _clip_colour(r: float, g: float, b: float) -> Colour:
    return (min(255, max(0, int(r))), min(255, max(0, int(g))), min(255, max(0, int(b))))


def _shade(colour: Colour, factor: float) -> Colour:
    return _clip_colour(colour[0] * factor, colour[1] * factor, colour[2] * factor)


def _jitter(rng: np.random.Generator, base: Sequence[float], amount: float) -> Colour:
    """A colour near ``base``: shared brightness shift plus a smaller per-channel one."""
    n = rng.standard_normal(4)
    shift = amount * (n[0] + n[1:] / 3)
    return _clip_colour(base[0] + shift[0], base[1] + shift[1], base[2] + shift[2])


def _pick(rng: np.random.Generator, options: Sequence[Sequence[float]], amount: float) -> Colour:
    return _jitter(rng, options[int(rng.integers(len(options)))], amount)


# --------------------------------------------------------------------------- colour families

SKIN = ((235, 195, 165), (200, 150, 115), (150, 100, 70), (95, 65, 45))
HAIR = ((30, 25, 20), (80, 55, 35), (150, 110, 60), (200, 180, 140), (110, 110, 110))
SHIRTS = (
    (200, 40, 40),
    (40, 70, 160),
    (230, 230, 225),
    (40, 40, 45),
    (60, 130, 70),
    (230, 170, 40),
    (150, 60, 140),
    (120, 120, 125),
    (240, 120, 60),
    (90, 160, 200),
)
PANTS = ((35, 40, 70), (30, 30, 32), (90, 85, 80), (160, 140, 110), (60, 60, 90))
RIDER_JACKETS = ((240, 220, 30), (250, 120, 20), (30, 30, 35), (200, 30, 30), (60, 200, 90))
HELMETS = ((240, 240, 240), (220, 30, 30), (20, 20, 25), (30, 90, 200), (250, 200, 0))
CAR_PAINT = (
    (225, 225, 225),
    (170, 172, 178),
    (30, 30, 35),
    (160, 25, 25),
    (30, 60, 140),
    (90, 95, 100),
    (40, 80, 60),
    (200, 180, 140),
    (120, 20, 30),
)
TRUCK_CABS = ((200, 30, 30), (30, 70, 170), (235, 235, 235), (230, 160, 20))
TRUCK_CARGO = ((235, 235, 230), (190, 192, 195), (60, 90, 140), (130, 110, 80))
BUS_PAINT = ((245, 190, 20), (230, 110, 20), (20, 90, 190), (30, 140, 70), (200, 30, 40))
TRAM_BAND = ((200, 25, 30), (25, 70, 170), (30, 140, 60), (240, 170, 20))
MOTO_PAINT = ((200, 20, 20), (20, 20, 25), (30, 70, 180), (230, 120, 0), (180, 180, 190))
BIKE_FRAMES = ((220, 30, 30), (30, 140, 220), (250, 200, 20), (30, 170, 80), (240, 240, 240))
BUILDINGS = (
    (150, 82, 60),
    (205, 180, 140),
    (140, 138, 132),
    (222, 208, 178),
    (190, 140, 120),
    (120, 100, 85),
    (175, 160, 150),
)
WALLS = ((180, 178, 165), (150, 140, 120), (200, 195, 180))
FENCES = ((55, 85, 60), (125, 90, 55), (120, 125, 130))
VEGETATION = ((55, 105, 40), (75, 120, 45), (40, 85, 35))
TERRAIN = ((135, 150, 75), (150, 135, 95), (120, 140, 70))


# --------------------------------------------------------------------------- sprites


def person_parts(rng: np.random.Generator, height: float, view: str) -> list[Part]:
    """A pedestrian, ``view`` 'front', 'back' or 'side' (walking towards +u)."""
    h = height
    skin, hair = _pick(rng, SKIN, 8), _pick(rng, HAIR, 10)
    shirt, pants = _pick(rng, SHIRTS, 18), _pick(rng, PANTS, 12)
    shoes = _jitter(rng, (35, 32, 30), 8)
    parts: list[Part] = []
    if view == "side":
        stride = rng.uniform(0.08, 0.2) * h
        for sign in (-1, 1):
            foot = sign * stride
            parts.append(
                _poly(
                    [
                        (foot - 0.05 * h, 0),
                        (foot + 0.03 * h, 0),
                        (0.04 * h, 0.49 * h),
                        (-0.05 * h, 0.49 * h),
                    ],
                    pants,
                )
            )
            parts.append(
                _poly(
                    [
                        (foot - 0.05 * h, 0),
                        (foot + 0.08 * h, 0),
                        (foot + 0.06 * h, 0.03 * h),
                        (foot - 0.05 * h, 0.03 * h),
                    ],
                    shoes,
                )
            )
        parts.append(
            _poly(
                [
                    (-0.075 * h, 0.47 * h),
                    (0.07 * h, 0.47 * h),
                    (0.065 * h, 0.81 * h),
                    (-0.07 * h, 0.81 * h),
                ],
                shirt,
            )
        )
        swing = rng.uniform(-0.12, 0.12) * h
        parts.append(
            _poly(
                [
                    (-0.03 * h, 0.79 * h),
                    (0.03 * h, 0.79 * h),
                    (swing + 0.03 * h, 0.5 * h),
                    (swing - 0.03 * h, 0.5 * h),
                ],
                _shade(shirt, 0.85),
            )
        )
        parts.append(_ellipse(0.012 * h, 0.9 * h, 0.058 * h, 0.07 * h, skin))
        parts.append(_ellipse(-0.012 * h, 0.925 * h, 0.055 * h, 0.05 * h, hair))
        return parts
    for sign in (-1, 1):
        parts.append(
            _poly(
                [
                    (sign * 0.1 * h, 0),
                    (sign * 0.012 * h, 0),
                    (sign * 0.008 * h, 0.49 * h),
                    (sign * 0.11 * h, 0.49 * h),
                ],
                pants,
            )
        )
        parts.append(
            _poly(
                [
                    (sign * 0.135 * h, 0.79 * h),
                    (sign * 0.175 * h, 0.76 * h),
                    (sign * 0.165 * h, 0.47 * h),
                    (sign * 0.125 * h, 0.47 * h),
                ],
                _shade(shirt, 0.9),
            )
        )
        parts.append(_ellipse(sign * 0.145 * h, 0.455 * h, 0.022 * h, 0.03 * h, skin))
        parts.append(
            _poly(
                [
                    (sign * 0.1 * h, 0),
                    (sign * 0.015 * h, 0),
                    (sign * 0.015 * h, 0.03 * h),
                    (sign * 0.1 * h, 0.03 * h),
                ],
                shoes,
            )
        )
    parts.append(
        _poly(
            [
                (-0.125 * h, 0.47 * h),
                (0.125 * h, 0.47 * h),
                (0.14 * h, 0.8 * h),
                (0.06 * h, 0.83 * h),
                (-0.06 * h, 0.83 * h),
                (-0.14 * h, 0.8 * h),
            ],
            shirt,
        )
    )
    parts.append(_ellipse(0, 0.9 * h, 0.06 * h, 0.072 * h, skin))
    if view == "back":
        parts.append(_ellipse(0, 0.905 * h, 0.062 * h, 0.07 * h, hair))
        if rng.random() < 0.4:
            bag = _pick(rng, SHIRTS, 15)
            parts.append(
                _poly(
                    [
                        (-0.09 * h, 0.55 * h),
                        (0.09 * h, 0.55 * h),
                        (0.085 * h, 0.78 * h),
                        (-0.085 * h, 0.78 * h),
                    ],
                    bag,
                )
            )
    else:
        parts.append(_ellipse(0, 0.935 * h, 0.062 * h, 0.042 * h, hair))
    return parts


def rider_parts(rng: np.random.Generator, vehicle: str, view: str) -> list[Part]:
    """The person on a two-wheeler ('bicycle' or 'motorcycle'); 'side' or 'rear' view."""
    moto = vehicle == "motorcycle"
    jacket = _pick(rng, ((40, 40, 45), (90, 30, 30), *RIDER_JACKETS) if moto else RIDER_JACKETS, 15)
    pants = _pick(rng, PANTS, 10)
    helmet = _pick(rng, HELMETS, 12)
    skin = _pick(rng, SKIN, 8)
    seat = 0.8 if moto else 0.88
    head_r = 0.14 if moto else 0.11
    if view == "side":
        hip, shoulder = (-0.25 if moto else -0.17, seat + 0.05), (0.05, seat + 0.62)
        hand = (0.45 if moto else 0.3, seat + 0.2)
        knee, foot = (0.15, seat - 0.2), (0.02, 0.32)
        return [
            _line([hip, knee, foot], pants, 0.13),
            _line([hip, (shoulder[0] - 0.05, shoulder[1] - 0.1)], jacket, 0.3),
            _line([shoulder, hand], _shade(jacket, 0.85), 0.09),
            _ellipse(shoulder[0] + 0.1, shoulder[1] + 0.2, head_r, head_r, skin),
            _ellipse(shoulder[0] + 0.08, shoulder[1] + 0.24, head_r * 1.08, head_r * 0.8, helmet),
        ]
    return [
        _poly(
            [
                (-0.17, seat - 0.35),
                (-0.07, seat - 0.35),
                (-0.05, seat + 0.05),
                (-0.17, seat + 0.05),
            ],
            pants,
        ),
        _poly(
            [(0.17, seat - 0.35), (0.07, seat - 0.35), (0.05, seat + 0.05), (0.17, seat + 0.05)],
            pants,
        ),
        _poly([(-0.2, seat), (0.2, seat), (0.23, seat + 0.58), (-0.23, seat + 0.58)], jacket),
        _line([(-0.22, seat + 0.55), (-0.3, seat + 0.2)], _shade(jacket, 0.85), 0.09),
        _line([(0.22, seat + 0.55), (0.3, seat + 0.2)], _shade(jacket, 0.85), 0.09),
        _ellipse(0, seat + 0.72, head_r, head_r * 1.1, helmet),
    ]


def two_wheeler_parts(rng: np.random.Generator, vehicle: str, view: str, lit: bool) -> list[Part]:
    """A bicycle or motorcycle; 'side' view shows both wheels, 'rear' the back wheel."""
    tyre = _jitter(rng, (25, 25, 28), 5)
    if vehicle == "bicycle":
        frame = _pick(rng, BIKE_FRAMES, 15)
        rim = _jitter(rng, (150, 150, 155), 12)
        if view == "rear":
            return [
                _poly([(-0.03, 0), (0.03, 0), (0.03, 0.68), (-0.03, 0.68)], tyre),
                _poly([(-0.06, 0.55), (0.06, 0.55), (0.06, 0.75), (-0.06, 0.75)], frame),
                _line([(-0.3, 1.0), (0.3, 1.0)], _shade(frame, 0.7), 0.05),
                _poly([(-0.05, 0.3), (0.05, 0.3), (0.05, 0.4), (-0.05, 0.4)], (220, 30, 30)),
            ]
        r = 0.34
        parts: list[Part] = []
        for cu in (-0.52, 0.52):
            parts.append(_ellipse(cu, r, r, r, tyre))
            parts.append(_ellipse(cu, r, r * 0.82, r * 0.82, rim))
            parts.append(_line([(cu - r * 0.8, r), (cu + r * 0.8, r)], _shade(rim, 0.7), 0.02))
        rear, bb, seat, head, front = (-0.52, r), (0.0, 0.3), (-0.15, 0.85), (0.4, 0.85), (0.52, r)
        parts.append(_line([rear, bb, seat, rear], frame, 0.05))
        parts.append(_line([bb, head, front], frame, 0.05))
        parts.append(_line([seat, head], frame, 0.05))
        parts.append(_line([head, (0.36, 1.02), (0.25, 1.02)], _shade(frame, 0.6), 0.04))
        parts.append(_poly([(-0.27, 0.85), (-0.03, 0.85), (-0.05, 0.92), (-0.25, 0.92)], tyre))
        return parts
    paint = _pick(rng, MOTO_PAINT, 15)
    chrome = _jitter(rng, (175, 175, 180), 10)
    light = (250, 235, 190) if lit else (150, 40, 30)
    if view == "rear":
        return [
            _poly([(-0.08, 0), (0.08, 0), (0.08, 0.62), (-0.08, 0.62)], tyre),
            _poly([(-0.24, 0.42), (0.24, 0.42), (0.21, 0.92), (-0.21, 0.92)], paint),
            _poly([(-0.07, 0.72), (0.07, 0.72), (0.07, 0.8), (-0.07, 0.8)], (235, 40, 30)),
            _line([(-0.42, 1.08), (0.42, 1.08)], (30, 30, 30), 0.04),
            _poly([(0.22, 0.3), (0.32, 0.3), (0.32, 0.38), (0.22, 0.38)], chrome),
        ]
    r = 0.31
    parts = []
    for cu in (-0.7, 0.7):
        parts.append(_ellipse(cu, r, r, r, tyre))
        parts.append(_ellipse(cu, r, r * 0.55, r * 0.55, chrome))
    parts.append(_line([(0.7, r), (0.5, 1.02)], chrome, 0.07))
    parts.append(
        _poly(
            [
                (-0.55, 0.33),
                (0.4, 0.33),
                (0.58, 0.68),
                (0.4, 0.95),
                (-0.1, 0.88),
                (-0.75, 0.86),
                (-0.85, 0.66),
            ],
            paint,
        )
    )
    parts.append(
        _poly(
            [(-0.35, 0.33), (0.25, 0.33), (0.2, 0.6), (-0.3, 0.6)], _jitter(rng, (70, 70, 75), 10)
        )
    )
    parts.append(_line([(-0.4, 0.35), (-0.95, 0.45)], chrome, 0.08))
    parts.append(_ellipse(0.6, 0.92, 0.08, 0.08, light))
    return parts


def traffic_light_parts(rng: np.random.Generator, width: float, bottom: float) -> list[Part]:
    housing = _pick(rng, ((30, 32, 30), (45, 50, 40), (200, 165, 35)), 6)
    lit = int(rng.integers(3))
    lamps = ((235, 45, 35), (245, 175, 30), (40, 225, 130))
    h = width * 2.7
    parts = [
        _poly(
            [
                (-width / 2, bottom),
                (width / 2, bottom),
                (width / 2, bottom + h),
                (-width / 2, bottom + h),
            ],
            housing,
        )
    ]
    for i, colour in enumerate(lamps):
        cv = bottom + h * (5 - 2 * i) / 6
        shown = colour if i == lit else _shade(colour, 0.3)
        parts.append(_ellipse(0, cv, width * 0.32, width * 0.32, shown))
    return parts


def sign_parts(rng: np.random.Generator, size: float, bottom: float) -> list[Part]:
    """A road sign face: prohibitory, mandatory, warning, information or stop."""
    kind = int(rng.integers(6))
    c = bottom + size / 2
    r = size / 2
    red, white, blue = (200, 30, 35), (240, 240, 235), (30, 80, 180)
    black = (25, 25, 25)
    if kind == 0:
        return [
            _ellipse(0, c, r, r, red),
            _ellipse(0, c, r * 0.72, r * 0.72, white),
            _poly(
                [
                    (-r * 0.35, c - 0.1 * r),
                    (r * 0.35, c - 0.1 * r),
                    (r * 0.35, c + 0.1 * r),
                    (-r * 0.35, c + 0.1 * r),
                ],
                black,
            ),
        ]
    if kind == 1:
        return [
            _ellipse(0, c, r, r, blue),
            _poly(
                [
                    (-0.08 * r, c - 0.6 * r),
                    (0.08 * r, c - 0.6 * r),
                    (0.08 * r, c + 0.2 * r),
                    (0.35 * r, c + 0.2 * r),
                    (0, c + 0.65 * r),
                    (-0.35 * r, c + 0.2 * r),
                    (-0.08 * r, c + 0.2 * r),
                ],
                white,
            ),
        ]
    if kind == 2:
        return [
            _poly([(-r, c - 0.8 * r), (r, c - 0.8 * r), (0, c + r)], red),
            _poly([(-0.62 * r, c - 0.57 * r), (0.62 * r, c - 0.57 * r), (0, c + 0.5 * r)], white),
        ]
    if kind == 3:
        return [
            _poly([(-r, c - r), (r, c - r), (r, c + r), (-r, c + r)], blue),
            _poly(
                [
                    (-0.25 * r, c - 0.6 * r),
                    (0.3 * r, c - 0.6 * r),
                    (0.3 * r, c + 0.6 * r),
                    (-0.25 * r, c + 0.6 * r),
                ],
                white,
            ),
        ]
    if kind == 4:
        octagon = _CIRCLE[::2] * r * 1.05 + (0, c)
        return [
            ("poly", octagon, red, 0.0),
            _poly(
                [
                    (-0.6 * r, c - 0.12 * r),
                    (0.6 * r, c - 0.12 * r),
                    (0.6 * r, c + 0.12 * r),
                    (-0.6 * r, c + 0.12 * r),
                ],
                white,
            ),
        ]
    green = _pick(rng, ((20, 110, 60), (30, 80, 170)), 10)
    return [
        _poly(
            [
                (-1.4 * r, c - 0.6 * r),
                (1.4 * r, c - 0.6 * r),
                (1.4 * r, c + 0.6 * r),
                (-1.4 * r, c + 0.6 * r),
            ],
            green,
        ),
        _poly(
            [
                (-1.1 * r, c - 0.1 * r),
                (0.9 * r, c - 0.1 * r),
                (0.9 * r, c + 0.25 * r),
                (-1.1 * r, c + 0.25 * r),
            ],
            white,
        ),
    ]


def tree_parts(rng: np.random.Generator) -> list[Part]:
    trunk = _jitter(rng, (85, 70, 55), 10)
    top = rng.uniform(2.0, 3.0)
    parts = [_poly([(-0.15, 0), (0.15, 0), (0.1, top + 0.5), (-0.1, top + 0.5)], trunk)]
    base = _pick(rng, VEGETATION, 12)
    for _ in range(int(rng.integers(4, 7))):
        cu, cv = rng.uniform(-1.2, 1.2), top + rng.uniform(0.8, 3.0)
        radius = rng.uniform(1.0, 1.8)
        parts.append(
            _ellipse(
                cu, cv, radius, radius * rng.uniform(0.8, 1.1), _shade(base, rng.uniform(0.75, 1.2))
            )
        )
    return parts


# --------------------------------------------------------------------------- vehicles


def _wheel_disc(x: float, zc: float, radius: float) -> np.ndarray:
    """A wheel as a polygon in the plane X = x, centred at depth ``zc``."""
    out = np.empty((16, 3))
    out[:, 0] = x
    out[:, 1] = radius + radius * _CIRCLE[:, 1]
    out[:, 2] = zc + radius * _CIRCLE[:, 0]
    return out


def _rect_on_z(x0: float, x1: float, y0: float, y1: float, z: float) -> np.ndarray:
    return np.array([(x0, y0, z), (x1, y0, z), (x1, y1, z), (x0, y1, z)], np.float64)


def _quads(*corners: tuple) -> np.ndarray:
    """Quads (K, 4, 3) from four (x, y, z) corners whose coordinates are scalars or (K,) arrays."""
    k = max(np.size(v) for corner in corners for v in corner)
    out = np.empty((k, 4, 3))
    for i, corner in enumerate(corners):
        for j, value in enumerate(corner):
            out[:, i, j] = value
    return out


def _rects_on_x(x: float, z0: np.ndarray, z1: np.ndarray, y0: float, y1: float) -> np.ndarray:
    """Rectangles (K, 4, 3) in the plane X = x, spanning [z0, z1] x [y0, y1]."""
    return _quads((x, y0, z0), (x, y0, z1), (x, y1, z1), (x, y1, z0))


@dataclass
class Vehicle:
    """A vehicle on the road: ``kind`` car/truck/bus/train, lateral centre, nearest depth."""

    kind: str
    x: float
    z: float
    facing_camera: bool
    rng_seed: int
    width: float = 1.8
    length: float = 4.4
    parked: bool = False
    tag: str = ""
    """Hard-case tag this vehicle witnesses (a pedestrian partly hidden behind it)."""

    def draw(self, canvas: Canvas, lit: bool) -> None:
        with canvas.batch():
            self._draw(canvas, lit)

    def _draw(self, canvas: Canvas, lit: bool) -> None:
        rng = np.random.default_rng(self.rng_seed)
        ident = canvas.new_instance(L[self.kind])
        if self.tag:
            canvas.witnesses.setdefault(self.tag, []).append(ident)
        x0, x1 = self.x - self.width / 2, self.x + self.width / 2
        z0, z1 = self.z, self.z + self.length
        glass = _jitter(rng, (45, 55, 70), 8)
        dark = _jitter(rng, (22, 22, 24), 4)
        shadow = np.array(
            [
                (x0 - 0.1, 0.01, z0 - 0.2),
                (x1 + 0.1, 0.01, z0 - 0.2),
                (x1 + 0.1, 0.01, z1),
                (x0 - 0.1, 0.01, z1),
            ]
        )
        canvas.fill(shadow, _jitter(rng, (45, 45, 48), 4), L["road"])
        front_light = (250, 240, 200) if lit else (215, 215, 200)
        rear_light = (255, 70, 50) if lit else (190, 30, 30)
        light = front_light if self.facing_camera else rear_light
        if self.kind == "car":
            paint = _pick(rng, CAR_PAINT, 10)
            side_x = x0 if x0 > 0 else x1
            for wz in (z0 + 0.85, z1 - 0.85):
                canvas.fill(_wheel_disc(side_x, wz, 0.33), dark, ident)
            side, _ = draw_box(canvas, x0, x1, 0.28, 0.98, z0, z1, paint, ident)
            canvas.fill(_rect_on_z(x0 + 0.1, x0 + 0.42, 0.0, 0.3, z0 + 0.3), dark, ident)
            canvas.fill(_rect_on_z(x1 - 0.42, x1 - 0.1, 0.0, 0.3, z0 + 0.3), dark, ident)
            if side is not None:
                sx = x0 if side == "left" else x1
                for wz in (z0 + 0.85, z1 - 0.85):
                    canvas.fill(_wheel_disc(sx, wz, 0.33), dark, ident)
            cz0, cz1 = z0 + (0.9 if self.facing_camera else 1.0), z1 - 1.0
            roof = rng.uniform(1.42, 1.55)
            side, _ = draw_box(canvas, x0 + 0.12, x1 - 0.12, 0.98, roof, cz0, cz1, paint, ident)
            canvas.fill(_rect_on_z(x0 + 0.2, x1 - 0.2, 1.03, roof - 0.06, cz0), glass, ident)
            if side is not None:
                sx = x0 + 0.12 if side == "left" else x1 - 0.12
                canvas.fill(
                    _rects_on_x(
                        sx, np.array([cz0 + 0.15]), np.array([cz1 - 0.15]), 1.03, roof - 0.06
                    ),
                    glass,
                    ident,
                )
            lamps = np.stack(
                [
                    _rect_on_z(x0 + 0.08, x0 + 0.38, 0.72, 0.88, z0),
                    _rect_on_z(x1 - 0.38, x1 - 0.08, 0.72, 0.88, z0),
                ]
            )
            canvas.fill(lamps, light, ident)
            plate = _rect_on_z(self.x - 0.26, self.x + 0.26, 0.42, 0.54, z0)
            canvas.fill(plate, (230, 230, 225), ident)
            return
        height = {"truck": 3.7, "bus": 3.1, "train": 3.5}[self.kind] + rng.uniform(-0.15, 0.15)
        clearance = 0.35 if self.kind == "train" else 0.45
        side_x = x0 if x0 > 0 else x1
        for wz in (z0 + 1.3, z1 - 1.6):
            canvas.fill(_wheel_disc(side_x, wz, 0.5), dark, ident)
        if self.kind == "truck":
            cab = _pick(rng, TRUCK_CABS, 10)
            cargo = _pick(rng, TRUCK_CARGO, 8)
            cab_len = 2.3
            if self.facing_camera:
                draw_box(canvas, x0, x1, clearance, height, z0 + cab_len, z1, cargo, ident)
                draw_box(canvas, x0, x1, clearance, 2.9, z0, z0 + cab_len, cab, ident)
                canvas.fill(_rect_on_z(x0 + 0.15, x1 - 0.15, 1.7, 2.6, z0), glass, ident)
                canvas.fill(_rect_on_z(x0 + 0.3, x1 - 0.3, 0.7, 1.3, z0), dark, ident)
            else:
                draw_box(canvas, x0, x1, 0.9, 2.9, z1 - cab_len, z1, cab, ident)
                draw_box(canvas, x0, x1, clearance + 0.5, height, z0, z1 - cab_len, cargo, ident)
                doors = _shade(cargo, 0.75)
                canvas.fill(_rect_on_z(self.x - 0.03, self.x + 0.03, 1.0, height, z0), doors, ident)
                canvas.fill(
                    _rect_on_z(x0 + 0.05, x1 - 0.05, clearance + 0.5, 1.05, z0), dark, ident
                )
            lamps = np.stack(
                [
                    _rect_on_z(x0 + 0.1, x0 + 0.4, 0.7, 0.9, z0),
                    _rect_on_z(x1 - 0.4, x1 - 0.1, 0.7, 0.9, z0),
                ]
            )
            canvas.fill(lamps, light, ident)
            return
        if self.kind == "bus":
            paint = _pick(rng, BUS_PAINT, 10)
            side, _ = draw_box(canvas, x0, x1, clearance, height, z0, z1, paint, ident)
            band = (1.0, 2.55)
            front = (0.95, 2.6) if self.facing_camera else (1.9, 2.7)
            canvas.fill(_rect_on_z(x0 + 0.12, x1 - 0.12, *front, z0), glass, ident)
            if self.facing_camera:
                canvas.fill(_rect_on_z(x0 + 0.3, x1 - 0.3, 2.68, 2.95, z0), (240, 150, 30), ident)
        else:
            paint = _jitter(rng, (232, 228, 215), 8)
            stripe = _pick(rng, TRAM_BAND, 10)
            side, _ = draw_box(canvas, x0, x1, clearance, height, z0, z1, paint, ident)
            band = (1.2, 2.7)
            canvas.fill(_rect_on_z(x0, x1, 0.55, 1.0, z0), stripe, ident)
            canvas.fill(_rect_on_z(x0 + 0.15, x1 - 0.15, 1.25, 2.9, z0), glass, ident)
            mast = [
                (self.x - 0.5, height, z0 + 3.0),
                (self.x + 0.4, height + 0.9, z0 + 3.5),
                (self.x - 0.4, height + 1.7, z0 + 4.0),
            ]
            px = max(1, round(0.06 * canvas.camera.scale(z0)))
            canvas.fill(np.array(mast), (40, 40, 42), ident, px)
        if side is not None:
            sx = x0 if side == "left" else x1
            if self.kind == "train":
                canvas.fill(
                    _rects_on_x(sx, np.array([z0]), np.array([z1]), 0.55, 1.0), stripe, ident
                )
            starts = np.arange(z0 + 1.0, z1 - 1.5, 1.6)
            canvas.fill(_rects_on_x(sx, starts, starts + 1.35, *band), glass, ident)
        lamps = np.stack(
            [
                _rect_on_z(x0 + 0.1, x0 + 0.4, 0.6, 0.85, z0),
                _rect_on_z(x1 - 0.4, x1 - 0.1, 0.6, 0.85, z0),
            ]
        )
        canvas.fill(lamps, light, ident)


# --------------------------------------------------------------------------- scene layout


@dataclass
class Layout:
    """The street's cross-section and the objects placed on it (world metres)."""

    road_left: float
    road_right: float
    lane_width: float
    lanes: int
    oncoming: int
    walk_left: float
    walk_right: float
    setback_left: float
    setback_right: float
    crossing_z: float | None
    crossing_width: float
    tram_lane: int | None
    far: float
    lit: bool = False
    objects: list[tuple[float, int, Callable[[Canvas], None]]] = field(default_factory=list)
    placed: dict[str, int] = field(default_factory=dict)

    def lane_centre(self, lane: int) -> float:
        return self.road_left + (lane + 0.5) * self.lane_width

    def add(self, z: float, draw: Callable[[Canvas], None], what: str) -> None:
        self.objects.append((z, len(self.objects), draw))
        self.placed[what] = self.placed.get(what, 0) + 1


def _sample_layout(rng: np.random.Generator, force: bool) -> Layout:
    lanes = int(rng.choice([2, 3, 4], p=[0.4, 0.35, 0.25]))
    lane_width = rng.uniform(3.0, 3.5)
    oncoming = lanes // 2 if rng.random() < 0.75 else 0
    ego_lane = int(rng.integers(oncoming, lanes)) if oncoming < lanes else lanes - 1
    road_left = -(ego_lane + 0.5) * lane_width + rng.uniform(-0.4, 0.4)
    crossing = rng.uniform(18, 40) if rng.random() < 0.6 else None
    setbacks = [rng.uniform(0, 5) if rng.random() < 0.6 else 0.0 for _ in range(2)]
    if force and max(setbacks) < 1.5:
        setbacks[int(rng.integers(2))] = rng.uniform(1.5, 5)
    return Layout(
        road_left=road_left,
        road_right=road_left + lanes * lane_width,
        lane_width=lane_width,
        lanes=lanes,
        oncoming=oncoming,
        walk_left=rng.uniform(2.5, 5.0),
        walk_right=rng.uniform(2.5, 5.0),
        setback_left=setbacks[0],
        setback_right=setbacks[1],
        crossing_z=crossing,
        crossing_width=rng.uniform(10, 16),
        tram_lane=None,
        far=rng.uniform(170, 260),
    )


def _sky_and_ground(canvas: Canvas, rng: np.random.Generator, dusk: bool) -> None:
    h = canvas.ids.shape[0]
    cam = canvas.camera
    if dusk:
        top, low = _jitter(rng, (55, 60, 120), 10), _jitter(rng, (235, 160, 115), 12)
    else:
        top, low = _jitter(rng, (85, 140, 205), 12), _jitter(rng, (185, 205, 225), 10)
    rows = np.clip((np.arange(h) / max(cam.horizon, 1.0)), 0, 1)[:, None]
    gradient = (np.asarray(top) * (1 - rows) + np.asarray(low) * rows).astype(np.uint8)
    canvas.image[:] = gradient[:, None, :]
    canvas.ids[:] = L["sky"]
    ground = min(h, max(0, math.ceil(cam.horizon)))
    canvas.image[ground:] = _pick(rng, TERRAIN, 10)
    canvas.ids[ground:] = L["terrain"]


def _skyline(canvas: Canvas, rng: np.random.Generator, layout: Layout) -> None:
    """Distant buildings and tree lines closing the view at depth ``layout.far``."""
    z = layout.far
    x = -z * 0.9
    gap = (layout.road_left - 2, layout.road_right + 2) if rng.random() < 0.5 else None
    while x < z * 0.9:
        width = rng.uniform(12, 40)
        if gap and x < gap[1] and x + width > gap[0]:
            x = gap[1]
            continue
        if rng.random() < 0.65:
            height = rng.uniform(8, 45)
            colour = _shade(_pick(rng, BUILDINGS, 10), 0.85)
            canvas.fill(_rect_on_z(x, x + width, 0, height, z), colour, L["building"])
        else:
            us = np.linspace(x, x + width, 9)
            tops = rng.uniform(8, 16, 9)
            pts = np.concatenate([[(x, 0.0)], np.stack([us, tops], 1), [(x + width, 0.0)]])
            world = np.stack([pts[:, 0], pts[:, 1], np.full(len(pts), z - 1)], 1)
            canvas.fill(world, _shade(_pick(rng, VEGETATION, 8), 0.8), L["vegetation"])
        x += width


def _ground(canvas: Canvas, rng: np.random.Generator, layout: Layout) -> None:
    """Road, lane markings, tram rails, crossing, curbs, sidewalks and verges."""
    near, far = 1.0, layout.far
    rl, rr = layout.road_left, layout.road_right
    road = _jitter(rng, (88, 88, 92), 8)
    canvas.fill(
        np.array([(rl, 0, near), (rr, 0, near), (rr, 0, far), (rl, 0, far)]), road, L["road"]
    )
    zc, zw = layout.crossing_z, layout.crossing_width
    if zc is not None:
        cross = np.array([(-far, 0, zc), (far, 0, zc), (far, 0, zc + zw), (-far, 0, zc + zw)])
        canvas.fill(cross, road, L["road"])
    white = _jitter(rng, (225, 225, 215), 6)
    dash, period = rng.uniform(2.5, 4), rng.uniform(7, 10)
    starts = np.arange(near + rng.uniform(0, period), min(far, 120), period)
    marks = []
    for lane in range(1, layout.lanes):
        xm = rl + lane * layout.lane_width
        rects = _ground_rects(xm - 0.08, xm + 0.08, starts, starts + dash)
        if lane == layout.oncoming and layout.oncoming:
            rects = _ground_rects(xm - 0.08, xm + 0.08, np.array([near]), np.array([min(far, 150)]))
        marks.append(rects)
    edges = [
        _ground_rects(x - 0.08, x + 0.08, np.array([near]), np.array([min(far, 150)]))
        for x in (rl + 0.35, rr - 0.35)
    ]
    marks.extend(edges)
    if zc is not None:
        stripes = np.arange(rl + 0.3, rr - 0.3, 1.0)
        marks.append(_ground_rects(stripes, stripes + 0.5, zc - 4.0, zc - 0.5))
    for rects in marks:
        if zc is not None:
            rects = _drop_inside(rects, zc - 4.0, zc + zw)
        canvas.fill(rects, white, L["road"])
    if layout.tram_lane is not None:
        xc = layout.lane_centre(layout.tram_lane)
        rail = _jitter(rng, (120, 118, 115), 8)
        for xr in (xc - 0.72, xc + 0.72):
            canvas.fill(
                _ground_rects(xr - 0.04, xr + 0.04, np.array([near]), np.array([far])),
                rail,
                L["road"],
            )
    walk = _jitter(rng, (165, 160, 155), 10)
    curb = _shade(walk, 1.12)
    verge = _pick(rng, TERRAIN, 10)
    spans = [(near, zc), (zc + zw, far)] if zc is not None else [(near, far)]
    for side, edge, width, setback in (
        (-1, rl, layout.walk_left, layout.setback_left),
        (1, rr, layout.walk_right, layout.setback_right),
    ):
        outer = edge + side * width
        for z0, z1 in spans:
            top = np.array(
                [(edge, 0.15, z0), (outer, 0.15, z0), (outer, 0.15, z1), (edge, 0.15, z1)]
            )
            canvas.fill(top, walk, L["sidewalk"])
            lines = np.arange(z0 + 1.5, min(z1, 60), 1.5)
            joints = _ground_rects(edge, outer, lines, lines + 0.06, y=0.15)
            canvas.fill(joints, _shade(walk, 0.86), L["sidewalk"])
            face = np.array([(edge, 0, z0), (edge, 0.15, z0), (edge, 0.15, z1), (edge, 0, z1)])
            canvas.fill(face, curb, L["sidewalk"])
            if setback > 0.5:
                strip = np.array(
                    [
                        (outer, 0.15, z0),
                        (outer + side * setback, 0.15, z0),
                        (outer + side * setback, 0.15, z1),
                        (outer, 0.15, z1),
                    ]
                )
                canvas.fill(strip, verge, L["terrain"])


def _ground_rects(
    x0: float | np.ndarray,
    x1: float | np.ndarray,
    z0: float | np.ndarray,
    z1: float | np.ndarray,
    y: float = 0.0,
) -> np.ndarray:
    """Ground rectangles (K, 4, 3) spanning [x0, x1] laterally and [z0, z1] in depth."""
    return _quads((x0, y, z0), (x1, y, z0), (x1, y, z1), (x0, y, z1))


def _drop_inside(rects: np.ndarray, z0: float, z1: float) -> np.ndarray:
    """Lane markings stop at the crossing: drop dashes starting inside [z0, z1)."""
    if len(rects) == 1 and rects[0, 0, 2] < z0 and rects[0, 2, 2] > z1:
        before, after = rects.copy(), rects.copy()
        before[0, 2:, 2] = z0
        after[0, :2, 2] = z1
        return np.concatenate([before, after])
    starts = rects[:, 0, 2]
    keep = (starts < z0 - 3.0) | (starts >= z1)
    return rects[keep] if keep.any() else rects[:0]


def _roadside(
    canvas: Canvas, rng: np.random.Generator, layout: Layout, dusk: bool, force: bool
) -> None:
    """Buildings, walls, fences and greenery behind the sidewalks, far segments first."""
    zc, zw = layout.crossing_z, layout.crossing_width
    needed = list(rng.permutation(["wall", "fence"]))
    for side in (-1, 1):
        edge = layout.road_left if side < 0 else layout.road_right
        walk = layout.walk_left if side < 0 else layout.walk_right
        setback = layout.setback_left if side < 0 else layout.setback_right
        line = edge + side * (walk + setback)
        segments = []
        z = 2.0
        while z < layout.far * 0.6:
            length = rng.uniform(10, 32)
            if zc is not None and z < zc + zw and z + length > zc:
                if z < zc:
                    segments.append((z, zc))
                z = zc + zw
                front = _rect_on_z(line + side * 3, line + side * 60, 0, rng.uniform(10, 22), z + 3)
                canvas.fill(front, _shade(_pick(rng, BUILDINGS, 12), 0.9), L["building"])
                continue
            segments.append((z, z + length))
            z += length
        kinds = rng.choice(
            ["building", "wall", "fence", "vegetation", "open"],
            size=len(segments),
            p=[0.5, 0.14, 0.14, 0.14, 0.08],
        )
        near = [i for i, (z0, _) in enumerate(segments) if 4 < z0 < 50] or [0]
        if force:
            kinds[near[int(rng.integers(len(near)))]] = needed.pop()
        elif "wall" not in kinds and "fence" not in kinds:
            kinds[near[int(rng.integers(len(near)))]] = rng.choice(["wall", "fence"])
        for (z0, z1), kind in sorted(zip(segments, kinds, strict=True), key=lambda s: -s[0][0]):
            _segment(canvas, rng, str(kind), side, line, z0, z1, dusk)


def _segment(
    canvas: Canvas,
    rng: np.random.Generator,
    kind: str,
    side: int,
    line: float,
    z0: float,
    z1: float,
    dusk: bool,
) -> None:
    if kind == "building":
        _building(canvas, rng, side, line, z0, z1, dusk)
        return
    if kind == "open":
        return
    if kind in ("wall", "vegetation") or rng.random() < 0.6:
        _greenery(canvas, rng, line + side * rng.uniform(1.0, 4.0), z0, z1, rng.uniform(3, 9))
    if kind == "vegetation":
        _greenery(canvas, rng, line, z0, z1, rng.uniform(1.0, 2.5))
        return
    height = rng.uniform(1.0, 2.6) if kind == "wall" else rng.uniform(1.2, 2.2)
    x0, x1 = sorted((line, line + side * 0.3))
    if kind == "wall":
        colour = _pick(rng, WALLS, 10)
        draw_box(canvas, x0, x1, 0.0, height, z0, z1, colour, L["wall"])
        rows = np.arange(0.5, height - 0.1, 0.5)
        for y in rows:
            joint = _rects_on_x(line, np.array([z0]), np.array([z1]), y, y + 0.05)
            canvas.fill(joint, _shade(colour, 0.8), L["wall"])
        return
    colour = _pick(rng, FENCES, 10)
    panel = _rects_on_x(line, np.array([z0]), np.array([z1]), 0.0, height)
    canvas.fill(panel, _shade(colour, 0.55), L["fence"])
    posts = np.arange(z0, z1, rng.uniform(0.12, 0.25))
    canvas.fill(_rects_on_x(line, posts, posts + 0.06, 0.0, height), colour, L["fence"])
    canvas.fill(
        _rects_on_x(line, np.array([z0]), np.array([z1]), height - 0.12, height),
        _shade(colour, 1.2),
        L["fence"],
    )


def _greenery(
    canvas: Canvas, rng: np.random.Generator, x: float, z0: float, z1: float, height: float
) -> None:
    """A hedge or row of tree crowns: a bumpy polygon in the plane X = x."""
    n = max(4, int((z1 - z0) / 1.5))
    zs = np.linspace(z0, z1, n)
    tops = height * rng.uniform(0.7, 1.2, n)
    world = np.concatenate([[(x, 0.0, z0)], np.stack([np.full(n, x), tops, zs], 1), [(x, 0.0, z1)]])
    canvas.fill(world, _pick(rng, VEGETATION, 10), L["vegetation"])


def _building(
    canvas: Canvas,
    rng: np.random.Generator,
    side: int,
    line: float,
    z0: float,
    z1: float,
    dusk: bool,
) -> None:
    colour = _pick(rng, BUILDINGS, 12)
    height = rng.uniform(7, 26)
    end = _rect_on_z(line, line + side * 15, 0, height, z0)
    canvas.fill(end, _shade(colour, 0.7), L["building"])
    canvas.fill(_rects_on_x(line, np.array([z0]), np.array([z1]), 0, height), colour, L["building"])
    floor = rng.uniform(3.0, 3.6)
    spacing = rng.uniform(2.2, 3.2)
    width, tall = spacing * rng.uniform(0.45, 0.65), floor * rng.uniform(0.4, 0.55)
    cols = np.arange(z0 + 0.6, z1 - width - 0.3, spacing)
    rows = np.arange(floor + 0.8, height - tall - 0.4, floor)
    if len(cols) and len(rows):
        zz, yy = np.meshgrid(cols, rows)
        zz, yy = zz.ravel(), yy.ravel()
        windows = _rects_on_x(line, zz, zz + width, 0, 1)
        windows[:, :2, 1] = yy[:, None]
        windows[:, 2:, 1] = (yy + tall)[:, None]
        glass = _jitter(rng, (70, 85, 105), 10)
        lit = rng.random(len(windows)) < (0.45 if dusk else 0.0)
        canvas.fill(windows[~lit], glass, L["building"])
        canvas.fill(windows[lit], (235, 205, 120), L["building"])
    if rng.random() < 0.6:
        shop = _rects_on_x(line, np.array([z0 + 0.5]), np.array([z1 - 0.5]), 0.3, 2.6)
        canvas.fill(shop, _jitter(rng, (55, 60, 65), 10), L["building"])


# --------------------------------------------------------------------------- objects


def _sidewalk_x(rng: np.random.Generator, layout: Layout, side: int, margin: float = 0.4) -> float:
    if side < 0:
        return layout.road_left - rng.uniform(margin, layout.walk_left - margin)
    return layout.road_right + rng.uniform(margin, layout.walk_right - margin)


def _free_z(rng: np.random.Generator, layout: Layout, lo: float, hi: float) -> float:
    """A depth for something on the sidewalk, outside the crossing gap."""
    for _ in range(10):
        z = rng.uniform(lo, hi)
        if layout.crossing_z is None or not (
            layout.crossing_z - 0.5 < z < layout.crossing_z + layout.crossing_width + 0.5
        ):
            return z
    return lo


def _pole_draw(
    x: float, z: float, top: float, width: float, colour: Colour, arm: float = 0.0
) -> Callable[[Canvas], None]:
    def draw(canvas: Canvas) -> None:
        parts: list[Part] = [
            _poly(
                [(-width / 2, 0), (width / 2, 0), (width * 0.35, top), (-width * 0.35, top)], colour
            )
        ]
        if arm:
            parts.append(
                _line([(0, top - 0.1), (arm * 0.3, top + 0.25), (arm, top + 0.3)], colour, 0.1)
            )
            parts.append(
                _poly(
                    [
                        (arm - 0.35, top + 0.1),
                        (arm + 0.35, top + 0.1),
                        (arm + 0.3, top + 0.35),
                        (arm - 0.3, top + 0.35),
                    ],
                    _shade(colour, 0.7),
                )
            )
        draw_sprite(canvas, x, z, parts, L["pole"])

    return draw


def _place_static(
    rng: np.random.Generator, layout: Layout, force: bool
) -> list[tuple[float, float]]:
    """Street lamps, sign posts, traffic lights and trees; return pole positions (x, z)."""
    poles: list[tuple[float, float]] = []
    grey = _pick(rng, ((130, 132, 135), (70, 72, 70), (60, 75, 65)), 10)
    for side in (-1, 1):
        edge = layout.road_left if side < 0 else layout.road_right
        x = edge + side * 0.5
        z = rng.uniform(5, 14)
        while z < 90:
            if layout.crossing_z is None or not (
                layout.crossing_z - 1 < z < layout.crossing_z + layout.crossing_width + 1
            ):
                top = rng.uniform(6.5, 9.0)
                arm = -side * rng.uniform(1.2, 2.2) if rng.random() < 0.7 else 0.0
                layout.add(z, _pole_draw(x, z, top, 0.22, grey, arm), "pole")
                poles.append((x, z))
            z += rng.uniform(12, 24)
    n_lights = int(rng.integers(2, 5)) if force or rng.random() < 0.9 else 0
    anchors = (
        [layout.crossing_z - 1.0, layout.crossing_z + layout.crossing_width + 1.0]
        if layout.crossing_z is not None
        else [rng.uniform(15, 45)]
    )
    for i in range(n_lights):
        side = 1 if i % 2 == 0 else -1
        edge = layout.road_left if side < 0 else layout.road_right
        x = edge + side * rng.uniform(0.4, 1.0)
        z = anchors[i % len(anchors)] + rng.uniform(-0.5, 0.5)
        bottom = rng.uniform(2.3, 3.2)
        width = rng.uniform(0.38, 0.48)
        overhead = rng.random() < 0.4
        arm_len = -side * rng.uniform(2.5, 5.0) if overhead else 0.0
        top = bottom + width * 2.7 + (2.5 if overhead else 0.1)
        layout.add(z, _pole_draw(x, z, top, 0.2, grey), "pole")
        poles.append((x, z))
        light_rng = np.random.default_rng(int(rng.integers(1 << 62)))
        if overhead:
            light_x, light_bottom = x + arm_len, top - width * 2.7 - 0.3

            def arm_draw(
                canvas: Canvas,
                x: float = x,
                z: float = z,
                top: float = top,
                arm_len: float = arm_len,
            ) -> None:
                draw_sprite(
                    canvas,
                    x,
                    z,
                    [_line([(0, top - 0.2), (arm_len, top - 0.2)], grey, 0.14)],
                    L["pole"],
                )

            layout.add(z - 0.01, arm_draw, "pole arm")
        else:
            light_x, light_bottom = x, bottom
        parts = traffic_light_parts(light_rng, width, light_bottom)
        layout.add(
            z - 0.02,
            lambda canvas, p=parts, lx=light_x, z=z: draw_sprite(
                canvas, lx, z - 0.1, p, L["traffic light"]
            ),
            "traffic light",
        )
    n_signs = int(rng.integers(2, 6)) if force or rng.random() < 0.95 else 0
    for _ in range(n_signs):
        side = 1 if rng.random() < 0.65 else -1
        edge = layout.road_left if side < 0 else layout.road_right
        x = edge + side * rng.uniform(0.3, 1.2)
        z = _free_z(rng, layout, 7, 55)
        size = rng.uniform(0.6, 0.9)
        bottom = rng.uniform(1.9, 2.6)
        layout.add(z, _pole_draw(x, z, bottom + 0.2, 0.09, grey), "pole")
        poles.append((x, z))
        parts = sign_parts(np.random.default_rng(int(rng.integers(1 << 62))), size, bottom)
        layout.add(
            z - 0.02,
            lambda canvas, p=parts, x=x, z=z: draw_sprite(
                canvas, x, z - 0.05, p, L["traffic sign"]
            ),
            "traffic sign",
        )
    for _ in range(int(rng.integers(0, 5))):
        side = 1 if rng.random() < 0.5 else -1
        x = (
            _sidewalk_x(rng, layout, side, 0.8)
            if rng.random() < 0.7
            else ((layout.road_left if side < 0 else layout.road_right) + side * 0.9)
        )
        z = _free_z(rng, layout, 8, 70)
        parts = tree_parts(rng)
        layout.add(
            z,
            lambda canvas, p=parts, x=x, z=z: draw_sprite(canvas, x, z, p, L["vegetation"]),
            "tree",
        )
    return poles


def _person_draw(
    rng: np.random.Generator, x: float, z: float, view: str, mirror: bool, tag: str = ""
) -> Callable[[Canvas], None]:
    parts = person_parts(rng, rng.uniform(1.5, 1.92), view)

    def draw(canvas: Canvas) -> None:
        ident = canvas.new_instance(L["person"])
        if tag:
            canvas.witnesses.setdefault(tag, []).append(ident)
        draw_sprite(canvas, x, z, parts, ident, mirror=mirror)

    return draw


def _two_wheeler_draw(
    rng: np.random.Generator,
    vehicle: str,
    x: float,
    z: float,
    view: str,
    mirror: bool,
    ridden: bool,
    lit: bool,
) -> Callable[[Canvas], None]:
    bike = two_wheeler_parts(rng, vehicle, view, lit)
    rider = rider_parts(rng, vehicle, view) if ridden else []

    def draw(canvas: Canvas) -> None:
        draw_sprite(canvas, x, z, bike, canvas.new_instance(L[vehicle]), mirror=mirror)
        if rider:
            draw_sprite(canvas, x, z - 0.05, rider, canvas.new_instance(L["rider"]), mirror=mirror)

    return draw


def _place_people(
    rng: np.random.Generator,
    layout: Layout,
    poles: list[tuple[float, float]],
    vehicles: list[Vehicle],
    force: bool,
    lit: bool,
) -> None:
    """Pedestrians, cyclists and motorcyclists, including the hard safety cases."""
    for _ in range(int(rng.integers(2, 8))):
        side = 1 if rng.random() < 0.55 else -1
        x, z = _sidewalk_x(rng, layout, side), _free_z(rng, layout, 6, 32)
        view = "front" if rng.random() < 0.5 else "back"
        layout.add(z, _person_draw(rng, x, z, view, False), "person")
    if layout.crossing_z is not None and rng.random() < 0.8:
        for _ in range(int(rng.integers(1, 4))):
            x = rng.uniform(layout.road_left - 1, layout.road_right + 1)
            z = layout.crossing_z - rng.uniform(1.0, 3.5)
            layout.add(z, _person_draw(rng, x, z, "side", rng.random() < 0.5), "person")
    if rng.random() < 0.35:
        side = 1 if rng.random() < 0.5 else -1
        x, z = _sidewalk_x(rng, layout, side), _free_z(rng, layout, 45, 85)
        tag = "small_distant_pedestrian"
        layout.add(z, _person_draw(rng, x, z, "front", False, tag), "person")
    if poles and rng.random() < 0.35:
        px, pz = poles[int(rng.integers(len(poles)))]
        if pz < 45:
            x, z = px + rng.choice([-0.45, 0.45]), pz + rng.uniform(0.2, 0.8)
            tag = "pedestrian_near_pole"
            layout.add(z, _person_draw(rng, x, z, "front", False, tag), "person")
    parked = [v for v in vehicles if v.parked]
    if parked and rng.random() < 0.4:
        car = parked[int(rng.integers(len(parked)))]
        toward = 1 if car.x < 0 else -1
        x = car.x + toward * (car.width / 2 + rng.uniform(-0.7, -0.2))
        z = car.z + rng.uniform(0.8, 2.5)
        car.tag = "pedestrian_behind_car"
        layout.add(z, _person_draw(rng, x, z, "side", car.x > 0, car.tag), "person")
    n_bikes = int(rng.integers(1, 4)) if force or rng.random() < 0.92 else 0
    n_motos = int(rng.integers(1, 3)) if force or rng.random() < 0.85 else 0
    for vehicle, count in (("bicycle", n_bikes), ("motorcycle", n_motos)):
        for i in range(count):
            mode = 0.0 if i == 0 else rng.random()
            for attempt in range(24):
                spot_mode = 0.6 if attempt >= 12 else mode
                x, z, view, ridden = _two_wheeler_spot(rng, layout, vehicle, spot_mode)
                if _in_view(vehicles, x, z, 1.0):
                    break
            else:
                continue
            mirror = view == "side" and rng.random() < 0.5
            layout.add(z, _two_wheeler_draw(rng, vehicle, x, z, view, mirror, ridden, lit), vehicle)
            if ridden:
                layout.placed["rider"] = layout.placed.get("rider", 0) + 1


def _two_wheeler_spot(
    rng: np.random.Generator, layout: Layout, vehicle: str, mode: float
) -> tuple[float, float, str, bool]:
    """(x, z, view, ridden): crossing or along the curb, parked on the sidewalk, or in a lane."""
    if mode < 0.45:
        if layout.crossing_z is not None and rng.random() < 0.6:
            x = rng.uniform(layout.road_left + 1, layout.road_right - 1)
            return x, layout.crossing_z + rng.uniform(1.0, layout.crossing_width - 1), "side", True
        x = layout.road_right - (0.9 if vehicle == "bicycle" else 1.8)
        return x, rng.uniform(8, 35), "rear", True
    if mode < 0.75:
        side = 1 if rng.random() < 0.6 else -1
        return _sidewalk_x(rng, layout, side, 0.9), _free_z(rng, layout, 6, 30), "side", False
    lane = int(rng.integers(layout.lanes))
    return layout.lane_centre(lane) + rng.uniform(-0.8, 0.8), rng.uniform(10, 45), "rear", True


def _overlaps_view(vehicles: Sequence[Vehicle], x: float, z: float, width: float) -> bool:
    """Whether a large vehicle at (x, z) would mostly hide, or hide behind, one placed before."""
    a0, a1 = (x - width / 2) / z, (x + width / 2) / z
    for v in vehicles:
        b0, b1 = (v.x - v.width / 2) / v.z, (v.x + v.width / 2) / v.z
        if min(a1, b1) - max(a0, b0) > 0.4 * min(a1 - a0, b1 - b0):
            return True
    return False


def _in_view(vehicles: Sequence[Vehicle], x: float, z: float, half_width: float) -> bool:
    """Whether something at (x, z) is neither inside a vehicle nor hidden behind a nearer one."""
    for v in vehicles:
        x0, x1 = v.x - v.width / 2, v.x + v.width / 2
        if x0 - half_width < x < x1 + half_width and v.z - 1.5 < z < v.z + v.length + 1.5:
            return False
        if v.z < z and x0 / v.z < (x + half_width) / z and (x - half_width) / z < x1 / v.z:
            return False
    return True


def _place_vehicles(rng: np.random.Generator, layout: Layout, force: bool) -> list[Vehicle]:
    """Cars, trucks, buses and trams in the lanes (cars in curb lanes are parked)."""
    occupied: dict[int, list[tuple[float, float]]] = {lane: [] for lane in range(layout.lanes)}
    ego = (
        next(
            lane
            for lane in range(layout.lanes)
            if layout.lane_centre(lane) - layout.lane_width / 2
            <= 0
            < layout.lane_centre(lane) + layout.lane_width / 2
        )
        if layout.road_left <= 0 < layout.road_right
        else -1
    )
    vehicles: list[Vehicle] = []

    def place(kind: str, lane: int, z: float, width: float, length: float, dx: float = 0) -> bool:
        lo = 9.0 if lane == ego else 5.0
        if z < lo or any(a - 3 < z + length and z < b + 3 for a, b in occupied[lane]):
            return False
        occupied[lane].append((z, z + length))
        vehicles.append(
            Vehicle(
                kind,
                layout.lane_centre(lane) + dx,
                z,
                lane < layout.oncoming,
                int(rng.integers(1 << 62)),
                width,
                length,
            )
        )
        return True

    big = {
        "train": (2.4, rng.uniform(20, 30), 0.5),
        "bus": (2.55, rng.uniform(11, 13), 0.65),
        "truck": (2.5, rng.uniform(7, 10), 0.65),
    }
    for kind, (width, length, chance) in big.items():
        if not (force or rng.random() < chance):
            continue
        for _ in range(20):
            lane = int(rng.integers(layout.lanes))
            z = rng.uniform(12, 70)
            x = layout.lane_centre(lane)
            if _overlaps_view(vehicles, x, z, width):
                continue
            if place(kind, lane, z, width, length):
                if kind == "train":
                    layout.tram_lane = lane
                break
    for lane in range(layout.lanes):
        z = rng.uniform(5, 20)
        curb_lane = lane in (0, layout.lanes - 1) and lane != ego
        while z < 90:
            length = rng.uniform(3.9, 4.8)
            dx = rng.uniform(-0.3, 0.3)
            if place("car", lane, z, rng.uniform(1.7, 1.9), length, dx):
                vehicles[-1].parked = curb_lane
            z += length + (rng.uniform(1.0, 3.0) if curb_lane else rng.uniform(6, 30))
    for vehicle in vehicles:
        layout.add(vehicle.z, lambda canvas, v=vehicle: v.draw(canvas, layout.lit), vehicle.kind)
    return vehicles


# --------------------------------------------------------------------------- photometry

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


def _photometry(
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
            list(np.round(streaks * _SUB).astype(np.int32)),
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


# --------------------------------------------------------------------------- rendering


def _finish_ids(
    ids: np.ndarray, witnesses: Mapping[str, list[int]]
) -> tuple[np.ndarray, np.ndarray, dict[str, int], set[str]]:
    """Renumber instances densely (k from 0 per class), split off the labelIds map, count
    the visible objects and keep the hard-case tags whose witnesses are still visible."""
    counts = np.bincount(ids.ravel(), minlength=65536)
    present = np.flatnonzero(counts[1000:]) + 1000
    lookup = np.arange(65536, dtype=np.uint16)
    objects = {}
    for name, label_id in zip(INSTANCE_NAMES, INSTANCE_LABEL_IDS, strict=True):
        mine = present[present // 1000 == label_id]
        lookup[mine] = label_id * 1000 + np.arange(len(mine))
        objects[name] = len(mine)
    tags = {tag for tag, idents in witnesses.items() if all(counts[i] for i in idents)}
    label_ids = np.where(ids >= 1000, ids // 1000, ids).astype(np.uint8)
    return label_ids, lookup[ids], objects, tags


def _compose(rng: np.random.Generator, size: tuple[int, int], force: bool) -> Scene:
    h, w = size
    focal = w * rng.uniform(0.85, 1.0)
    pitch = math.radians(rng.uniform(-2.5, 2.5))
    camera = Camera(
        focal=focal,
        cx=w / 2,
        horizon=h * 0.44 - focal * math.tan(pitch),
        height=rng.uniform(1.25, 1.9),
        yaw=math.radians(rng.uniform(-4, 4)),
    )
    cond = Conditions.sample(rng)
    canvas = Canvas(h, w, camera)
    layout = _sample_layout(rng, force)
    layout.lit = cond.dusk
    vehicles = _place_vehicles(rng, layout, force)
    poles = _place_static(rng, layout, force)
    _place_people(rng, layout, poles, vehicles, force, cond.dusk)
    _sky_and_ground(canvas, rng, cond.dusk)
    with canvas.batch():
        _skyline(canvas, rng, layout)
        _ground(canvas, rng, layout)
        _roadside(canvas, rng, layout, cond.dusk, force)
    for _, _, draw in sorted(layout.objects, key=lambda o: (-o[0], o[1])):
        draw(canvas)
    label_ids, instance_ids, objects, tags = _finish_ids(canvas.ids, canvas.witnesses)
    image = _photometry(rng, canvas.image, label_ids, cond, camera.horizon)
    if cond.low_contrast:
        tags.add("low_contrast")
    present = np.flatnonzero(np.bincount(LABEL_ID_TO_TRAIN_ID[label_ids].ravel(), minlength=20))
    meta = {
        "camera": {
            "height_m": round(camera.height, 3),
            "pitch_deg": round(math.degrees(pitch), 3),
            "yaw_deg": round(math.degrees(camera.yaw), 3),
            "focal_px": round(focal, 2),
        },
        "lighting": {
            "brightness": round(cond.brightness, 3),
            "tint_rgb": [round(t, 3) for t in cond.tint],
        },
        "time_of_day": "dusk" if cond.dusk else "day",
        "fog": round(cond.fog, 3),
        "rain": round(cond.rain, 3),
        "blur": round(cond.blur, 3),
        "contrast": round(cond.contrast, 3),
        "tags": sorted(tags),
        "objects": objects,
        "placed": dict(sorted(layout.placed.items())),
        "classes_present": [CLASS_NAMES[i] for i in present if i < NUM_EVALUATED],
        "lanes": layout.lanes,
        "crossing": layout.crossing_z is not None,
    }
    return Scene(image=image, label_ids=label_ids, instance_ids=instance_ids, meta=meta)


WEATHER_TAGS = ("fog", "rain", "blur")
"""Sidecar strengths that become a filter tag of the same name when above zero."""


def condition_tags(meta: Mapping) -> list[str]:
    """The filterable conditions of a scene, read from its sidecar (empty for real data):
    hard-case tags, time of day, weather and blur present, a pedestrian crossing."""
    tags = [str(tag) for tag in meta.get("tags", ())]
    if "time_of_day" in meta:
        tags.append(str(meta["time_of_day"]))
    tags += [key for key in WEATHER_TAGS if float(meta.get(key, 0.0)) > 0.0]
    if meta.get("crossing"):
        tags.append("crossing")
    return tags


def _train_ids_present(scene: Scene) -> frozenset[int]:
    counts = np.bincount(LABEL_ID_TO_TRAIN_ID[scene.label_ids].ravel(), minlength=20)
    return frozenset(int(i) for i in np.flatnonzero(counts[:NUM_EVALUATED]))


def _render(
    seed: int | np.random.SeedSequence, size: tuple[int, int], required: frozenset[int]
) -> Scene:
    """Render a scene; when classes are required, redraw (deterministically) until present."""
    rng = np.random.default_rng(seed)
    best: Scene | None = None
    for _ in range(40):
        scene = _compose(rng, size, force=bool(required))
        missing = required - _train_ids_present(scene)
        if not missing:
            return scene
        if best is None or len(missing) < len(required - _train_ids_present(best)):
            best = scene
    names = ", ".join(CLASS_NAMES[i] for i in sorted(required - _train_ids_present(best)))
    raise SyntheticError(f"size {size[0]}x{size[1]} is too small to show every class ({names})")


def render_scene(seed: int | np.random.SeedSequence, size: tuple[int, int] = (256, 512)) -> Scene:
    """Render one random road scene of ``size`` (height, width); same seed, same scene."""
    _check_size(size)
    return _render(seed, size, frozenset())


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    if len(size) != 2 or any(not isinstance(s, int | np.integer) for s in size):
        raise SyntheticError(f"size must be (height, width) in pixels, got {size!r}")
    h, w = int(size[0]), int(size[1])
    if not (32 <= h <= 4096 and 32 <= w <= 4096):
        raise SyntheticError(f"size {h}x{w} out of range: height and width must be 32..4096")
    return h, w


# --------------------------------------------------------------------------- dataset files


def sample_name(split: str, index: int) -> tuple[str, str]:
    """(city, stem) of image ``index`` of ``split``: sequences of 10 frames, cities in turn."""
    cities = CITIES.get(split, (f"synth_{split}",))
    sequence, frame = divmod(index, FRAMES_PER_SEQUENCE)
    city = cities[sequence % len(cities)]
    return city, f"{city}_{sequence:06d}_{frame:06d}"


def _image_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, zlib.crc32(split.encode()), index])


def _required(index: int) -> frozenset[int]:
    """Every fifth image, starting with the first, must show all 19 classes: so every split
    has them all, and rare classes are seen often enough to be learned."""
    return ALL_TRAIN_IDS if index % 5 == 0 else frozenset()


def render_sample(seed: int, split: str, index: int, size: tuple[int, int]) -> Scene:
    """Scene ``index`` of ``split`` in a set made with ``seed``, with its name in the meta."""
    scene = _render(_image_seed(seed, split, index), size, _required(index))
    city, stem = sample_name(split, index)
    sequence, frame = divmod(index, FRAMES_PER_SEQUENCE)
    scene.meta.update(
        split=split, index=index, city=city, sequence=sequence, frame=frame, stem=stem
    )
    return scene


def write_sample(root: Path, split: str, scene: Scene) -> None:
    """Write a scene's four PNGs and its JSON sidecar in the Cityscapes layout."""
    city, stem = scene.meta["city"], scene.meta["stem"]
    image_dir = root / "leftImg8bit" / split / city
    label_dir = root / "gtFine" / split / city
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    files = {
        image_dir / f"{stem}_leftImg8bit.png": cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR),
        label_dir / f"{stem}_gtFine_labelIds.png": scene.label_ids,
        label_dir / f"{stem}_gtFine_instanceIds.png": scene.instance_ids.astype(np.uint16),
        label_dir / f"{stem}_gtFine_color.png": cv2.cvtColor(
            LABEL_COLOR_BY_ID[scene.label_ids], cv2.COLOR_RGB2BGR
        ),
    }
    for path, array in files.items():
        if not cv2.imwrite(str(path), array):
            raise SyntheticError(f"could not write {path}")
    sidecar = image_dir / f"{stem}_meta.json"
    sidecar.write_text(json.dumps(scene.meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _work(task: tuple[Path, int, str, int, tuple[int, int]]) -> None:
    root, seed, split, index, size = task
    write_sample(root, split, render_sample(seed, split, index, size))


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _settings_of(data: dict | None) -> dict | None:
    if data is None:
        return None
    keys = ("format", "generator_version", "seed", "size", "counts")
    return {k: data.get(k) for k in keys}


def is_complete(out: Path, settings: SyntheticSettings) -> bool:
    """Whether ``out`` holds a finished synthetic set made with exactly these settings."""
    return _settings_of(_read_json(Path(out) / STAMP_NAME)) == settings.to_dict()


def _check_target(out: Path, wanted: dict) -> None:
    if out.exists() and not out.is_dir():
        raise SyntheticError(f"{out} exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    for name in (STAMP_NAME, SETTINGS_NAME):
        found = _settings_of(_read_json(out / name))
        if found == wanted:
            return
        if found is not None and found.get("format") == FORMAT_NAME:
            differ = ", ".join(
                f"{k} {found[k]!r} (wanted {wanted[k]!r})" for k in wanted if found[k] != wanted[k]
            )
            raise SyntheticError(
                f"{out} holds a synthetic set with other settings ({differ}); "
                "refusing to overwrite it: choose another --out folder or delete it"
            )
    raise SyntheticError(
        f"{out} is not empty and is not a synthetic set made by this tool; "
        "refusing to overwrite it: choose an empty or new --out folder"
    )


def _check_counts(counts: Mapping[str, int]) -> dict[str, int]:
    checked = {}
    for split, n in counts.items():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", str(split)):
            raise SyntheticError(f"split name {split!r}: use letters, digits, '_' or '-'")
        if not isinstance(n, int | np.integer) or n < 0:
            raise SyntheticError(
                f"count for split {split!r} must be a whole number >= 0, got {n!r}"
            )
        checked[str(split)] = int(n)
    if not any(checked.values()):
        raise SyntheticError("nothing to generate: every split count is 0")
    return checked


def generate_dataset(
    out: Path,
    counts: Mapping[str, int],
    seed: int = 0,
    size: tuple[int, int] = (256, 512),
    progress: bool = True,
    workers: int = 1,
) -> Path:
    """Write a synthetic set in the Cityscapes layout and return its folder.

    ``synthetic.settings.json`` is written first and ``synthetic.json`` last, as the stamp
    of a complete set. A non-empty ``out`` is only overwritten when one of them shows it is
    a (complete or interrupted) set with the same settings.
    """
    out = Path(out)
    settings = SyntheticSettings(
        counts=_check_counts(counts), size=_check_size(size), seed=int(seed)
    )
    wanted = settings.to_dict()
    _check_target(out, wanted)
    out.mkdir(parents=True, exist_ok=True)
    (out / STAMP_NAME).unlink(missing_ok=True)
    (out / SETTINGS_NAME).write_text(json.dumps(wanted, indent=1) + "\n", encoding="utf-8")
    tasks = [
        (out, settings.seed, split, index, settings.size)
        for split, n in settings.counts.items()
        for index in range(n)
    ]
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc=f"synthetic set -> {out}", unit="img", disable=not progress)
    workers = max(1, min(int(workers), len(tasks)))
    if workers == 1:
        for task in tasks:
            _work(task)
            bar.update()
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_init_worker) as pool:
            for _ in pool.imap_unordered(_work, tasks, chunksize=4):
                bar.update()
    bar.close()
    stamp = dict(wanted, cities={s: list(CITIES.get(s, (f"synth_{s}",))) for s in settings.counts})
    stamp["libraries"] = {"numpy": np.__version__, "opencv": cv2.__version__}
    temporary = out / (STAMP_NAME + ".tmp")
    temporary.write_text(json.dumps(stamp, indent=1) + "\n", encoding="utf-8")
    temporary.replace(out / STAMP_NAME)
    return out


def default_cache_dir() -> Path:
    """``$SEGBENCH_CACHE``, else ``~/.cache/segnet-review-bench``."""
    env = os.environ.get("SEGBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "segnet-review-bench"


def resolve_data(data: str | Path) -> Path:
    """A dataset folder from a command line's ``--data``: 'demo' means the demo set."""
    return ensure_demo_dataset() if str(data) == DEMO_DATA else Path(data)


def ensure_demo_dataset(cache_dir: Path | None = None, progress: bool = True) -> Path:
    """The demo set's folder, generated on first use (or when an earlier run was cut short)."""
    out = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / DEMO_FOLDER
    if is_complete(out, DEMO_SETTINGS):
        return out
    return generate_dataset(
        out,
        DEMO_SETTINGS.counts,
        seed=DEMO_SETTINGS.seed,
        size=DEMO_SETTINGS.size,
        progress=progress,
        workers=os.cpu_count() or 1,
    )


# --------------------------------------------------------------------------- command line


def parse_size(text: str) -> tuple[int, int]:
    """'256x512' -> (256, 512), with a message argparse shows for anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 256x512, got {text!r}")
    size = (int(match.group(1)), int(match.group(2)))
    try:
        return _check_size(size)
    except SyntheticError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    demo = DEMO_SETTINGS
    parser = argparse.ArgumentParser(
        prog="python -m models.synthetic",
        description="Render synthetic road scenes with Cityscapes-style labels (labelIds, "
        "instanceIds, colour PNGs and a JSON sidecar of conditions per image) into "
        "OUT/leftImg8bit/<split>/<city>/ and OUT/gtFine/<split>/<city>/.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder to write (must be empty, new, or an earlier synthetic set "
        "with the same settings)",
    )
    for split in ("train", "val", "test"):
        parser.add_argument(
            f"--{split}",
            type=_count,
            default=demo.counts[split],
            help=f"number of {split} images (default {demo.counts[split]})",
        )
    parser.add_argument(
        "--seed",
        type=int,
        default=demo.seed,
        help=f"random seed; same seed and versions give identical files (default {demo.seed})",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=demo.size,
        metavar="HxW",
        help="image height x width in pixels, 32..4096 each "
        f"(default {demo.size[0]}x{demo.size[1]})",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=os.cpu_count() or 1,
        help="processes rendering in parallel (default: number of CPUs)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    counts = {"train": args.train, "val": args.val, "test": args.test}
    try:
        out = generate_dataset(
            args.out, counts, args.seed, args.size, not args.no_progress, args.workers
        )
    except SyntheticError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {sum(counts.values())} scenes to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
