"""Motion gate in the manner of Frigate: the CNN is expensive, pixels changing are cheap to find.

Downscaled grayscale, blurred, compared with a running average; the difference is thresholded,
dilated, and its contours above a minimum area become motion boxes. Masked regions never count. A
change over most of the frame (lights switched on, camera auto-exposure) recalibrates the background
instead of reporting motion everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from edge_agent.config import MotionConfig
from model_runtime.imaging import Pyramid


@dataclass
class MotionResult:
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # normalised x1,y1,x2,y2
    ratio: float = 0.0  # share of (unmasked) pixels that changed
    calibrating: bool = False

    @property
    def moving(self) -> bool:
        return bool(self.boxes)


class MotionDetector:
    def __init__(self, config: MotionConfig):
        self.config = config
        self._avg: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._size: tuple[int, int] | None = None

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        # The area-pyramid level closest to frame_height: exact-2x steps are cheap (cheaper than picking
        # every other pixel with numpy), the model reuses the level when the CNN runs on this frame, and
        # the exact size does not matter for motion (boxes are normalised).
        small = Pyramid.of(image).nearest_height(self.config.frame_height)
        size = (small.shape[1], small.shape[0])
        if size != self._size:
            self._size, self._avg = size, None
            self._mask = self._build_mask(size)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(gray, (3, 3), 0)

    def _build_mask(self, size: tuple[int, int]) -> np.ndarray | None:
        if not self.config.mask:
            return None
        w, h = size
        mask = np.full((h, w), 255, dtype=np.uint8)
        for polygon in self.config.mask:
            pts = np.array([[x * w, y * h] for x, y in polygon], dtype=np.int32)
            cv2.fillPoly(mask, [pts], 0)
        return mask

    def detect(self, image: np.ndarray) -> MotionResult:
        gray = self._prepare(image)
        if self._avg is None:
            self._avg = gray.astype(np.float32)
            return MotionResult(calibrating=True)
        diff = cv2.absdiff(gray, cv2.convertScaleAbs(self._avg))
        _, changed = cv2.threshold(diff, self.config.threshold, 255, cv2.THRESH_BINARY)
        if self._mask is not None:
            changed = cv2.bitwise_and(changed, self._mask)
        if not cv2.countNonZero(changed):  # the usual case on a quiet camera: nothing else to do
            cv2.accumulateWeighted(gray, self._avg, self.config.alpha)
            return MotionResult()
        changed = cv2.dilate(changed, None, iterations=2)
        h, w = changed.shape
        usable = float(cv2.countNonZero(self._mask)) if self._mask is not None else float(h * w)
        ratio = cv2.countNonZero(changed) / max(usable, 1.0)
        if ratio > self.config.lightning_ratio:
            self._avg = gray.astype(np.float32)
            return MotionResult(ratio=ratio, calibrating=True)
        cv2.accumulateWeighted(gray, self._avg, self.config.alpha)
        min_area = self.config.contour_area * h * w
        contours, _ = cv2.findContours(changed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = []
        for contour in contours:
            if cv2.contourArea(contour) < min_area:
                continue
            x, y, bw, bh = cv2.boundingRect(contour)
            boxes.append((x / w, y / h, (x + bw) / w, (y + bh) / h))
        return MotionResult(boxes=boxes, ratio=float(ratio))
