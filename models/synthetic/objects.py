"""Placing what stands in the street: vehicles, poles, lights, signs, trees, people, bikes.

Placement only records, per object, its depth and how to draw it; drawing happens later,
far to near, so nearer objects hide farther ones. The hard safety cases (a pedestrian
small in the distance, next to a pole or partly behind a parked car) are placed here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from models.conditions import PEDESTRIAN_BEHIND_CAR, PEDESTRIAN_NEAR_POLE, SMALL_DISTANT_PEDESTRIAN
from models.labels import LABEL_ID_BY_NAME as L
from models.synthetic.canvas import Canvas, Part, draw_sprite, line, poly
from models.synthetic.colours import Colour, pick, shade
from models.synthetic.layout import Layout
from models.synthetic.sprites import (
    person_parts,
    rider_parts,
    sign_parts,
    traffic_light_parts,
    tree_parts,
    two_wheeler_parts,
)
from models.synthetic.vehicles import Vehicle


def place_objects(rng: np.random.Generator, layout: Layout, force: bool) -> None:
    """Add everything to ``layout``: vehicles first (people avoid them and hide behind
    parked cars), then the poles people stand next to, then people and two-wheelers. The
    order is the order the random stream is drawn in, so it is part of every scene."""
    vehicles = _place_vehicles(rng, layout, force)
    poles = _place_static(rng, layout, force)
    _place_people(rng, layout, poles, vehicles, force, layout.lit)


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
            poly(
                [(-width / 2, 0), (width / 2, 0), (width * 0.35, top), (-width * 0.35, top)], colour
            )
        ]
        if arm:
            parts.append(
                line([(0, top - 0.1), (arm * 0.3, top + 0.25), (arm, top + 0.3)], colour, 0.1)
            )
            parts.append(
                poly(
                    [
                        (arm - 0.35, top + 0.1),
                        (arm + 0.35, top + 0.1),
                        (arm + 0.3, top + 0.35),
                        (arm - 0.3, top + 0.35),
                    ],
                    shade(colour, 0.7),
                )
            )
        draw_sprite(canvas, x, z, parts, L["pole"])

    return draw


def _place_static(
    rng: np.random.Generator, layout: Layout, force: bool
) -> list[tuple[float, float]]:
    """Street lamps, sign posts, traffic lights and trees; return pole positions (x, z)."""
    poles: list[tuple[float, float]] = []
    grey = pick(rng, ((130, 132, 135), (70, 72, 70), (60, 75, 65)), 10)
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
                    [line([(0, top - 0.2), (arm_len, top - 0.2)], grey, 0.14)],
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
        tag = SMALL_DISTANT_PEDESTRIAN
        layout.add(z, _person_draw(rng, x, z, "front", False, tag), "person")
    if poles and rng.random() < 0.35:
        px, pz = poles[int(rng.integers(len(poles)))]
        if pz < 45:
            x, z = px + rng.choice([-0.45, 0.45]), pz + rng.uniform(0.2, 0.8)
            tag = PEDESTRIAN_NEAR_POLE
            layout.add(z, _person_draw(rng, x, z, "front", False, tag), "person")
    parked = [v for v in vehicles if v.parked]
    if parked and rng.random() < 0.4:
        car = parked[int(rng.integers(len(parked)))]
        toward = 1 if car.x < 0 else -1
        x = car.x + toward * (car.width / 2 + rng.uniform(-0.7, -0.2))
        z = car.z + rng.uniform(0.8, 2.5)
        car.tag = PEDESTRIAN_BEHIND_CAR
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
