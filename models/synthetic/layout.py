"""The street's cross-section (lanes, sidewalks, crossing) and the list of placed objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.synthetic.canvas import Canvas


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


def sample_layout(rng: np.random.Generator, force: bool) -> Layout:
    """A random street; with ``force`` (a scene that must show every class) one side at
    least has a setback wide enough to show terrain."""
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
