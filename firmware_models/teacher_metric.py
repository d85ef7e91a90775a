"""Centroid F1 of a FOMO student against a teacher's boxes on real frames (no human truth there).

A teacher box scored ≥ ``SURE`` must be found; one scored below (the teacher itself is unsure) is
"don't care": finding it is not a hit, missing it is not a miss, and a detection on it is not a false
alarm. A detection hits a box of its label when its centre is within one output cell of the box centre
(``strict``), or — the default — within one cell *or* within the middle half of the box (a near person
is 60 cells wide; the teacher's box centre and the student's lit-cell centre of the same torso differ
by more than one cell without either being wrong). Greedy by detection score, one box per detection.
"""

from __future__ import annotations

from collections.abc import Sequence

from model_runtime.detection import Detection

from .metrics import summarise

SURE = 0.5
# (label, score, x1, y1, x2, y2) normalised, as ``label.Frame.boxes``
TeacherBox = tuple[str, float, float, float, float, float]


def _close(det: Detection, box: TeacherBox, grid: tuple[int, int], strict: bool) -> bool:
    gh, gw = grid
    _, _, x1, y1, x2, y2 = box
    cx, cy = det.centroid
    tx, ty = (x1 + x2) / 2, (y1 + y2) / 2
    if strict:
        dx = int(cx * gw) - min(gw - 1, int(tx * gw))
        dy = int(cy * gh) - min(gh - 1, int(ty * gh))
        return abs(dx) <= 1 and abs(dy) <= 1
    return abs(cx - tx) <= max(1.5 / gw, (x2 - x1) / 4) and abs(cy - ty) <= max(1.5 / gh, (y2 - y1) / 4)


def _first_match(
    pool: Sequence[TeacherBox], used: set[int], det: Detection, grid: tuple[int, int], strict: bool
) -> int | None:
    """The first box of ``pool`` not yet ``used`` that ``det`` hits (its label, close enough); it is
    marked used."""
    for i, box in enumerate(pool):
        if i not in used and box[0] == det.label and _close(det, box, grid, strict):
            used.add(i)
            return i
    return None


def teacher_f1(
    dets: Sequence[Sequence[Detection]],
    boxes: Sequence[Sequence[TeacherBox]],
    labels: Sequence[str],
    grid: tuple[int, int],
    strict: bool = False,
    sure: float = SURE,
) -> dict[str, object]:
    """Per-class and macro centroid F1 over frames (``labels``: the classes scored, background excluded)."""
    counts: dict[str, list[int]] = {name: [0, 0, 0] for name in labels}
    for frame_dets, frame_boxes in zip(dets, boxes, strict=True):
        must = [b for b in frame_boxes if b[0] in labels and b[1] >= sure]
        maybe = [b for b in frame_boxes if b[0] in labels and b[1] < sure]
        used_must: set[int] = set()
        used_maybe: set[int] = set()
        for det in sorted(frame_dets, key=lambda d: -d.score):
            if det.label not in labels:
                continue
            if _first_match(must, used_must, det, grid, strict) is not None:
                counts[det.label][0] += 1
            elif _first_match(maybe, used_maybe, det, grid, strict) is None:
                counts[det.label][1] += 1  # a "maybe" box found is neither a hit nor a false alarm
        for i, b in enumerate(must):
            if i not in used_must:
                counts[b[0]][2] += 1
    return summarise(counts)
