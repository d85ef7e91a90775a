"""Accuracy figures: classifier accuracy, centroid F1 (FOMO: a hit is within one cell), box F1 at IoU 0.5.

Truth objects less than ``MIN_VISIBLE`` visible are "don't care": a detection on them is not a false
alarm, missing them is not a miss. Truth labels the model does not know are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model_runtime.detection import Detection
from synthetic_world import TruthObject

from .data import MIN_VISIBLE


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / max(2 * tp + fp + fn, 1)


def summarise(counts: dict[str, list[int]]) -> dict[str, object]:
    per_class = {
        k: {
            "tp": v[0],
            "fp": v[1],
            "fn": v[2],
            "f1": round(_f1(*v), 4),
            "precision": round(v[0] / max(v[0] + v[1], 1), 4),
            "recall": round(v[0] / max(v[0] + v[2], 1), 4),
        }
        for k, v in counts.items()
        if sum(v)
    }
    macro = float(np.mean([c["f1"] for c in per_class.values()])) if per_class else 0.0
    return {"value": round(macro, 4), "per_class": per_class}


def _match(
    dets: Sequence[Detection], truths: Sequence[TruthObject], labels: tuple[str, ...], close
) -> dict[str, list[int]]:
    counts = {name: [0, 0, 0] for name in labels}
    must = [t for t in truths if t.label in labels and t.visible >= MIN_VISIBLE]
    optional = [t for t in truths if t.label in labels and t.visible < MIN_VISIBLE]
    used_must: set[int] = set()
    used_opt: set[int] = set()
    for det in sorted(dets, key=lambda d: -d.score):
        name = det.label
        counts.setdefault(name, [0, 0, 0])
        hit = next(
            (i for i, t in enumerate(must) if i not in used_must and t.label == name and close(det, t)), None
        )
        if hit is not None:
            used_must.add(hit)
            counts[name][0] += 1
            continue
        opt = next(
            (i for i, t in enumerate(optional) if i not in used_opt and t.label == name and close(det, t)),
            None,
        )
        if opt is not None:
            used_opt.add(opt)
            continue
        counts[name][1] += 1
    for i, t in enumerate(must):
        if i not in used_must:
            counts[t.label][2] += 1
    return counts


def _add(total: dict[str, list[int]], part: dict[str, list[int]]) -> None:
    for k, v in part.items():
        total.setdefault(k, [0, 0, 0])
        for i in range(3):
            total[k][i] += v[i]


def centroid_f1(
    dets: Sequence[Sequence[Detection]],
    truths: Sequence[Sequence[TruthObject]],
    labels: tuple[str, ...],
    grid_hw: tuple[int, int],
    background: int | None = 0,
) -> dict[str, object]:
    gh, gw = grid_hw

    def close(det: Detection, t: TruthObject) -> bool:
        dx = int(det.centroid[0] * gw) - min(gw - 1, int(t.centroid[0] * gw))
        dy = int(det.centroid[1] * gh) - min(gh - 1, int(t.centroid[1] * gh))
        return abs(dx) <= 1 and abs(dy) <= 1

    total: dict[str, list[int]] = {}
    for d, t in zip(dets, truths, strict=True):
        _add(total, _match(d, t, labels, close))
    if background is not None:
        total.pop(labels[background], None)
    return summarise(total)


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_f1(
    dets: Sequence[Sequence[Detection]],
    truths: Sequence[Sequence[TruthObject]],
    labels: tuple[str, ...],
    min_iou: float = 0.5,
    background: int | None = None,
) -> dict[str, object]:
    def close(det: Detection, t: TruthObject) -> bool:
        return det.bbox is not None and iou(det.bbox, t.bbox) >= min_iou

    total: dict[str, list[int]] = {}
    for d, t in zip(dets, truths, strict=True):
        _add(total, _match(d, t, labels, close))
    if background is not None:
        total.pop(labels[background], None)
    return summarise(total)


def accuracy(predicted: np.ndarray, expected: np.ndarray) -> dict[str, object]:
    per_class = {int(k): round(float(np.mean(predicted[expected == k] == k)), 4) for k in np.unique(expected)}
    return {"value": round(float(np.mean(predicted == expected)), 4), "per_class": per_class}
