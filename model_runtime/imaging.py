"""Cheap, faithful downscaling: an area-average pyramid.

``cv2.INTER_AREA`` (what the models are trained with) is fast for an exact 2x step and slow for an
arbitrary factor (1.4 ms for 768x432 → 160x96 on a Pi-class core, the biggest cost of the pipeline).
Halving with INTER_AREA until within 2x of the target and finishing with one small INTER_AREA step gives
the same box average at a fraction of the cost (0.25 ms), and the motion gate reuses the same levels.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np


class Pyramid:
    """Area-halved levels of one frame, computed on demand and shared by the motion gate and the model.

    ``Pyramid.of(image)`` returns the same pyramid for the same frame array within a thread (a
    one-entry cache), so the expensive first halving of a large frame happens once per frame.
    """

    _cache = threading.local()

    def __init__(self, image: np.ndarray):
        self.levels = [image]

    @classmethod
    def of(cls, image: np.ndarray) -> Pyramid:
        cached = getattr(cls._cache, "pyramid", None)
        if cached is None or cached.levels[0] is not image:
            cached = cls._cache.pyramid = cls(image)
        return cached

    def _level(self, k: int) -> np.ndarray | None:
        while len(self.levels) <= k:
            h, w = self.levels[-1].shape[:2]
            if h < 2 or w < 2:
                return None
            self.levels.append(cv2.resize(self.levels[-1], (w // 2, h // 2), interpolation=cv2.INTER_AREA))
        return self.levels[k]

    def at_least(self, width: int, height: int) -> np.ndarray:
        """The smallest level still at least ``width`` x ``height``."""
        k = 0
        while True:
            smaller = self._level(k + 1)
            if smaller is None or smaller.shape[1] < width or smaller.shape[0] < height:
                return self.levels[k]
            k += 1

    def nearest_height(self, height: int) -> np.ndarray:
        """The level whose height is closest to ``height`` (motion does not need an exact size)."""
        k = 0
        while True:
            h, w = self.levels[k].shape[:2]
            # Compare sizes before computing the next level: a level built only to be rejected costs a resize.
            if h < 2 or w < 2 or abs(h // 2 - height) >= abs(h - height):
                return self.levels[k]
            self._level(k + 1)
            k += 1

    def resized(self, width: int, height: int) -> np.ndarray:
        """Exactly ``width`` x ``height``, area-averaged, through the shared levels."""
        base = self.at_least(width, height)
        if base.shape[1] == width and base.shape[0] == height:
            return base
        if base.shape[1] < width or base.shape[0] < height:
            return cv2.resize(base, (width, height), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(base, (width, height), interpolation=cv2.INTER_AREA)
