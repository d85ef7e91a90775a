"""Ground-truth records produced by the renderer (plain dataclasses: no numpy in the public fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Point = tuple[float, float]
Box = tuple[float, float, float, float]
LABELS: tuple[str, ...] = ("person", "car", "bicycle", "truck")


@dataclass(frozen=True)
class TruthObject:
    """One object in one frame. Coordinates are normalised to 0..1 and clipped to the frame."""

    track_id: int
    label: str
    bbox: Box
    centroid: Point
    visible: float = 1.0  # fraction of the object's pixels that are in frame and not occluded


@dataclass(frozen=True)
class TruthEvent:
    """A line crossing or zone transition of one track's centroid, at the first frame it is true."""

    kind: Literal["line", "zone_enter", "zone_exit"]
    track_id: int
    label: str
    name: str
    direction: str | None
    t: float


@dataclass
class Frame:
    index: int
    t: float
    image: np.ndarray  # BGR uint8, HxWx3
    objects: list[TruthObject] = field(default_factory=list)
