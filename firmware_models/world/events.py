"""Ground-truth line crossings and zone transitions from per-frame centroids.

Line direction convention (the same one the edge agent's rules use): for a line from P1 to P2, a point
C is on side **A** when ``cross(P2 - P1, C - P1) > 0`` in normalised image coordinates (x right, y down),
otherwise on side **B**. For a vertical line drawn top→bottom, ((0.5, 0), (0.5, 1)), side A is the
*left* half of the image, so an object moving left→right crosses "A->B". For a horizontal line drawn
left→right, side A is *below* the line. A crossing counts when the segment between the centroids of two
consecutive frames intersects the line segment.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from .types import Point, TruthEvent, TruthObject


def side(p1: Point, p2: Point, c: Point) -> float:
    return (p2[0] - p1[0]) * (c[1] - p1[1]) - (p2[1] - p1[1]) * (c[0] - p1[0])


def segments_cross(a: Point, b: Point, p1: Point, p2: Point) -> bool:
    d1, d2 = side(p1, p2, a), side(p1, p2, b)
    d3, d4 = side(a, b, p1), side(a, b, p2)
    return (d1 > 0) != (d2 > 0) and (d3 > 0) != (d4 > 0)


def inside(polygon: list[Point], c: Point) -> bool:
    return cv2.pointPolygonTest(np.asarray(polygon, np.float32), (float(c[0]), float(c[1])), False) >= 0


def truth_events(
    frames: Iterable[tuple[float, list[TruthObject]]],
    lines: dict[str, tuple[Point, Point]],
    zones: dict[str, list[Point]],
) -> list[TruthEvent]:
    last: dict[int, TruthObject] = {}
    in_zone: dict[tuple[int, str], bool] = {}
    events: list[TruthEvent] = []
    for t, objects in frames:
        seen = set()
        for obj in objects:
            seen.add(obj.track_id)
            prev = last.get(obj.track_id)
            if prev is not None:
                for name, (p1, p2) in lines.items():
                    if segments_cross(prev.centroid, obj.centroid, p1, p2):
                        direction = "A->B" if side(p1, p2, prev.centroid) > 0 else "B->A"
                        events.append(TruthEvent("line", obj.track_id, obj.label, name, direction, t))
            for name, poly in zones.items():
                now = inside(poly, obj.centroid)
                was = in_zone.get((obj.track_id, name), False)
                if now != was:
                    kind = "zone_enter" if now else "zone_exit"
                    events.append(TruthEvent(kind, obj.track_id, obj.label, name, None, t))
                in_zone[(obj.track_id, name)] = now
            last[obj.track_id] = obj
        for track_id in list(last):
            if track_id not in seen:  # left the frame: close any zone it was in
                obj = last.pop(track_id)
                for name in zones:
                    if in_zone.pop((track_id, name), False):
                        events.append(TruthEvent("zone_exit", track_id, obj.label, name, None, t))
    return events
