"""Actors (people, cars, bicycles, trucks): appearance, motion along a path, and how they are drawn.

Every part is a cv2 primitive, so the same drawing code paints the colour image and, with one flat
colour, the id mask used for visibility (occlusion) ground truth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .lighting import Lighting

Colour = tuple[int, int, int] | int
Paint = Callable[[str], Colour]

SKIN = [(60, 90, 150), (80, 120, 190), (110, 160, 220), (140, 180, 230), (40, 60, 100)]
HAIR = [(20, 20, 20), (30, 50, 80), (60, 100, 150), (150, 150, 150), (10, 30, 60)]
CAR_BODY = [
    (240, 240, 240),
    (30, 30, 30),
    (190, 190, 190),
    (40, 40, 200),
    (160, 80, 30),
    (40, 120, 40),
    (30, 160, 220),
    (120, 120, 120),
    (90, 30, 30),
    (200, 200, 220),
]

# Size of each class in units of the layout's perspective scale (frame-height fractions at scale 1).
SIZES = {"person": (0.15, 0.44), "car": (0.95, 0.36), "truck": (1.3, 0.58), "bicycle": (0.46, 0.44)}


@dataclass(frozen=True)
class Actor:
    track_id: int
    label: str
    path: tuple[tuple[float, float], ...]  # foot points, normalised
    t0: float  # time at path[0]
    speed: float  # normalised units per second along the path
    size: float  # individual size factor (people differ in height, cars in length)
    facing: int  # +1 faces right, -1 faces left
    colours: dict[str, tuple[int, int, int]]

    @property
    def duration(self) -> float:
        return self.length / self.speed

    @property
    def length(self) -> float:
        return sum(math.dist(a, b) for a, b in zip(self.path, self.path[1:], strict=False))

    def foot(self, t: float) -> tuple[float, float] | None:
        """Foot point at time ``t`` or None before the start / after the end of the path."""
        d = (t - self.t0) * self.speed
        if d < 0:
            return None
        for a, b in zip(self.path, self.path[1:], strict=False):
            seg = math.dist(a, b)
            if d <= seg:
                f = d / seg if seg else 0.0
                return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
            d -= seg
        return None

    def phase(self, t: float) -> float:
        return (t - self.t0) * self.speed * 60.0


def random_colours(rng: np.random.Generator, label: str) -> dict[str, tuple[int, int, int]]:
    def pick(options: list[tuple[int, int, int]], jitter: float = 15) -> tuple[int, int, int]:
        base = options[int(rng.integers(len(options)))]
        return tuple(int(np.clip(c + rng.normal(0, jitter), 0, 255)) for c in base)  # type: ignore[return-value]

    def any_colour() -> tuple[int, int, int]:
        hsv = np.uint8([[[rng.integers(0, 180), rng.integers(40, 255), rng.integers(40, 240)]]])
        return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])  # type: ignore[return-value]

    person = {
        "skin": pick(SKIN, 10),
        "hair": pick(HAIR, 10),
        "shirt": any_colour(),
        "trousers": any_colour(),
        "shoes": pick([(20, 20, 20), (60, 60, 60), (200, 200, 200)], 10),
    }
    if rng.random() < 0.5:  # dark trousers are common
        person["trousers"] = pick([(40, 30, 20), (70, 50, 30), (30, 30, 30)], 10)
    if label == "person":
        return person
    if label == "bicycle":
        return {**person, "frame": any_colour(), "tyre": (25, 25, 25)}
    body = pick(CAR_BODY, 18) if rng.random() < 0.8 else any_colour()
    return {
        "body": body,
        "cargo": pick([(230, 230, 230), (200, 200, 200), *CAR_BODY], 10) if label == "truck" else body,
        "window": pick([(90, 70, 50), (120, 100, 80), (60, 50, 40)], 10),
        "tyre": (25, 25, 25),
        "hub": (150, 150, 150),
        "light": (180, 230, 250),
        "rear": (40, 40, 200),
    }


def extent(label: str, size: float, scale_px: float) -> tuple[float, float]:
    """(width, height) in pixels of an actor whose perspective scale is ``scale_px`` pixels."""
    w, h = SIZES[label]
    return w * size * scale_px, h * size * scale_px


def lit_paint(colours: dict[str, tuple[int, int, int]], lighting: Lighting) -> Paint:
    cache = {k: lighting.tint(v) for k, v in colours.items()}
    return lambda part: cache[part]


def draw_actor(
    img: np.ndarray, actor: Actor, fx: float, fy: float, w: float, h: float, t: float, paint: Paint
) -> None:
    """Draw ``actor`` standing at pixel foot point (fx, fy) with pixel extent (w, h)."""
    if actor.label == "person":
        _person(img, fx, fy, w, h, actor.phase(t), paint)
    elif actor.label == "bicycle":
        _bicycle(img, fx, fy, w, h, actor.facing, actor.phase(t), paint)
    else:
        _vehicle(img, fx, fy, w, h, actor.facing, actor.label == "truck", paint)


def _p(x: float, y: float) -> tuple[int, int]:
    return int(round(x)), int(round(y))


def _th(v: float) -> int:
    return max(1, int(round(v)))


def _person(img: np.ndarray, fx: float, fy: float, w: float, h: float, phase: float, paint: Paint) -> None:
    top = fy - h
    r = 0.09 * h
    swing = math.sin(phase) * 0.22 * h
    hip = (fx, top + 0.52 * h)
    leg = _th(0.28 * w)
    cv2.line(img, _p(*hip), _p(fx + swing * 0.5, fy - 0.02 * h), paint("trousers"), leg)
    cv2.line(img, _p(*hip), _p(fx - swing * 0.5, fy - 0.02 * h), paint("trousers"), leg)
    cv2.line(
        img,
        _p(fx + swing * 0.5 - 0.05 * w, fy - 0.02 * h),
        _p(fx + swing * 0.5 + 0.2 * w, fy - 0.02 * h),
        paint("shoes"),
        _th(0.06 * h),
    )
    cv2.rectangle(img, _p(fx - 0.38 * w, top + 2 * r), _p(fx + 0.38 * w, hip[1]), paint("shirt"), -1)
    shoulder = top + 2.3 * r
    arm = _th(0.16 * w)
    cv2.line(
        img, _p(fx - 0.38 * w, shoulder), _p(fx - 0.4 * w - swing * 0.3, top + 0.56 * h), paint("shirt"), arm
    )
    cv2.line(
        img, _p(fx + 0.38 * w, shoulder), _p(fx + 0.4 * w + swing * 0.3, top + 0.56 * h), paint("shirt"), arm
    )
    cv2.circle(img, _p(fx, top + r), _th(r), paint("skin"), -1)
    cv2.ellipse(img, _p(fx, top + 0.7 * r), (_th(r), _th(0.6 * r)), 0, 180, 360, paint("hair"), -1)


def _vehicle(
    img: np.ndarray, fx: float, fy: float, w: float, h: float, facing: int, truck: bool, paint: Paint
) -> None:
    x0 = fx - w / 2

    def x(f: float) -> float:  # f measured from the vehicle's rear
        return x0 + (f if facing > 0 else 1.0 - f) * w

    rw = 0.2 * h if not truck else 0.15 * h
    if truck:
        cv2.rectangle(img, _p(x(0.0), fy - h), _p(x(0.7), fy - 1.4 * rw), paint("cargo"), -1)
        cab = np.array(
            [
                _p(x(0.72), fy - 0.8 * h),
                _p(x(0.92), fy - 0.8 * h),
                _p(x(1.0), fy - 0.45 * h),
                _p(x(1.0), fy - 1.4 * rw),
                _p(x(0.72), fy - 1.4 * rw),
            ],
            np.int32,
        )
        cv2.fillPoly(img, [cab], paint("body"))
        win = np.array(
            [
                _p(x(0.8), fy - 0.75 * h),
                _p(x(0.9), fy - 0.75 * h),
                _p(x(0.96), fy - 0.5 * h),
                _p(x(0.8), fy - 0.5 * h),
            ],
            np.int32,
        )
        cv2.fillPoly(img, [win], paint("window"))
        wheels = (0.14, 0.3, 0.84)
    else:
        cv2.rectangle(img, _p(x(0.0), fy - 0.62 * h), _p(x(1.0), fy - 1.3 * rw), paint("body"), -1)
        cabin = np.array(
            [_p(x(0.18), fy - 0.6 * h), _p(x(0.3), fy - h), _p(x(0.68), fy - h), _p(x(0.84), fy - 0.6 * h)],
            np.int32,
        )
        cv2.fillPoly(img, [cabin], paint("body"))
        for a, b, c, d in ((0.23, 0.33, 0.47, 0.47), (0.51, 0.51, 0.66, 0.78)):
            win = np.array(
                [
                    _p(x(a), fy - 0.62 * h),
                    _p(x(b), fy - 0.92 * h),
                    _p(x(c), fy - 0.92 * h),
                    _p(x(d), fy - 0.62 * h),
                ],
                np.int32,
            )
            cv2.fillPoly(img, [win], paint("window"))
        wheels = (0.2, 0.8)
    for f in wheels:
        cv2.circle(img, _p(x(f), fy - rw), _th(rw), paint("tyre"), -1)
        cv2.circle(img, _p(x(f), fy - rw), _th(rw * 0.45), paint("hub"), -1)
    lamp_h = _th(0.08 * h)
    cv2.rectangle(img, _p(x(0.97), fy - 0.55 * h), _p(x(1.0), fy - 0.55 * h + lamp_h), paint("light"), -1)
    cv2.rectangle(img, _p(x(0.0), fy - 0.55 * h), _p(x(0.02), fy - 0.55 * h + lamp_h), paint("rear"), -1)


def _bicycle(
    img: np.ndarray, fx: float, fy: float, w: float, h: float, facing: int, phase: float, paint: Paint
) -> None:
    x0 = fx - w / 2

    def x(f: float) -> float:
        return x0 + (f if facing > 0 else 1.0 - f) * w

    r = 0.22 * w
    back, front = (x(0.22), fy - r), (x(0.78), fy - r)
    tyre = _th(max(1.0, 0.05 * w))
    cv2.circle(img, _p(*back), _th(r), paint("tyre"), tyre)
    cv2.circle(img, _p(*front), _th(r), paint("tyre"), tyre)
    crank = (x(0.45), fy - r)
    seat = (x(0.38), fy - 0.5 * h)
    bar = (x(0.72), fy - 0.55 * h)
    fr = _th(0.05 * w)
    for a, b in ((back, crank), (crank, seat), (seat, back), (crank, bar), (bar, front), (seat, bar)):
        cv2.line(img, _p(*a), _p(*b), paint("frame"), fr)
    # the rider is part of the bicycle object (one label, one centroid)
    pedal = (crank[0] + math.cos(phase) * 0.08 * w, crank[1] + math.sin(phase) * 0.08 * w)
    hip = (seat[0], seat[1] - 0.03 * h)
    shoulder = (x(0.55), fy - 0.86 * h)
    cv2.line(img, _p(*hip), _p(*pedal), paint("trousers"), _th(0.07 * w))
    cv2.line(img, _p(*hip), _p(*shoulder), paint("shirt"), _th(0.13 * w))
    cv2.line(img, _p(*shoulder), _p(*bar), paint("shirt"), _th(0.05 * w))
    cv2.circle(
        img,
        _p(shoulder[0] + (0.04 if facing > 0 else -0.04) * w, fy - 0.93 * h),
        _th(0.07 * h),
        paint("skin"),
        -1,
    )
