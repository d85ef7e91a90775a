"""Static backgrounds, rendered once per video: street (buildings, sidewalks, road, crosswalk) or indoor."""

from __future__ import annotations

import cv2
import numpy as np

from .layout import Layout
from .lighting import Lighting

BUILDING_COLOURS = [
    (120, 130, 150),
    (90, 100, 140),
    (160, 160, 150),
    (70, 80, 110),
    (140, 150, 170),
    (100, 120, 120),
    (60, 70, 90),
    (170, 180, 190),
]
WALL_COLOURS = [(200, 205, 210), (170, 190, 200), (150, 170, 180), (210, 200, 180), (180, 180, 160)]
FLOOR_COLOURS = [(90, 110, 130), (120, 120, 120), (70, 90, 120), (150, 150, 140), (60, 70, 80)]


def _jitter(
    rng: np.random.Generator, bgr: tuple[int, int, int], amount: float = 18.0
) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.normal(0, amount), 0, 255)) for c in bgr)  # type: ignore[return-value]


def _texture(rng: np.random.Generator, h: int, w: int, amplitude: float) -> np.ndarray:
    """Low-frequency mottling (stains, wear) so surfaces are not flat colour."""
    small = rng.normal(0.0, amplitude, (max(2, h // 16), max(2, w // 16))).astype(np.float32)
    fine = rng.normal(0.0, amplitude * 0.5, (h, w)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) + fine


def render_background(
    layout: Layout, lighting: Lighting, rng: np.random.Generator, width: int, height: int
) -> np.ndarray:
    if layout.scene == "indoor":
        img = _indoor(layout, rng, width, height)
    else:
        img = _street(layout, rng, width, height)
    img = img.astype(np.float32)
    img += _texture(rng, height, width, 6.0)[..., None]
    img *= np.asarray(lighting.gain, np.float32)
    if lighting.lamps:
        _lamp_glow(img, rng, layout, width, height)
    return np.clip(img, 0, 255).astype(np.uint8)


def _street(layout: Layout, rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    hy = int(layout.horizon * h)
    sky = _jitter(rng, (210, 180, 140), 20)
    img[:hy] = sky
    x = int(rng.integers(-20, 0))
    while x < w:  # building facades with window grids
        bw = int(rng.integers(w // 8, w // 3))
        top = int(rng.integers(0, max(1, hy - 8)))
        colour = _jitter(rng, BUILDING_COLOURS[int(rng.integers(len(BUILDING_COLOURS)))])
        cv2.rectangle(img, (x, top), (x + bw, hy + 6), colour, -1)
        win = _jitter(rng, (90, 70, 50), 25)
        step_x, step_y = max(6, bw // int(rng.integers(3, 7))), max(6, int(rng.integers(7, 14)))
        for wy in range(top + 4, hy, step_y):
            for wx in range(x + 3, x + bw - 5, step_x):
                cv2.rectangle(img, (wx, wy), (wx + step_x // 2, wy + step_y // 2), win, -1)
        x += bw + int(rng.integers(0, 6))
    lanes = layout.lanes
    far_walk, near_walk = lanes[0].y, lanes[-1].y
    road_top = int((far_walk + 0.03) * h)
    road_bottom = int((near_walk - 0.07) * h)
    pave = _jitter(rng, (150, 155, 160))
    img[hy:road_top] = pave
    img[road_bottom:] = _jitter(rng, pave, 10)
    asphalt = _jitter(rng, (75, 75, 80), 12)
    img[road_top:road_bottom] = asphalt
    cv2.line(img, (0, road_top), (w, road_top), (200, 200, 200), max(1, h // 96))
    cv2.line(img, (0, road_bottom), (w, road_bottom), (200, 200, 200), max(1, h // 64))
    vx = rng.uniform(0.2, 0.8) * w  # vanishing point of paving joints (perspective cue)
    for i in range(-10, 30):
        xb = int(i * w / 16)
        cv2.line(img, (int(vx + (xb - vx) * 0.35), hy), (xb, road_top), _jitter(rng, pave, 4), 1)
        cv2.line(
            img,
            (int(vx + (xb - vx) * 1.8), road_bottom),
            (int(vx + (xb - vx) * 2.6), h),
            _jitter(rng, pave, 4),
            1,
        )
    mid = (road_top + road_bottom) // 2
    dash = max(8, w // 16)
    for xd in range(int(rng.integers(0, dash)), w, dash * 2):
        cv2.rectangle(img, (xd, mid - 1), (xd + dash, mid + 1), (210, 215, 220), -1)
    if layout.crossing_x is not None:
        cx = int(layout.crossing_x * w)
        half = int(0.07 * w)
        stripe = max(3, (road_bottom - road_top) // 12)
        for ys in range(road_top + stripe // 2, road_bottom - stripe // 2, stripe * 2):
            cv2.rectangle(img, (cx - half, ys), (cx + half, ys + stripe), (215, 220, 225), -1)
    for _ in range(int(rng.integers(0, 4))):  # patches and manholes
        px, py = int(rng.uniform(0, w)), int(rng.uniform(road_top, road_bottom))
        cv2.ellipse(
            img,
            (px, py),
            (int(rng.integers(4, 20)), int(rng.integers(2, 6))),
            0,
            0,
            360,
            _jitter(rng, asphalt, 15),
            -1,
        )
    return img


def _indoor(layout: Layout, rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    hy = int(layout.horizon * h)
    wall = _jitter(rng, WALL_COLOURS[int(rng.integers(len(WALL_COLOURS)))])
    floor = _jitter(rng, FLOOR_COLOURS[int(rng.integers(len(FLOOR_COLOURS)))])
    img[:hy] = wall
    img[hy:] = floor
    vx = rng.uniform(0.3, 0.7) * w
    tile = _jitter(rng, floor, 12)
    for i in range(-12, 24):  # floor tiles converging to the vanishing point
        xb = i * w / 8
        cv2.line(img, (int(vx + (xb - vx) * 0.3), hy), (int(xb), h), tile, 1)
    y = float(hy)
    step = 4.0
    while y < h:
        cv2.line(img, (0, int(y)), (w, int(y)), tile, 1)
        y += step
        step *= 1.35
    cv2.rectangle(img, (0, hy - 3), (w, hy + 1), _jitter(rng, (60, 60, 60)), -1)  # skirting board
    if layout.crossing_x is not None:  # a door where the doorway line is
        dx = int(layout.crossing_x * w)
        dw, dh = int(0.09 * w), int(0.33 * h)
        cv2.rectangle(img, (dx - dw, hy - dh), (dx + dw, hy), _jitter(rng, (60, 90, 130), 25), -1)
        cv2.circle(img, (dx + dw - 5, hy - dh // 2), 2, (40, 180, 220), -1)
    for _ in range(int(rng.integers(1, 4))):  # pictures and notice boards
        px, py = int(rng.uniform(0, w * 0.9)), int(rng.uniform(0, hy * 0.6))
        cv2.rectangle(
            img,
            (px, py),
            (px + int(rng.integers(12, 40)), py + int(rng.integers(8, 25))),
            _jitter(rng, (120, 120, 120), 60),
            -1,
        )
    desk = _jitter(rng, (50, 80, 110), 20)  # a desk in the "desk" zone corner
    cv2.rectangle(img, (int(0.02 * w), int(0.62 * h)), (int(0.26 * w), int(0.70 * h)), desk, -1)
    cv2.rectangle(img, (int(0.04 * w), int(0.70 * h)), (int(0.06 * w), int(0.85 * h)), desk, -1)
    cv2.rectangle(img, (int(0.22 * w), int(0.70 * h)), (int(0.24 * w), int(0.85 * h)), desk, -1)
    return img


def _lamp_glow(img: np.ndarray, rng: np.random.Generator, layout: Layout, w: int, h: int) -> None:
    """Pools of warm light under street lamps / ceiling lights."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(int(rng.integers(1, 4))):
        lx, ly = rng.uniform(0, w), rng.uniform(layout.horizon * h, h)
        r = rng.uniform(0.15, 0.35) * w
        glow = np.exp(-(((xx - lx) ** 2 + ((yy - ly) * 1.8) ** 2) / (2 * r * r)))
        img += glow[..., None] * np.asarray((40, 70, 90), np.float32) * rng.uniform(0.6, 1.2)
