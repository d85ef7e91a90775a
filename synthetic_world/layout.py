"""Scene layouts: where the ground is, where things move, and which lines and zones the scene defines.

Positions are normalised (0..1). An actor stands on the ground at its *foot point*; its size in pixels
follows a simple perspective law so far objects are small and near ones large.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .types import Point


@dataclass(frozen=True)
class Lane:
    """A horizontal band actors travel along (cars on a road lane, people on a sidewalk)."""

    labels: tuple[str, ...]
    weights: tuple[float, ...]
    y: float  # foot y, normalised
    jitter: float  # random foot-y spread within the lane
    direction: int  # +1 left→right, -1 right→left, 0 either
    speed: tuple[float, float]  # frame-widths per second
    rate: float = 1.0  # arrivals relative to the scene's base rate


@dataclass(frozen=True)
class Layout:
    scene: str
    horizon: float
    lanes: tuple[Lane, ...]
    crossing_x: float | None  # x of a path where people cross the lanes (crosswalk, corridor)
    crossing_span: tuple[float, float]  # foot-y range of that crossing path
    lines: dict[str, tuple[Point, Point]] = field(default_factory=dict)
    zones: dict[str, list[Point]] = field(default_factory=dict)
    near_scale: float = 1.0

    def scale(self, foot_y: float) -> float:
        """Pixel size factor (in units of frame height) of a 1-unit object standing at ``foot_y``."""
        depth = max(0.0, (foot_y - self.horizon) / (1.0 - self.horizon))
        return self.near_scale * (0.35 + 0.65 * depth)


def street_layout(rng: np.random.Generator) -> Layout:
    horizon = float(rng.uniform(0.22, 0.30))
    far_walk = float(rng.uniform(0.42, 0.46))
    lane_a = float(rng.uniform(0.60, 0.64))
    lane_b = float(rng.uniform(0.74, 0.78))
    near_walk = float(rng.uniform(0.90, 0.95))
    cx = float(rng.uniform(0.38, 0.62))
    people = (("person",), (1.0,))
    lanes = (
        Lane(*people, y=far_walk, jitter=0.025, direction=0, speed=(0.04, 0.09), rate=0.6),
        Lane(
            ("car", "truck", "bicycle"),
            (0.7, 0.15, 0.15),
            y=lane_a,
            jitter=0.01,
            direction=-1,
            speed=(0.12, 0.25),
        ),
        Lane(
            ("car", "truck", "bicycle"),
            (0.6, 0.15, 0.25),
            y=lane_b,
            jitter=0.01,
            direction=1,
            speed=(0.12, 0.25),
        ),
        Lane(
            ("person", "bicycle"),
            (0.8, 0.2),
            y=near_walk,
            jitter=0.04,
            direction=0,
            speed=(0.05, 0.10),
            rate=0.6,
        ),
    )
    lines = {
        "crosswalk": ((cx, 0.0), (cx, 1.0)),
        "kerb": ((cx - 0.09, 0.55), (cx + 0.09, 0.55)),  # crossed by people on the crosswalk
    }
    zones = {
        "crossing": [
            (cx - 0.08, far_walk - 0.20),
            (cx + 0.08, far_walk - 0.20),
            (cx + 0.10, 0.98),
            (cx - 0.10, 0.98),
        ],
        "far_sidewalk": [(0.0, horizon), (1.0, horizon), (1.0, far_walk + 0.01), (0.0, far_walk + 0.01)],
    }
    return Layout("street", horizon, lanes, cx, (far_walk, near_walk), lines, zones)


def indoor_layout(rng: np.random.Generator) -> Layout:
    horizon = float(rng.uniform(0.38, 0.46))
    back = horizon + 0.08
    cx = float(rng.uniform(0.35, 0.65))
    lanes = (
        Lane(("person",), (1.0,), y=back + 0.03, jitter=0.03, direction=0, speed=(0.05, 0.10), rate=0.6),
        Lane(("person",), (1.0,), y=0.78, jitter=0.06, direction=0, speed=(0.06, 0.12), rate=0.7),
        Lane(
            ("person", "bicycle"), (0.9, 0.1), y=0.94, jitter=0.03, direction=0, speed=(0.06, 0.12), rate=0.6
        ),
    )
    lines = {"doorway": ((cx, 0.0), (cx, 1.0))}
    zones = {"desk": [(0.0, 0.55), (0.3, 0.55), (0.3, 1.0), (0.0, 1.0)]}
    return Layout("indoor", horizon, lanes, cx, (back, 0.97), lines, zones, near_scale=1.15)
