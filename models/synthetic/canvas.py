"""The camera and the drawing surface of a scene, and the primitives everything is drawn with.

The image and the label map are drawn by the same calls, so labels align with the image
exactly; world geometry is in metres (X right, Y up, Z forward) and is projected here only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from models.synthetic.colours import Colour, shade

SHIFT = 4
"""Sub-pixel bits for cv2 polygon vertices."""
SUB = float(1 << SHIFT)
CIRCLE = np.stack(
    [np.cos(np.linspace(0, 2 * np.pi, 17)[:-1]), np.sin(np.linspace(0, 2 * np.pi, 17)[:-1])], 1
)


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
        pix = (self.camera.project(points) * SUB).round().astype(np.int32)
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


def poly(points: Sequence[Sequence[float]], colour: Colour) -> Part:
    return ("poly", np.asarray(points, np.float64), colour, 0.0)


def ellipse(cu: float, cv: float, ru: float, rv: float, colour: Colour) -> Part:
    return ("poly", CIRCLE * (ru, rv) + (cu, cv), colour, 0.0)


def line(points: Sequence[Sequence[float]], colour: Colour, thickness: float) -> Part:
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
        canvas.fill(np.array(face), shade(colour, 0.78), ident)
    top = y1 < cam_h
    if top:
        face = [(x0, y1, z0), (x1, y1, z0), (x1, y1, z1), (x0, y1, z1)]
        canvas.fill(np.array(face), shade(colour, 1.1), ident)
    canvas.fill(np.array([(x0, y0, z0), (x1, y0, z0), (x1, y1, z0), (x0, y1, z0)]), colour, ident)
    return side, top


def rect_on_z(x0: float, x1: float, y0: float, y1: float, z: float) -> np.ndarray:
    return np.array([(x0, y0, z), (x1, y0, z), (x1, y1, z), (x0, y1, z)], np.float64)


def quads(*corners: tuple) -> np.ndarray:
    """Quads (K, 4, 3) from four (x, y, z) corners whose coordinates are scalars or (K,) arrays."""
    k = max(np.size(v) for corner in corners for v in corner)
    out = np.empty((k, 4, 3))
    for i, corner in enumerate(corners):
        for j, value in enumerate(corner):
            out[:, i, j] = value
    return out


def rects_on_x(x: float, z0: np.ndarray, z1: np.ndarray, y0: float, y1: float) -> np.ndarray:
    """Rectangles (K, 4, 3) in the plane X = x, spanning [z0, z1] x [y0, y1]."""
    return quads((x, y0, z0), (x, y0, z1), (x, y1, z1), (x, y1, z0))
