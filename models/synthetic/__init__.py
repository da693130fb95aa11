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

The package is split by job: :mod:`.canvas` (camera, drawing surface, primitives),
:mod:`.colours`, :mod:`.sprites`, :mod:`.vehicles`, :mod:`.layout` (the street's
cross-section), :mod:`.backdrop` (sky, ground, roadside), :mod:`.objects` (placing what
stands in the street), :mod:`.photometry`, :mod:`.render` (one scene), :mod:`.writer`
(files and stamps of a set, the demo set) and :mod:`.cli`. The names other modules use
are re-exported here.
"""

from models.synthetic.cli import image_size
from models.synthetic.render import SyntheticError, render_scene
from models.synthetic.writer import (
    DEMO_DATA,
    DEMO_SETTINGS,
    STAMP_NAME,
    SyntheticSettings,
    default_cache_dir,
    demo_dataset_ready,
    demo_folder,
    ensure_demo_dataset,
    generate_dataset,
    render_sample,
    resolve_data,
    write_sample,
)

__all__ = [
    "DEMO_DATA",
    "DEMO_SETTINGS",
    "STAMP_NAME",
    "SyntheticError",
    "SyntheticSettings",
    "default_cache_dir",
    "demo_dataset_ready",
    "demo_folder",
    "ensure_demo_dataset",
    "generate_dataset",
    "image_size",
    "render_sample",
    "render_scene",
    "resolve_data",
    "write_sample",
]
