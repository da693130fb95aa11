"""Cars, trucks, buses and trams: boxes with wheels, glass and lamps, drawn as one instance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.labels import LABEL_ID_BY_NAME as L
from models.synthetic.canvas import CIRCLE, Canvas, draw_box, rect_on_z, rects_on_x
from models.synthetic.colours import (
    BUS_PAINT,
    CAR_PAINT,
    TRAM_BAND,
    TRUCK_CABS,
    TRUCK_CARGO,
    Colour,
    jitter,
    pick,
    shade,
)


def _wheel_disc(x: float, zc: float, radius: float) -> np.ndarray:
    """A wheel as a polygon in the plane X = x, centred at depth ``zc``."""
    out = np.empty((16, 3))
    out[:, 0] = x
    out[:, 1] = radius + radius * CIRCLE[:, 1]
    out[:, 2] = zc + radius * CIRCLE[:, 0]
    return out


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
        glass = jitter(rng, (45, 55, 70), 8)
        dark = jitter(rng, (22, 22, 24), 4)
        shadow = np.array(
            [
                (x0 - 0.1, 0.01, z0 - 0.2),
                (x1 + 0.1, 0.01, z0 - 0.2),
                (x1 + 0.1, 0.01, z1),
                (x0 - 0.1, 0.01, z1),
            ]
        )
        canvas.fill(shadow, jitter(rng, (45, 45, 48), 4), L["road"])
        front_light = (250, 240, 200) if lit else (215, 215, 200)
        rear_light = (255, 70, 50) if lit else (190, 30, 30)
        light = front_light if self.facing_camera else rear_light
        if self.kind == "car":
            self._draw_car(canvas, rng, ident, (glass, dark, light))
            return
        height = {"truck": 3.7, "bus": 3.1, "train": 3.5}[self.kind] + rng.uniform(-0.15, 0.15)
        clearance = 0.35 if self.kind == "train" else 0.45
        side_x = x0 if x0 > 0 else x1
        for wz in (z0 + 1.3, z1 - 1.6):
            canvas.fill(_wheel_disc(side_x, wz, 0.5), dark, ident)
        if self.kind == "truck":
            cab = pick(rng, TRUCK_CABS, 10)
            cargo = pick(rng, TRUCK_CARGO, 8)
            cab_len = 2.3
            if self.facing_camera:
                draw_box(canvas, x0, x1, clearance, height, z0 + cab_len, z1, cargo, ident)
                draw_box(canvas, x0, x1, clearance, 2.9, z0, z0 + cab_len, cab, ident)
                canvas.fill(rect_on_z(x0 + 0.15, x1 - 0.15, 1.7, 2.6, z0), glass, ident)
                canvas.fill(rect_on_z(x0 + 0.3, x1 - 0.3, 0.7, 1.3, z0), dark, ident)
            else:
                draw_box(canvas, x0, x1, 0.9, 2.9, z1 - cab_len, z1, cab, ident)
                draw_box(canvas, x0, x1, clearance + 0.5, height, z0, z1 - cab_len, cargo, ident)
                doors = shade(cargo, 0.75)
                canvas.fill(rect_on_z(self.x - 0.03, self.x + 0.03, 1.0, height, z0), doors, ident)
                canvas.fill(rect_on_z(x0 + 0.05, x1 - 0.05, clearance + 0.5, 1.05, z0), dark, ident)
            lamps = np.stack(
                [
                    rect_on_z(x0 + 0.1, x0 + 0.4, 0.7, 0.9, z0),
                    rect_on_z(x1 - 0.4, x1 - 0.1, 0.7, 0.9, z0),
                ]
            )
            canvas.fill(lamps, light, ident)
            return
        if self.kind == "bus":
            paint = pick(rng, BUS_PAINT, 10)
            side, _ = draw_box(canvas, x0, x1, clearance, height, z0, z1, paint, ident)
            band = (1.0, 2.55)
            front = (0.95, 2.6) if self.facing_camera else (1.9, 2.7)
            canvas.fill(rect_on_z(x0 + 0.12, x1 - 0.12, *front, z0), glass, ident)
            if self.facing_camera:
                canvas.fill(rect_on_z(x0 + 0.3, x1 - 0.3, 2.68, 2.95, z0), (240, 150, 30), ident)
        else:
            paint = jitter(rng, (232, 228, 215), 8)
            stripe = pick(rng, TRAM_BAND, 10)
            side, _ = draw_box(canvas, x0, x1, clearance, height, z0, z1, paint, ident)
            band = (1.2, 2.7)
            canvas.fill(rect_on_z(x0, x1, 0.55, 1.0, z0), stripe, ident)
            canvas.fill(rect_on_z(x0 + 0.15, x1 - 0.15, 1.25, 2.9, z0), glass, ident)
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
                    rects_on_x(sx, np.array([z0]), np.array([z1]), 0.55, 1.0), stripe, ident
                )
            starts = np.arange(z0 + 1.0, z1 - 1.5, 1.6)
            canvas.fill(rects_on_x(sx, starts, starts + 1.35, *band), glass, ident)
        lamps = np.stack(
            [
                rect_on_z(x0 + 0.1, x0 + 0.4, 0.6, 0.85, z0),
                rect_on_z(x1 - 0.4, x1 - 0.1, 0.6, 0.85, z0),
            ]
        )
        canvas.fill(lamps, light, ident)

    def _draw_car(
        self,
        canvas: Canvas,
        rng: np.random.Generator,
        ident: int,
        colours: tuple[Colour, Colour, Colour],
    ) -> None:
        """A car's body, wheels, cabin, windows, lamps and plate (its shadow is drawn)."""
        glass, dark, light = colours
        x0, x1 = self.x - self.width / 2, self.x + self.width / 2
        z0, z1 = self.z, self.z + self.length
        paint = pick(rng, CAR_PAINT, 10)
        side_x = x0 if x0 > 0 else x1
        for wz in (z0 + 0.85, z1 - 0.85):
            canvas.fill(_wheel_disc(side_x, wz, 0.33), dark, ident)
        side, _ = draw_box(canvas, x0, x1, 0.28, 0.98, z0, z1, paint, ident)
        canvas.fill(rect_on_z(x0 + 0.1, x0 + 0.42, 0.0, 0.3, z0 + 0.3), dark, ident)
        canvas.fill(rect_on_z(x1 - 0.42, x1 - 0.1, 0.0, 0.3, z0 + 0.3), dark, ident)
        if side is not None:
            sx = x0 if side == "left" else x1
            for wz in (z0 + 0.85, z1 - 0.85):
                canvas.fill(_wheel_disc(sx, wz, 0.33), dark, ident)
        cz0, cz1 = z0 + (0.9 if self.facing_camera else 1.0), z1 - 1.0
        roof = rng.uniform(1.42, 1.55)
        side, _ = draw_box(canvas, x0 + 0.12, x1 - 0.12, 0.98, roof, cz0, cz1, paint, ident)
        canvas.fill(rect_on_z(x0 + 0.2, x1 - 0.2, 1.03, roof - 0.06, cz0), glass, ident)
        if side is not None:
            sx = x0 + 0.12 if side == "left" else x1 - 0.12
            canvas.fill(
                rects_on_x(sx, np.array([cz0 + 0.15]), np.array([cz1 - 0.15]), 1.03, roof - 0.06),
                glass,
                ident,
            )
        lamps = np.stack(
            [
                rect_on_z(x0 + 0.08, x0 + 0.38, 0.72, 0.88, z0),
                rect_on_z(x1 - 0.38, x1 - 0.08, 0.72, 0.88, z0),
            ]
        )
        canvas.fill(lamps, light, ident)
        plate = rect_on_z(self.x - 0.26, self.x + 0.26, 0.42, 0.54, z0)
        canvas.fill(plate, (230, 230, 225), ident)
