"""Shadow agreement: how well a candidate's detections match the active model's on the same frames.

Agreement is the F1 of the candidate against the active model taken as reference (same label, IoU at
least ``match_iou``, greedy by IoU), summed over every sampled frame. Both latencies are reported too,
so the hub can promote only a candidate that agrees *and* keeps up.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np


class HasBox(Protocol):
    label: str
    box: tuple[float, float, float, float]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_counts(
    active: Sequence[HasBox], candidate: Sequence[HasBox], min_iou: float
) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of ``candidate`` against ``active``."""
    pairs = sorted(
        (
            (iou(a.box, c.box), i, j)
            for i, a in enumerate(active)
            for j, c in enumerate(candidate)
            if a.label == c.label
        ),
        reverse=True,
    )
    used_a: set[int] = set()
    used_c: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < min_iou:
            break
        if i not in used_a and j not in used_c:
            used_a.add(i)
            used_c.add(j)
    tp = len(used_a)
    return tp, len(candidate) - tp, len(active) - tp


class ShadowStats:
    def __init__(self, match_iou: float):
        self.match_iou = match_iou
        self.frames = 0
        self.tp = self.fp = self.fn = 0
        self.active_ms: list[float] = []
        self.candidate_ms: list[float] = []
        self.candidate_errors = 0
        self._lock = threading.Lock()

    def observe(
        self,
        active: Sequence[HasBox],
        candidate: Sequence[HasBox] | None,
        active_ms: float,
        candidate_ms: float,
    ) -> None:
        with self._lock:
            self.frames += 1
            self.active_ms.append(active_ms)
            if candidate is None:  # the candidate raised on this frame
                self.candidate_errors += 1
                self.fn += len(active)
                return
            self.candidate_ms.append(candidate_ms)
            tp, fp, fn = match_counts(active, candidate, self.match_iou)
            self.tp += tp
            self.fp += fp
            self.fn += fn

    def summary(self) -> dict[str, float]:
        with self._lock:
            denominator = 2 * self.tp + self.fp + self.fn
            f1 = 1.0 if denominator == 0 else 2 * self.tp / denominator
            return {
                "frames": float(self.frames),
                "agreement": round(f1, 4),
                "precision": round(self.tp / (self.tp + self.fp), 4) if self.tp + self.fp else 1.0,
                "recall": round(self.tp / (self.tp + self.fn), 4) if self.tp + self.fn else 1.0,
                "active_ms_p50": round(float(np.median(self.active_ms)), 3) if self.active_ms else 0.0,
                "candidate_ms_p50": round(float(np.median(self.candidate_ms)), 3)
                if self.candidate_ms
                else 0.0,
                "candidate_errors": float(self.candidate_errors),
            }
