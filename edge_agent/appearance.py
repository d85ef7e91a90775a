"""Colour appearance of a detection: what tells one person from another after an occlusion.

A tiny detector's boxes say where an object is, not who it is. When a track is lost behind a truck or a
crowd and a track of the same label appears nearby seconds later, position alone cannot say whether it is
the same object; its colours can (a red shirt stays red). A hue/saturation histogram of the pixels at the
detection's centre is cheap (~20 µs) and ignores brightness, so a shadow or the camera's gain does not
change it much.
"""

from __future__ import annotations

import cv2
import numpy as np

Box = tuple[float, float, float, float]
HUE_BINS, SAT_BINS = 12, 4
MIN_SIDE_PX = 6  # FOMO boxes can be one grid cell: sample at least this many pixels around the centre


def describe(image: np.ndarray, box: Box) -> np.ndarray | None:
    """Normalised H-S histogram of the BGR ``image`` inside ``box`` (0..1 coordinates); None if empty."""
    h, w = image.shape[:2]
    cx, cy = (box[0] + box[2]) / 2 * w, (box[1] + box[3]) / 2 * h
    half_w = max((box[2] - box[0]) * w, MIN_SIDE_PX) / 2
    half_h = max((box[3] - box[1]) * h, MIN_SIDE_PX) / 2
    x1, x2 = max(0, int(cx - half_w)), min(w, int(cx + half_w) + 1)
    y1, y2 = max(0, int(cy - half_h)), min(h, int(cy + half_h) + 1)
    if x2 <= x1 or y2 <= y1:
        return None
    hsv = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [HUE_BINS, SAT_BINS], [0, 180, 0, 256])
    total = float(hist.sum())
    return hist / total if total > 0 else None


def distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Bhattacharyya distance: 0 = same colours, 1 = nothing in common (or unknown)."""
    if a is None or b is None:
        return 1.0
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def blend(old: np.ndarray | None, new: np.ndarray | None, rate: float) -> np.ndarray | None:
    """Running average, so one frame half hidden behind another object does not replace the look."""
    if old is None or new is None:
        return new if old is None else old
    return (1.0 - rate) * old + rate * new
