"""Flat sprites of people, two-wheelers, traffic lights, signs and trees, as lists of parts.

A sprite is built from a random stream once, when it is placed, and drawn later with
:func:`models.synthetic.canvas.draw_sprite` in a vertical plane facing the road axis.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from models.synthetic.canvas import CIRCLE, Part, ellipse, line, poly
from models.synthetic.colours import (
    BIKE_FRAMES,
    HAIR,
    HELMETS,
    MOTO_PAINT,
    PANTS,
    RIDER_JACKETS,
    SHIRTS,
    SKIN,
    VEGETATION,
    Colour,
    jitter,
    pick,
    shade,
)


class _Clothes(NamedTuple):
    skin: Colour
    hair: Colour
    shirt: Colour
    pants: Colour
    shoes: Colour


def person_parts(rng: np.random.Generator, height: float, view: str) -> list[Part]:
    """A pedestrian, ``view`` 'front', 'back' or 'side' (walking towards +u)."""
    skin, hair = pick(rng, SKIN, 8), pick(rng, HAIR, 10)
    shirt, pants = pick(rng, SHIRTS, 18), pick(rng, PANTS, 12)
    clothes = _Clothes(skin, hair, shirt, pants, jitter(rng, (35, 32, 30), 8))
    if view == "side":
        return _walking_side_on(rng, height, clothes)
    return _facing(rng, height, view, clothes)


def _walking_side_on(rng: np.random.Generator, h: float, clothes: _Clothes) -> list[Part]:
    """A pedestrian seen from the side, legs apart and one arm swinging."""
    skin, hair, shirt, pants, shoes = clothes
    parts: list[Part] = []
    stride = rng.uniform(0.08, 0.2) * h
    for sign in (-1, 1):
        foot = sign * stride
        parts.append(
            poly(
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
            poly(
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
        poly(
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
        poly(
            [
                (-0.03 * h, 0.79 * h),
                (0.03 * h, 0.79 * h),
                (swing + 0.03 * h, 0.5 * h),
                (swing - 0.03 * h, 0.5 * h),
            ],
            shade(shirt, 0.85),
        )
    )
    parts.append(ellipse(0.012 * h, 0.9 * h, 0.058 * h, 0.07 * h, skin))
    parts.append(ellipse(-0.012 * h, 0.925 * h, 0.055 * h, 0.05 * h, hair))
    return parts


def _facing(rng: np.random.Generator, h: float, view: str, clothes: _Clothes) -> list[Part]:
    """A pedestrian seen from the front or the back (then sometimes with a backpack)."""
    skin, hair, shirt, pants, shoes = clothes
    parts: list[Part] = []
    for sign in (-1, 1):
        parts.append(
            poly(
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
            poly(
                [
                    (sign * 0.135 * h, 0.79 * h),
                    (sign * 0.175 * h, 0.76 * h),
                    (sign * 0.165 * h, 0.47 * h),
                    (sign * 0.125 * h, 0.47 * h),
                ],
                shade(shirt, 0.9),
            )
        )
        parts.append(ellipse(sign * 0.145 * h, 0.455 * h, 0.022 * h, 0.03 * h, skin))
        parts.append(
            poly(
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
        poly(
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
    parts.append(ellipse(0, 0.9 * h, 0.06 * h, 0.072 * h, skin))
    if view == "back":
        parts.append(ellipse(0, 0.905 * h, 0.062 * h, 0.07 * h, hair))
        if rng.random() < 0.4:
            bag = pick(rng, SHIRTS, 15)
            parts.append(
                poly(
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
        parts.append(ellipse(0, 0.935 * h, 0.062 * h, 0.042 * h, hair))
    return parts


def rider_parts(rng: np.random.Generator, vehicle: str, view: str) -> list[Part]:
    """The person on a two-wheeler ('bicycle' or 'motorcycle'); 'side' or 'rear' view."""
    moto = vehicle == "motorcycle"
    jacket = pick(rng, ((40, 40, 45), (90, 30, 30), *RIDER_JACKETS) if moto else RIDER_JACKETS, 15)
    pants = pick(rng, PANTS, 10)
    helmet = pick(rng, HELMETS, 12)
    skin = pick(rng, SKIN, 8)
    seat = 0.8 if moto else 0.88
    head_r = 0.14 if moto else 0.11
    if view == "side":
        hip, shoulder = (-0.25 if moto else -0.17, seat + 0.05), (0.05, seat + 0.62)
        hand = (0.45 if moto else 0.3, seat + 0.2)
        knee, foot = (0.15, seat - 0.2), (0.02, 0.32)
        return [
            line([hip, knee, foot], pants, 0.13),
            line([hip, (shoulder[0] - 0.05, shoulder[1] - 0.1)], jacket, 0.3),
            line([shoulder, hand], shade(jacket, 0.85), 0.09),
            ellipse(shoulder[0] + 0.1, shoulder[1] + 0.2, head_r, head_r, skin),
            ellipse(shoulder[0] + 0.08, shoulder[1] + 0.24, head_r * 1.08, head_r * 0.8, helmet),
        ]
    return [
        poly(
            [
                (-0.17, seat - 0.35),
                (-0.07, seat - 0.35),
                (-0.05, seat + 0.05),
                (-0.17, seat + 0.05),
            ],
            pants,
        ),
        poly(
            [(0.17, seat - 0.35), (0.07, seat - 0.35), (0.05, seat + 0.05), (0.17, seat + 0.05)],
            pants,
        ),
        poly([(-0.2, seat), (0.2, seat), (0.23, seat + 0.58), (-0.23, seat + 0.58)], jacket),
        line([(-0.22, seat + 0.55), (-0.3, seat + 0.2)], shade(jacket, 0.85), 0.09),
        line([(0.22, seat + 0.55), (0.3, seat + 0.2)], shade(jacket, 0.85), 0.09),
        ellipse(0, seat + 0.72, head_r, head_r * 1.1, helmet),
    ]


def two_wheeler_parts(rng: np.random.Generator, vehicle: str, view: str, lit: bool) -> list[Part]:
    """A bicycle or motorcycle; 'side' view shows both wheels, 'rear' the back wheel."""
    tyre = jitter(rng, (25, 25, 28), 5)
    if vehicle == "bicycle":
        frame = pick(rng, BIKE_FRAMES, 15)
        rim = jitter(rng, (150, 150, 155), 12)
        if view == "rear":
            return [
                poly([(-0.03, 0), (0.03, 0), (0.03, 0.68), (-0.03, 0.68)], tyre),
                poly([(-0.06, 0.55), (0.06, 0.55), (0.06, 0.75), (-0.06, 0.75)], frame),
                line([(-0.3, 1.0), (0.3, 1.0)], shade(frame, 0.7), 0.05),
                poly([(-0.05, 0.3), (0.05, 0.3), (0.05, 0.4), (-0.05, 0.4)], (220, 30, 30)),
            ]
        r = 0.34
        parts: list[Part] = []
        for cu in (-0.52, 0.52):
            parts.append(ellipse(cu, r, r, r, tyre))
            parts.append(ellipse(cu, r, r * 0.82, r * 0.82, rim))
            parts.append(line([(cu - r * 0.8, r), (cu + r * 0.8, r)], shade(rim, 0.7), 0.02))
        rear, bb, seat, head, front = (-0.52, r), (0.0, 0.3), (-0.15, 0.85), (0.4, 0.85), (0.52, r)
        parts.append(line([rear, bb, seat, rear], frame, 0.05))
        parts.append(line([bb, head, front], frame, 0.05))
        parts.append(line([seat, head], frame, 0.05))
        parts.append(line([head, (0.36, 1.02), (0.25, 1.02)], shade(frame, 0.6), 0.04))
        parts.append(poly([(-0.27, 0.85), (-0.03, 0.85), (-0.05, 0.92), (-0.25, 0.92)], tyre))
        return parts
    paint = pick(rng, MOTO_PAINT, 15)
    chrome = jitter(rng, (175, 175, 180), 10)
    light = (250, 235, 190) if lit else (150, 40, 30)
    if view == "rear":
        return [
            poly([(-0.08, 0), (0.08, 0), (0.08, 0.62), (-0.08, 0.62)], tyre),
            poly([(-0.24, 0.42), (0.24, 0.42), (0.21, 0.92), (-0.21, 0.92)], paint),
            poly([(-0.07, 0.72), (0.07, 0.72), (0.07, 0.8), (-0.07, 0.8)], (235, 40, 30)),
            line([(-0.42, 1.08), (0.42, 1.08)], (30, 30, 30), 0.04),
            poly([(0.22, 0.3), (0.32, 0.3), (0.32, 0.38), (0.22, 0.38)], chrome),
        ]
    r = 0.31
    parts = []
    for cu in (-0.7, 0.7):
        parts.append(ellipse(cu, r, r, r, tyre))
        parts.append(ellipse(cu, r, r * 0.55, r * 0.55, chrome))
    parts.append(line([(0.7, r), (0.5, 1.02)], chrome, 0.07))
    parts.append(
        poly(
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
        poly([(-0.35, 0.33), (0.25, 0.33), (0.2, 0.6), (-0.3, 0.6)], jitter(rng, (70, 70, 75), 10))
    )
    parts.append(line([(-0.4, 0.35), (-0.95, 0.45)], chrome, 0.08))
    parts.append(ellipse(0.6, 0.92, 0.08, 0.08, light))
    return parts


def traffic_light_parts(rng: np.random.Generator, width: float, bottom: float) -> list[Part]:
    housing = pick(rng, ((30, 32, 30), (45, 50, 40), (200, 165, 35)), 6)
    lit = int(rng.integers(3))
    lamps = ((235, 45, 35), (245, 175, 30), (40, 225, 130))
    h = width * 2.7
    parts = [
        poly(
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
        shown = colour if i == lit else shade(colour, 0.3)
        parts.append(ellipse(0, cv, width * 0.32, width * 0.32, shown))
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
            ellipse(0, c, r, r, red),
            ellipse(0, c, r * 0.72, r * 0.72, white),
            poly(
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
            ellipse(0, c, r, r, blue),
            poly(
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
            poly([(-r, c - 0.8 * r), (r, c - 0.8 * r), (0, c + r)], red),
            poly([(-0.62 * r, c - 0.57 * r), (0.62 * r, c - 0.57 * r), (0, c + 0.5 * r)], white),
        ]
    if kind == 3:
        return [
            poly([(-r, c - r), (r, c - r), (r, c + r), (-r, c + r)], blue),
            poly(
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
        octagon = CIRCLE[::2] * r * 1.05 + (0, c)
        return [
            ("poly", octagon, red, 0.0),
            poly(
                [
                    (-0.6 * r, c - 0.12 * r),
                    (0.6 * r, c - 0.12 * r),
                    (0.6 * r, c + 0.12 * r),
                    (-0.6 * r, c + 0.12 * r),
                ],
                white,
            ),
        ]
    green = pick(rng, ((20, 110, 60), (30, 80, 170)), 10)
    return [
        poly(
            [
                (-1.4 * r, c - 0.6 * r),
                (1.4 * r, c - 0.6 * r),
                (1.4 * r, c + 0.6 * r),
                (-1.4 * r, c + 0.6 * r),
            ],
            green,
        ),
        poly(
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
    trunk = jitter(rng, (85, 70, 55), 10)
    top = rng.uniform(2.0, 3.0)
    parts = [poly([(-0.15, 0), (0.15, 0), (0.1, top + 0.5), (-0.1, top + 0.5)], trunk)]
    base = pick(rng, VEGETATION, 12)
    for _ in range(int(rng.integers(4, 7))):
        cu, cv = rng.uniform(-1.2, 1.2), top + rng.uniform(0.8, 3.0)
        radius = rng.uniform(1.0, 1.8)
        parts.append(
            ellipse(
                cu, cv, radius, radius * rng.uniform(0.8, 1.1), shade(base, rng.uniform(0.75, 1.2))
            )
        )
    return parts
