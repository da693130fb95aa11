"""One scene from one random stream: camera, layout, objects, drawing, labels and sidecar."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.conditions import LOW_CONTRAST
from models.labels import (
    CLASS_NAMES,
    INSTANCE_CLASSES,
    LABEL_ID_BY_NAME,
    LABEL_ID_TO_TRAIN_ID,
    NUM_EVALUATED,
)
from models.synthetic.backdrop import draw_backdrop
from models.synthetic.canvas import Camera, Canvas
from models.synthetic.layout import sample_layout
from models.synthetic.objects import place_objects
from models.synthetic.photometry import Conditions, apply_photometry

INSTANCE_NAMES = tuple(CLASS_NAMES[train_id] for train_id in INSTANCE_CLASSES)
"""Cityscapes classes with instances, in ``instanceIds`` order of label id."""
INSTANCE_LABEL_IDS = tuple(LABEL_ID_BY_NAME[name] for name in INSTANCE_NAMES)


class SyntheticError(ValueError):
    """A synthetic-set request that cannot be carried out (bad folder, size or counts)."""


@dataclass(frozen=True)
class Scene:
    """One rendered scene: RGB image, Cityscapes labelIds, instanceIds and its conditions."""

    image: np.ndarray
    label_ids: np.ndarray
    instance_ids: np.ndarray
    meta: dict


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
    layout = sample_layout(rng, force)
    layout.lit = cond.dusk
    place_objects(rng, layout, force)
    draw_backdrop(canvas, rng, layout, cond.dusk, force)
    for _, _, draw in sorted(layout.objects, key=lambda o: (-o[0], o[1])):
        draw(canvas)
    label_ids, instance_ids, objects, tags = _finish_ids(canvas.ids, canvas.witnesses)
    image = apply_photometry(rng, canvas.image, label_ids, cond, camera.horizon)
    if cond.low_contrast:
        tags.add(LOW_CONTRAST)
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


def _train_ids_present(scene: Scene) -> frozenset[int]:
    counts = np.bincount(LABEL_ID_TO_TRAIN_ID[scene.label_ids].ravel(), minlength=20)
    return frozenset(int(i) for i in np.flatnonzero(counts[:NUM_EVALUATED]))


def render_requiring(
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
    check_size(size)
    return render_requiring(seed, size, frozenset())


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """``size`` as (height, width) ints, checked here once for the API and the command line."""
    if len(size) != 2 or any(not isinstance(s, int | np.integer) for s in size):
        raise SyntheticError(f"size must be (height, width) in pixels, got {size!r}")
    h, w = int(size[0]), int(size[1])
    if not (32 <= h <= 4096 and 32 <= w <= 4096):
        raise SyntheticError(f"size {h}x{w} out of range: height and width must be 32..4096")
    return h, w
