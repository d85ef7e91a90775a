"""The one detection type every decoder returns and every consumer (tracker, metrics, CLI) reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 (input pixels from a decoder; 0..1 after mapping)

    @property
    def centroid(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return self.box
