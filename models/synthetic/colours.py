"""Colours of the synthetic scenes: a consistent family per class, jittered per object.

A small network learns the scenes because every class keeps to its own colour family;
the jitter makes objects of one class differ without leaving the family.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Colour = tuple[int, int, int]


def _clip_colour(r: float, g: float, b: float) -> Colour:
    return (min(255, max(0, int(r))), min(255, max(0, int(g))), min(255, max(0, int(b))))


def shade(colour: Colour, factor: float) -> Colour:
    return _clip_colour(colour[0] * factor, colour[1] * factor, colour[2] * factor)


def jitter(rng: np.random.Generator, base: Sequence[float], amount: float) -> Colour:
    """A colour near ``base``: shared brightness shift plus a smaller per-channel one."""
    n = rng.standard_normal(4)
    shift = amount * (n[0] + n[1:] / 3)
    return _clip_colour(base[0] + shift[0], base[1] + shift[1], base[2] + shift[2])


def pick(rng: np.random.Generator, options: Sequence[Sequence[float]], amount: float) -> Colour:
    return jitter(rng, options[int(rng.integers(len(options)))], amount)


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
