"""Time of day: one colour gain for the whole scene plus the sun direction for shadows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Lighting:
    name: str  # "day" | "dusk" | "night"
    gain: tuple[float, float, float]  # BGR multipliers applied to every surface colour
    shadow_dx: float  # horizontal shadow offset per unit of object height (sun side)
    shadow_strength: float  # 0 (no shadows) .. 1 (black)
    lamps: bool  # street lamps and vehicle headlights switched on

    def tint(self, bgr: tuple[float, float, float]) -> tuple[int, int, int]:
        return tuple(int(min(255.0, c * g)) for c, g in zip(bgr, self.gain, strict=True))  # type: ignore[return-value]


def random_lighting(
    rng: np.random.Generator, weights: tuple[float, float, float] = (0.55, 0.25, 0.2)
) -> Lighting:
    name = str(rng.choice(["day", "dusk", "night"], p=np.asarray(weights) / sum(weights)))
    if name == "day":
        g = float(rng.uniform(0.85, 1.1))
        return Lighting(name, (g, g, g), float(rng.uniform(-0.6, 0.6)), float(rng.uniform(0.25, 0.5)), False)
    if name == "dusk":
        g = float(rng.uniform(0.55, 0.75))
        return Lighting(
            name, (g * 0.8, g * 0.9, g * 1.15), float(rng.uniform(-1.2, 1.2)), 0.2, bool(rng.random() < 0.5)
        )
    g = float(rng.uniform(0.3, 0.45))
    return Lighting(name, (g * 1.2, g * 1.0, g * 0.85), 0.0, 0.0, True)
