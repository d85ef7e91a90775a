"""Who appears when: seeded arrival schedules of actors along the lanes and across the crossing."""

from __future__ import annotations

import numpy as np

from .actors import SIZES, Actor, random_colours
from .layout import Layout

# Mean arrivals per second on each lane (before the density factor), by scene kind.
RATES = {"street": 0.16, "indoor": 0.12, "static": 0.004}
CROSSING_RATE = {"street": 0.05, "indoor": 0.06, "static": 0.002}
WARMUP_S = 20.0  # simulate this long before t=0 so the scene is already populated


def build_schedule(
    layout: Layout, rng: np.random.Generator, duration_s: float, kind: str, density: float = 1.0
) -> list[Actor]:
    actors: list[Actor] = []
    rate = RATES[kind] * density
    for lane in layout.lanes:
        lane_rate = rate * lane.rate
        t = -WARMUP_S + float(rng.exponential(1.0 / lane_rate))
        lane_free_at: dict[int, float] = {}
        lane_speed = float(rng.uniform(*lane.speed))
        while t < duration_s:
            label = str(rng.choice(lane.labels, p=np.asarray(lane.weights) / sum(lane.weights)))
            direction = lane.direction or int(rng.choice([-1, 1]))
            vehicle = label in ("car", "truck")
            speed = (
                lane_speed * float(rng.uniform(0.97, 1.03)) if vehicle else float(rng.uniform(*lane.speed))
            )
            if label == "bicycle":
                speed = float(rng.uniform(0.12, 0.2))
            size = float(rng.uniform(0.85, 1.15))
            margin = SIZES[label][0] * size * 0.8 + 0.02
            y = lane.y + float(rng.uniform(-lane.jitter, lane.jitter))
            start, end = (-margin, y), (1.0 + margin, y)
            if direction < 0:
                start, end = end, start
            if vehicle and t < lane_free_at.get(direction, -1e9):
                t = lane_free_at[direction]  # keep a gap: vehicles in one lane never drive through each other
            actor = Actor(
                len(actors) + 1, label, (start, end), t, speed, size, direction, random_colours(rng, label)
            )
            if vehicle:
                lane_free_at[direction] = t + (2 * margin + 0.1) / speed
            actors.append(actor)
            t += float(rng.exponential(1.0 / lane_rate))
    if layout.crossing_x is not None:
        crossing = CROSSING_RATE[kind] * density
        t = -WARMUP_S + float(rng.exponential(1.0 / crossing))
        y0, y1 = layout.crossing_span
        while t < duration_s:
            x = layout.crossing_x + float(rng.uniform(-0.04, 0.04))
            path = ((x, y0), (x + float(rng.uniform(-0.03, 0.03)), y1))
            if rng.random() < 0.5:
                path = path[::-1]
            actors.append(
                Actor(
                    len(actors) + 1,
                    "person",
                    path,
                    t,
                    float(rng.uniform(0.04, 0.07)),
                    float(rng.uniform(0.85, 1.15)),
                    int(rng.choice([-1, 1])),
                    random_colours(rng, "person"),
                )
            )
            t += float(rng.exponential(1.0 / crossing))
    return [a for a in actors if a.t0 + a.duration > 0 and a.t0 < duration_s]
