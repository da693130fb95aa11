"""Everything behind the objects: sky, terrain, skyline, road surface and what lines it.

Drawn before the objects (painter's algorithm), far roadside segments first.
"""

from __future__ import annotations

import math

import numpy as np

from models.labels import LABEL_ID_BY_NAME as L
from models.synthetic.canvas import Canvas, draw_box, quads, rect_on_z, rects_on_x
from models.synthetic.colours import (
    BUILDINGS,
    FENCES,
    TERRAIN,
    VEGETATION,
    WALLS,
    jitter,
    pick,
    shade,
)
from models.synthetic.layout import Layout


def draw_backdrop(
    canvas: Canvas, rng: np.random.Generator, layout: Layout, dusk: bool, force: bool
) -> None:
    """Sky and terrain, then skyline, ground and roadside in one batch (one projection)."""
    _sky_and_ground(canvas, rng, dusk)
    with canvas.batch():
        _skyline(canvas, rng, layout)
        _ground(canvas, rng, layout)
        _roadside(canvas, rng, layout, dusk, force)


def _sky_and_ground(canvas: Canvas, rng: np.random.Generator, dusk: bool) -> None:
    h = canvas.ids.shape[0]
    cam = canvas.camera
    if dusk:
        top, low = jitter(rng, (55, 60, 120), 10), jitter(rng, (235, 160, 115), 12)
    else:
        top, low = jitter(rng, (85, 140, 205), 12), jitter(rng, (185, 205, 225), 10)
    rows = np.clip((np.arange(h) / max(cam.horizon, 1.0)), 0, 1)[:, None]
    gradient = (np.asarray(top) * (1 - rows) + np.asarray(low) * rows).astype(np.uint8)
    canvas.image[:] = gradient[:, None, :]
    canvas.ids[:] = L["sky"]
    ground = min(h, max(0, math.ceil(cam.horizon)))
    canvas.image[ground:] = pick(rng, TERRAIN, 10)
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
            colour = shade(pick(rng, BUILDINGS, 10), 0.85)
            canvas.fill(rect_on_z(x, x + width, 0, height, z), colour, L["building"])
        else:
            us = np.linspace(x, x + width, 9)
            tops = rng.uniform(8, 16, 9)
            pts = np.concatenate([[(x, 0.0)], np.stack([us, tops], 1), [(x + width, 0.0)]])
            world = np.stack([pts[:, 0], pts[:, 1], np.full(len(pts), z - 1)], 1)
            canvas.fill(world, shade(pick(rng, VEGETATION, 8), 0.8), L["vegetation"])
        x += width


def _ground(canvas: Canvas, rng: np.random.Generator, layout: Layout) -> None:
    """Road, lane markings, tram rails, crossing, curbs, sidewalks and verges."""
    near, far = 1.0, layout.far
    rl, rr = layout.road_left, layout.road_right
    road = jitter(rng, (88, 88, 92), 8)
    canvas.fill(
        np.array([(rl, 0, near), (rr, 0, near), (rr, 0, far), (rl, 0, far)]), road, L["road"]
    )
    zc, zw = layout.crossing_z, layout.crossing_width
    if zc is not None:
        cross = np.array([(-far, 0, zc), (far, 0, zc), (far, 0, zc + zw), (-far, 0, zc + zw)])
        canvas.fill(cross, road, L["road"])
    white = jitter(rng, (225, 225, 215), 6)
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
        rail = jitter(rng, (120, 118, 115), 8)
        for xr in (xc - 0.72, xc + 0.72):
            canvas.fill(
                _ground_rects(xr - 0.04, xr + 0.04, np.array([near]), np.array([far])),
                rail,
                L["road"],
            )
    walk = jitter(rng, (165, 160, 155), 10)
    curb = shade(walk, 1.12)
    verge = pick(rng, TERRAIN, 10)
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
            canvas.fill(joints, shade(walk, 0.86), L["sidewalk"])
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
    return quads((x0, y, z0), (x1, y, z0), (x1, y, z1), (x0, y, z1))


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
                front = rect_on_z(line + side * 3, line + side * 60, 0, rng.uniform(10, 22), z + 3)
                canvas.fill(front, shade(pick(rng, BUILDINGS, 12), 0.9), L["building"])
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
        colour = pick(rng, WALLS, 10)
        draw_box(canvas, x0, x1, 0.0, height, z0, z1, colour, L["wall"])
        rows = np.arange(0.5, height - 0.1, 0.5)
        for y in rows:
            joint = rects_on_x(line, np.array([z0]), np.array([z1]), y, y + 0.05)
            canvas.fill(joint, shade(colour, 0.8), L["wall"])
        return
    colour = pick(rng, FENCES, 10)
    panel = rects_on_x(line, np.array([z0]), np.array([z1]), 0.0, height)
    canvas.fill(panel, shade(colour, 0.55), L["fence"])
    posts = np.arange(z0, z1, rng.uniform(0.12, 0.25))
    canvas.fill(rects_on_x(line, posts, posts + 0.06, 0.0, height), colour, L["fence"])
    canvas.fill(
        rects_on_x(line, np.array([z0]), np.array([z1]), height - 0.12, height),
        shade(colour, 1.2),
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
    canvas.fill(world, pick(rng, VEGETATION, 10), L["vegetation"])


def _building(
    canvas: Canvas,
    rng: np.random.Generator,
    side: int,
    line: float,
    z0: float,
    z1: float,
    dusk: bool,
) -> None:
    colour = pick(rng, BUILDINGS, 12)
    height = rng.uniform(7, 26)
    end = rect_on_z(line, line + side * 15, 0, height, z0)
    canvas.fill(end, shade(colour, 0.7), L["building"])
    canvas.fill(rects_on_x(line, np.array([z0]), np.array([z1]), 0, height), colour, L["building"])
    floor = rng.uniform(3.0, 3.6)
    spacing = rng.uniform(2.2, 3.2)
    width, tall = spacing * rng.uniform(0.45, 0.65), floor * rng.uniform(0.4, 0.55)
    cols = np.arange(z0 + 0.6, z1 - width - 0.3, spacing)
    rows = np.arange(floor + 0.8, height - tall - 0.4, floor)
    if len(cols) and len(rows):
        zz, yy = np.meshgrid(cols, rows)
        zz, yy = zz.ravel(), yy.ravel()
        windows = rects_on_x(line, zz, zz + width, 0, 1)
        windows[:, :2, 1] = yy[:, None]
        windows[:, 2:, 1] = (yy + tall)[:, None]
        glass = jitter(rng, (70, 85, 105), 10)
        lit = rng.random(len(windows)) < (0.45 if dusk else 0.0)
        canvas.fill(windows[~lit], glass, L["building"])
        canvas.fill(windows[lit], (235, 205, 120), L["building"])
    if rng.random() < 0.6:
        shop = rects_on_x(line, np.array([z0 + 0.5]), np.array([z1 - 0.5]), 0.3, 2.6)
        canvas.fill(shop, jitter(rng, (55, 60, 65), 10), L["building"])
