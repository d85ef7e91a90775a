"""Rules turn confirmed tracks into events: lifecycle, zones, loitering, lines, crowds, speed, red light.

Debouncing lives here: a track yields one ``start`` and one ``end``; a zone counts as entered only
after ``min_zone_frames`` consecutive observations inside (and exited after as many outside); a line
counts only when the object goes from one side beyond ``margin`` to the other side beyond ``margin``,
so jitter on the line is not a crossing; a track lost inside a zone (not at the frame border) exits only
if no new track of its label shows up inside within ``zone_handoff_s`` (that one is the same object
found again and continues its stay). Rule times are the frames' timestamps, so offline runs
(benchmarks) give the same events as live ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edge_agent.config import CameraConfig, LineConfig, ZoneConfig
from edge_agent.tracker import Track, TrackUpdate
from shared.payloads import EventKind, EventPhase


@dataclass
class RuleEvent:
    kind: EventKind
    phase: EventPhase
    track: Track
    ts: float
    zone: str | None = None
    line: str | None = None
    direction: str | None = None
    count: int | None = None
    value: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def zone_entry(zone: ZoneRule, track: Track, ts: float) -> RuleEvent:
    return RuleEvent(EventKind.ZONE, EventPhase.START, track, ts, zone=zone.config.name)


def zone_exit(zone: ZoneRule, track: Track, ts: float, since: float) -> RuleEvent:
    """The exit event: ``value`` is the dwell since ``since``, the time it entered."""
    return RuleEvent(
        EventKind.ZONE, EventPhase.END, track, ts, zone=zone.config.name, value=round(ts - since, 3)
    )


def anchor_point(track: Track, anchor: str) -> tuple[float, float]:
    cx, cy = track.center
    if anchor == "bottom":
        return cx, track.box[3]
    return cx, cy


def first_anchor(track: Track, anchor: str) -> tuple[float, float] | None:
    """The anchor where the track was first detected (before ``min_hits`` confirmed it)."""
    if track.first_box is None:
        return None
    x1, y1, x2, y2 = track.first_box
    return (x1 + x2) / 2, y2 if anchor == "bottom" else (y1 + y2) / 2


Observation = tuple[tuple[float, float], float, float]  # anchor point, signed zone distance, ts

PASS_SAMPLES = 16  # points tested along an unobserved path through a zone
# A new track first seen within this share of a look-alike's box size around that box (at least
# EMERGE_MIN, normalised x and y) stepped out of its group: see ``RuleEngine._emerged``.
EMERGE_GROW = 0.25
EMERGE_MIN = (0.015, 0.03)
TOGETHER_COS = 0.7  # ... and walking its way: directions within about 45 degrees


class ZoneRule:
    def __init__(self, config: ZoneConfig):
        self.config = config
        self.polygon = np.array(config.polygon, dtype=np.float32)
        self.inside: dict[int, float] = {}  # track id → entered at
        self.seen: set[int] = set()
        # track → (ts it crossed the edge, observations on the new side, one of them beyond margin?)
        self.pending: dict[int, tuple[float, int, bool]] = {}
        self.origin: dict[int, Observation] = {}  # track → its last observation before a pending change
        self.last: dict[int, Observation] = {}  # track → where it was last observed
        self.loitered: set[int] = set()
        self.crowd_since: float | None = None
        self.crowd_active = False
        self.crowd_lead: Track | None = None
        # Tracks that ended inside the zone away from the frame border: (track, entered at). Their exit
        # waits ``events.zone_handoff_s``; a new track of the same label first seen inside meanwhile is
        # the same object found again (after an occlusion or a detector miss) and takes over its stay.
        self.held: list[tuple[Track, float]] = []

    def contains(self, point: tuple[float, float]) -> bool:
        return self.distance(point) >= 0

    def distance(self, point: tuple[float, float]) -> float:
        """Signed distance to the boundary (normalised units): positive inside."""
        return float(cv2.pointPolygonTest(self.polygon, (float(point[0]), float(point[1])), True))

    def applies(self, track: Track) -> bool:
        return self.config.labels is None or track.label in self.config.labels


class LineRule:
    def __init__(self, config: LineConfig):
        self.config = config
        self.a = np.array(config.a, dtype=np.float64)
        self.b = np.array(config.b, dtype=np.float64)
        self.length = float(np.linalg.norm(self.b - self.a))
        self.side: dict[int, tuple[int, float, float, float]] = {}  # track → (side, dist, t, ts)
        self.pending: dict[int, tuple[float, float, int]] = {}  # track → (along, ts at crossing, frames)
        self.counts: dict[str, int] = {config.positive: 0, config.negative: 0}

    def measure(self, point: tuple[float, float]) -> tuple[float, float]:
        """Signed distance (positive = right of a→b on screen) and position along the segment (0..1)."""
        d = self.b - self.a
        p = np.asarray(point) - self.a
        signed = float(d[0] * p[1] - d[1] * p[0]) / self.length
        along = float(np.dot(p, d)) / (self.length**2)
        return signed, along

    def applies(self, track: Track) -> bool:
        return self.config.labels is None or track.label in self.config.labels


class RuleEngine:
    def __init__(self, camera: CameraConfig):
        self.camera = camera
        self.anchor = camera.events.anchor
        self.zones = [ZoneRule(z) for z in camera.zones]
        self.lines = {line.name: LineRule(line) for line in camera.lines}
        self.signals: dict[str, str] = {}
        self._last_update: dict[int, float] = {}
        self._line_times: dict[tuple[str, int], float] = {}  # (line, track) → crossing time

    def decision_near(self, start: tuple[float, float], end: tuple[float, float], radius: float) -> bool:
        """Could a track moving from ``start`` to ``end`` change a zone or line decision? True when either
        point is within ``radius`` of a zone edge or a line, or the path crosses one: there the next
        observations decide an event, so the pipeline must not skip inferences."""
        for zone in self.zones:
            d0, d1 = zone.distance(start), zone.distance(end)
            if min(abs(d0), abs(d1)) <= radius or (d0 >= 0) != (d1 >= 0):
                return True
        for line in self.lines.values():
            s0, a0 = line.measure(start)
            s1, a1 = line.measure(end)
            if max(a0, a1) < -0.05 or min(a0, a1) > 1.05:
                continue  # beside the segment
            if min(abs(s0), abs(s1)) <= radius or (s0 > 0) != (s1 > 0):
                return True
        return False

    def set_signal(self, name: str, state: str) -> None:
        self.signals[name] = state

    # ------------------------------------------------------------------------------------------ main
    def process(self, update: TrackUpdate, ts: float, tracked: bool) -> list[RuleEvent]:
        """``tracked`` is False on frames where the CNN did not run: only timers (loiter, crowd) advance."""
        events: list[RuleEvent] = []
        for track in update.started:
            events.append(RuleEvent(EventKind.OBJECT, EventPhase.START, track, ts))
            self._last_update[track.id] = ts
        if tracked:
            for track in update.active:
                events.extend(self._lines(track, ts))
        for zone in self.zones:
            events.extend(self._zone(zone, update, ts, tracked))
        for track in update.ended:
            events.extend(self._end(track, ts))
        for zone in self.zones:
            events.extend(self._release(zone, ts))
        interval = self.camera.events.update_interval_s
        if interval > 0:
            for track in update.active:
                if ts - self._last_update.get(track.id, ts) >= interval:
                    self._last_update[track.id] = ts
                    events.append(RuleEvent(EventKind.OBJECT, EventPhase.UPDATE, track, ts))
        return events

    def _end(self, track: Track, ts: float) -> list[RuleEvent]:
        # A track ends max_age inferences after the object was last seen (or last known hidden in a group
        # of its kind); what happened, happened then.
        ts = min(ts, track.last_known_ts)
        events = []
        for zone in self.zones:
            if track.id in zone.inside and not track.left_frame and self.camera.events.zone_handoff_s > 0:
                zone.held.append((track, zone.inside.pop(track.id)))
            elif track.id in zone.inside:
                events.append(zone_exit(zone, track, ts, zone.inside.pop(track.id)))
            zone.pending.pop(track.id, None)
            zone.origin.pop(track.id, None)
            zone.last.pop(track.id, None)
            zone.seen.discard(track.id)
            zone.loitered.discard(track.id)
        for line in self.lines.values():
            line.side.pop(track.id, None)
            pending = line.pending.pop(track.id, None)
            if pending is not None and track.left_frame:
                # It left the view on the new side before min_frames could confirm it: it crossed.
                side = 1 if line.measure(anchor_point(track, self.anchor))[0] > 0 else -1
                events.extend(self._crossed(line, track, side, pending[0], pending[1], ts))
        self._last_update.pop(track.id, None)
        for key in [k for k in self._line_times if k[1] == track.id]:
            del self._line_times[key]
        events.append(
            RuleEvent(
                EventKind.OBJECT, EventPhase.END, track, ts, value=round(track.last_ts - track.first_ts, 3)
            )
        )
        return events

    def flush(self) -> list[RuleEvent]:
        """Exits still held for a hand-off (source ended, shutdown)."""
        return [e for zone in self.zones for e in self._release(zone, float("inf"))]

    # ----------------------------------------------------------------------------------------- zones
    def _release(self, zone: ZoneRule, ts: float) -> list[RuleEvent]:
        """Exit events of held tracks nobody took over within ``zone_handoff_s`` (dated last seen)."""
        due = [(t, e) for t, e in zone.held if ts - t.last_ts > self.camera.events.zone_handoff_s]
        if not due:
            return []
        zone.held = [(t, e) for t, e in zone.held if ts - t.last_ts <= self.camera.events.zone_handoff_s]
        return [zone_exit(zone, track, track.last_ts, since) for track, since in due]

    def _take_over(self, zone: ZoneRule, track: Track) -> float | None:
        """Entry time of the held stay that ``track`` (first seen inside) continues, if any: the nearest
        held track of its label."""
        point = anchor_point(track, self.anchor)
        same = [(t, e) for t, e in zone.held if t.label == track.label]
        if not same:
            return None
        held = min(same, key=lambda h: math.dist(anchor_point(h[0], self.anchor), point))
        zone.held.remove(held)
        return held[1]

    def _emerged(
        self, zone: ZoneRule, track: Track, first: tuple[float, float] | None, by_id: dict[int, Track]
    ) -> float | None:
        """Entry time of the group ``track`` (first seen inside) stepped out of, if any.

        Two people who walk in side by side are one blob to a coarse detector, so one track; when they
        drift apart the second gets a track of its own in the middle of the zone. It was inside all along:
        it entered with the track of its label, moving its way, whose box it was first seen in (grown by
        ``EMERGE_GROW``). Not one of another class: the detector groups the cells of one class only."""
        if first is None:
            return None
        best: tuple[float, float] | None = None  # (distance, entered)
        for other_id, entered in zone.inside.items():
            other = by_id.get(other_id)
            if other is None or other.first_ts >= track.first_ts or other.label != track.label:
                continue
            (vx, vy), (ux, uy) = track.velocity, other.velocity
            if vx * ux + vy * uy < TOGETHER_COS * math.hypot(vx, vy) * math.hypot(ux, uy):
                continue  # not walking its way: passing by, not stepping out of its group
            x1, y1, x2, y2 = other.box
            gx = max((x2 - x1) * EMERGE_GROW, EMERGE_MIN[0])
            gy = max((y2 - y1) * EMERGE_GROW, EMERGE_MIN[1])
            if x1 - gx <= first[0] <= x2 + gx and y1 - gy <= first[1] <= y2 + gy:
                dist = math.dist(anchor_point(other, self.anchor), first)
                if best is None or dist < best[0]:
                    best = (dist, entered)
        return None if best is None else best[1]

    def _zone(self, zone: ZoneRule, update: TrackUpdate, ts: float, tracked: bool) -> list[RuleEvent]:
        events: list[RuleEvent] = []
        by_id = {t.id: t for t in update.active}
        if tracked:
            for track in update.active:
                if track.misses == 0 and zone.applies(track):
                    events.extend(self._zone_track(zone, track, ts, by_id))
        if zone.config.loiter_s is not None:
            for track_id, entered in zone.inside.items():
                if (
                    track_id not in zone.loitered
                    and ts - entered >= zone.config.loiter_s
                    and track_id in by_id
                ):
                    zone.loitered.add(track_id)
                    events.append(
                        RuleEvent(
                            EventKind.LOITER,
                            EventPhase.INSTANT,
                            by_id[track_id],
                            ts,
                            zone=zone.config.name,
                            value=round(ts - entered, 3),
                        )
                    )
        if zone.config.crowd_count is not None:
            events.extend(self._crowd(zone, by_id, ts))
        return events

    def _zone_track(
        self, zone: ZoneRule, track: Track, ts: float, by_id: dict[int, Track]
    ) -> list[RuleEvent]:
        """Hysteresis: a state change needs ``min_zone_frames`` observations on the other side, one of
        them beyond ``margin``; the event is dated when the anchor first crossed the boundary."""
        d = zone.distance(anchor_point(track, self.anchor))
        events: list[RuleEvent] = []
        if track.id not in zone.seen:
            # Newly confirmed: where it was first detected says whether it appeared inside (then it
            # entered when it appeared, or it is a lost one found again); from there on, hysteresis.
            zone.seen.add(track.id)
            first = first_anchor(track, self.anchor)
            if (zone.distance(first) if first is not None else d) >= 0:
                resumed = self._take_over(zone, track)
                if resumed is not None:
                    zone.inside[track.id] = resumed
                else:
                    entered = self._emerged(zone, track, first, by_id)
                    entered = track.first_ts if entered is None else entered
                    zone.inside[track.id] = entered
                    events.append(zone_entry(zone, track, entered))
        return events + self._zone_change(zone, track, anchor_point(track, self.anchor), d, ts)

    def _zone_change(
        self, zone: ZoneRule, track: Track, point: tuple[float, float], d: float, ts: float
    ) -> list[RuleEvent]:
        was_inside = track.id in zone.inside
        before = zone.last.get(track.id)
        zone.last[track.id] = (point, d, ts)
        if (d >= 0) == was_inside:
            undecided = zone.pending.pop(track.id, None)
            origin = zone.origin.pop(track.id, None)
            if not was_inside and before is not None and undecided is None:
                return self._passed_through(zone, track, before, (point, d, ts))
            if not was_inside and undecided is not None and undecided[2] and origin is not None:
                # Seen well inside once, then outside again (a car hidden as it crossed): it went through
                # if the path from where it was before the zone to here does.
                return self._passed_through(zone, track, origin, (point, d, ts))
            return []
        if track.id in zone.pending:
            since, frames, deep = zone.pending[track.id]
        else:
            # Dated when the anchor crossed the edge, interpolated between the last observation on the
            # old side and this one: after an occlusion or skipped inferences that gap can be seconds.
            since, frames, deep = ts, 0, False
            if before is not None:
                zone.origin[track.id] = before
            if before is not None and (before[1] >= 0) == was_inside:
                _, d0, t0 = before
                since = round(t0 + (ts - t0) * abs(d0) / max(abs(d0) + abs(d), 1e-9), 3)
        frames, deep = frames + 1, deep or abs(d) >= zone.config.margin
        zone.pending[track.id] = (since, frames, deep)
        if frames < self.camera.events.min_zone_frames or not deep:
            return []
        del zone.pending[track.id]
        zone.origin.pop(track.id, None)
        if not was_inside:
            zone.inside[track.id] = since
            return [zone_entry(zone, track, since)]
        zone.loitered.discard(track.id)
        return [zone_exit(zone, track, since, zone.inside.pop(track.id))]

    def _passed_through(
        self, zone: ZoneRule, track: Track, before: Observation, now: Observation
    ) -> list[RuleEvent]:
        """Seen outside, unseen for a while, seen outside again: did the path between go through the zone?
        A car hidden behind a truck while it crosses a zone still entered and left it (at least
        ``margin`` deep); both events are dated where the straight path crosses the edge."""
        (p0, d0, t0), (p1, d1, t1) = before, now
        if math.dist(p0, p1) < abs(d0) + abs(d1) + 2 * zone.config.margin:
            return []  # too short to reach ``margin`` inside from both ends
        fractions = [k / PASS_SAMPLES for k in range(PASS_SAMPLES + 1)]
        depth = [zone.distance((p0[0] + (p1[0] - p0[0]) * f, p0[1] + (p1[1] - p0[1]) * f)) for f in fractions]
        inside = [k for k, v in enumerate(depth) if v >= 0]
        if not inside or max(depth) < zone.config.margin:
            return []

        def crossing(k_out: int, k_in: int) -> float:
            f = fractions[k_out] + (fractions[k_in] - fractions[k_out]) * abs(depth[k_out]) / max(
                abs(depth[k_out]) + abs(depth[k_in]), 1e-9
            )
            return round(t0 + (t1 - t0) * f, 3)

        entered = crossing(inside[0] - 1, inside[0])
        return [
            zone_entry(zone, track, entered),
            zone_exit(zone, track, crossing(inside[-1] + 1, inside[-1]), entered),
        ]

    def _crowd(self, zone: ZoneRule, by_id: dict[int, Track], ts: float) -> list[RuleEvent]:
        present = [by_id[i] for i in zone.inside if i in by_id]
        count = len(present)
        assert zone.config.crowd_count is not None
        if count >= zone.config.crowd_count:
            zone.crowd_since = ts if zone.crowd_since is None else zone.crowd_since
            if not zone.crowd_active and ts - zone.crowd_since >= zone.config.crowd_for_s:
                zone.crowd_active = True
                zone.crowd_lead = max(present, key=lambda t: t.best_score)
                return [
                    RuleEvent(
                        EventKind.CROWD,
                        EventPhase.START,
                        zone.crowd_lead,
                        ts,
                        zone=zone.config.name,
                        count=count,
                    )
                ]
        else:
            zone.crowd_since = None
            if zone.crowd_active and zone.crowd_lead is not None:
                zone.crowd_active = False
                return [
                    RuleEvent(
                        EventKind.CROWD,
                        EventPhase.END,
                        zone.crowd_lead,
                        ts,
                        zone=zone.config.name,
                        count=count,
                    )
                ]
        return []

    # ----------------------------------------------------------------------------------------- lines
    def _lines(self, track: Track, ts: float) -> list[RuleEvent]:
        events: list[RuleEvent] = []
        point = anchor_point(track, self.anchor)
        for line in self.lines.values():
            if not line.applies(track):
                continue
            signed, along = line.measure(point)
            if abs(signed) <= line.config.margin:
                continue
            side = 1 if signed > 0 else -1
            if track.id not in line.side:
                # Newly confirmed: the side it came from is where it was first detected, so a line
                # crossed while min_hits were being gathered still counts.
                first = first_anchor(track, self.anchor)
                if first is not None:
                    first_signed, first_along = line.measure(first)
                    if abs(first_signed) > line.config.margin:
                        first_side = 1 if first_signed > 0 else -1
                        line.side[track.id] = (first_side, first_signed, first_along, track.first_ts)
            previous = line.side.get(track.id)
            if previous is None or previous[0] == side:
                line.side[track.id] = (side, signed, along, ts)
                line.pending.pop(track.id, None)
                continue
            # On the other side: remember where/when it crossed; count once it stayed there min_frames.
            if track.id not in line.pending:
                _, prev_signed, prev_along, prev_ts = previous
                frac = abs(prev_signed) / (abs(prev_signed) + abs(signed))
                line.pending[track.id] = (
                    prev_along + (along - prev_along) * frac,
                    prev_ts + (ts - prev_ts) * frac,
                    0,
                )
            cross_along, cross_ts, frames = line.pending[track.id]
            frames += 1
            line.pending[track.id] = (cross_along, cross_ts, frames)
            if frames < line.config.min_frames:
                continue
            del line.pending[track.id]
            line.side[track.id] = (side, signed, along, ts)
            events.extend(self._crossed(line, track, side, cross_along, cross_ts, ts))
        return events

    def has_pending(self, track: Track) -> bool:
        """A line crossing or zone change of this track waits for more observations to be decided."""
        return any(track.id in line.pending for line in self.lines.values()) or any(
            track.id in zone.pending for zone in self.zones
        )

    def _crossed(
        self, line: LineRule, track: Track, side: int, cross_along: float, cross_ts: float, ts: float
    ) -> list[RuleEvent]:
        """Count a confirmed crossing onto ``side`` (dated when it crossed, not when that was decided)."""
        if not -0.02 <= cross_along <= 1.02:
            return []  # passed beside the segment, not through it
        direction = line.config.positive if side > 0 else line.config.negative
        line.counts[direction] += 1
        events = [
            RuleEvent(
                EventKind.LINE,
                EventPhase.INSTANT,
                track,
                round(cross_ts, 3),
                line=line.config.name,
                direction=direction,
                count=line.counts[direction],
            )
        ]
        self._line_times[(line.config.name, track.id)] = cross_ts
        events.extend(self._speed(line.config.name, track, ts))
        events.extend(self._red_light(line.config.name, direction, track, ts))
        return events

    def _speed(self, line_name: str, track: Track, ts: float) -> list[RuleEvent]:
        events = []
        for rule in self.camera.speed:
            if line_name not in rule.lines:
                continue
            other = rule.lines[1] if line_name == rule.lines[0] else rule.lines[0]
            t_other = self._line_times.get((other, track.id))
            t_this = self._line_times[(line_name, track.id)]
            if t_other is None or t_this == t_other:
                continue
            speed = rule.distance_m / abs(t_this - t_other)
            attributes: dict[str, Any] = {"rule": rule.name}
            if rule.limit_mps is not None:
                attributes.update(limit_mps=rule.limit_mps, speeding=speed > rule.limit_mps)
            events.append(
                RuleEvent(
                    EventKind.SPEED,
                    EventPhase.INSTANT,
                    track,
                    ts,
                    line=line_name,
                    value=round(speed, 3),
                    attributes=attributes,
                )
            )
            self._line_times.pop((other, track.id), None)  # one measurement per pass
        return events

    def _red_light(self, line_name: str, direction: str, track: Track, ts: float) -> list[RuleEvent]:
        events = []
        for rule in self.camera.red_light:
            if rule.line != line_name or (rule.direction and rule.direction != direction):
                continue
            if self.signals.get(rule.signal) == "red":
                events.append(
                    RuleEvent(
                        EventKind.RED_LIGHT,
                        EventPhase.INSTANT,
                        track,
                        ts,
                        line=line_name,
                        direction=direction,
                        attributes={"rule": rule.name, "signal": rule.signal},
                    )
                )
        return events
