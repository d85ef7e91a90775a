"""Ground-truth line crossings and zone transitions from per-frame centroids.

Line direction convention (the same one the edge agent's rules use): for a line from P1 to P2, a point
C is on side **A** when ``cross(P2 - P1, C - P1) > 0`` in normalised image coordinates (x right, y down),
otherwise on side **B**. For a vertical line drawn top→bottom, ((0.5, 0), (0.5, 1)), side A is the
*left* half of the image, so an object moving left→right crosses "A->B". For a horizontal line drawn
left→right, side A is *below* the line. A crossing counts when the segment between the centroids of two
consecutive frames intersects the line segment.

``margin`` > 0 adds hysteresis, the debouncing a line counter or zone rule defines (the agent's
``lines[].margin`` / ``zones[].margin``): a side or inside/outside state changes only once the centroid is
``margin`` (normalised units) past the boundary, and the event is dated when it last crossed it. A person
walking along a line, or a car whose centroid rides a zone edge, then changes nothing; with ``margin=0``
every raw crossing counts.
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


def zone_distance(polygon: list[Point], c: Point) -> float:
    """Signed distance to the polygon's edge: positive inside."""
    return cv2.pointPolygonTest(np.asarray(polygon, np.float32), (float(c[0]), float(c[1])), True)


def line_distance(p1: Point, p2: Point, c: Point) -> float:
    """Distance from the (infinite) line through p1 and p2."""
    return abs(side(p1, p2, c)) / max(float(np.hypot(p2[0] - p1[0], p2[1] - p1[1])), 1e-12)


def truth_events(
    frames: Iterable[tuple[float, list[TruthObject]]],
    lines: dict[str, tuple[Point, Point]],
    zones: dict[str, list[Point]],
    margin: float = 0.0,
) -> list[TruthEvent]:
    last: dict[int, TruthObject] = {}
    in_zone: dict[tuple[int, str], bool] = {}
    crossed: dict[tuple[int, str], tuple[str, float]] = {}  # (track, line) → (direction, t): not settled yet
    zone_change: dict[tuple[int, str], float] = {}  # (track, zone) → t it last crossed the edge: not settled
    events: list[TruthEvent] = []
    for t, objects in frames:
        seen = set()
        for obj in objects:
            seen.add(obj.track_id)
            prev = last.get(obj.track_id)
            for name, (p1, p2) in lines.items():
                key = (obj.track_id, name)
                if prev is not None and segments_cross(prev.centroid, obj.centroid, p1, p2):
                    direction = "A->B" if side(p1, p2, prev.centroid) > 0 else "B->A"
                    if key in crossed and crossed[key][0] != direction:
                        del crossed[key]  # back across before settling: no crossing
                    else:
                        crossed[key] = (direction, t)
                if key in crossed and line_distance(p1, p2, obj.centroid) > margin:
                    direction, when = crossed.pop(key)
                    events.append(TruthEvent("line", obj.track_id, obj.label, name, direction, when))
            for name, poly in zones.items():
                key = (obj.track_id, name)
                now = inside(poly, obj.centroid)
                if key not in in_zone:
                    in_zone[key] = False
                    if now:  # appeared inside: entered when it appeared
                        in_zone[key] = True
                        events.append(TruthEvent("zone_enter", obj.track_id, obj.label, name, None, t))
                    continue
                was = in_zone[key]
                if now == was:
                    zone_change.pop(key, None)
                    continue
                when = zone_change.setdefault(key, t)
                if abs(zone_distance(poly, obj.centroid)) >= margin:
                    del zone_change[key]
                    in_zone[key] = now
                    kind = "zone_enter" if now else "zone_exit"
                    events.append(TruthEvent(kind, obj.track_id, obj.label, name, None, when))
            last[obj.track_id] = obj
        for track_id in list(last):
            if track_id not in seen:  # left the frame: close any zone it was in
                obj = last.pop(track_id)
                for key in [k for k in crossed if k[0] == track_id]:
                    del crossed[key]
                for name in zones:
                    zone_change.pop((track_id, name), None)
                    if in_zone.pop((track_id, name), False):
                        events.append(TruthEvent("zone_exit", track_id, obj.label, name, None, t))
    return events
