"""The condition tags of a synthetic image, read from its JSON sidecar.

Kept apart from :mod:`models.synthetic` and free of heavy imports (no numpy, OpenCV or
torch) so that the review GUI can filter images by condition without loading the
generator; the generator names its hard-case tags from here, so both share one spelling.
"""

from __future__ import annotations

from collections.abc import Mapping

# Hard-case tags of a sidecar's "tags"; the generator keeps one only while its case is visible.
SMALL_DISTANT_PEDESTRIAN = "small_distant_pedestrian"
PEDESTRIAN_NEAR_POLE = "pedestrian_near_pole"
PEDESTRIAN_BEHIND_CAR = "pedestrian_behind_car"
LOW_CONTRAST = "low_contrast"

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
