"""Tracker and rules as pure logic: scripted detections in, debounced events out."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.config import CameraConfig, TrackerConfig
from edge_agent.rules import RuleEngine
from edge_agent.tracker import Tracker
from model_runtime import Detection
from shared.payloads import EventKind, EventPhase

pytestmark = pytest.mark.arm64  # also runs on aarch64: make test-arm


def camera(**rules) -> CameraConfig:
    return CameraConfig.model_validate(
        {"name": "c", "source": "synthetic:street", "model": {"path": "m"}, **rules}
    )


def box_at(cx: float, cy: float, half: float = 0.04) -> tuple[float, float, float, float]:
    return (cx - half, cy - half, cx + half, cy + half)


def run(cam: CameraConfig, paths: list[list[tuple[float, float] | None]], fps: float = 10.0, signals=None):
    """paths[i] = per-frame centre of object i (None = not detected that frame). Returns all events."""
    tracker, rules = Tracker(cam.tracker), RuleEngine(cam)
    for name, state in (signals or {}).items():
        rules.set_signal(name, state)
    events = []
    frames = max(len(p) for p in paths)
    for f in range(frames):
        dets = [Detection("person", 0.9, box_at(*p[f])) for p in paths if f < len(p) and p[f] is not None]
        ts = f / fps
        update = tracker.update(dets, ts)
        events += rules.process(update, ts, tracked=True)
    update = tracker.update([], frames / fps)
    events += rules.process(update, frames / fps, tracked=True)
    for _ in range(cam.tracker.max_age + 1):
        frames += 1
        events += rules.process(tracker.update([], frames / fps), frames / fps, tracked=True)
    return events + rules.flush()  # the source ended: what waits for a hand-off goes out


def walk(x0, y0, x1, y1, n):
    return [(x0 + (x1 - x0) * i / (n - 1), y0 + (y1 - y0) * i / (n - 1)) for i in range(n)]


def kinds(events):
    return [(e.kind, e.phase) for e in events]


def test_one_object_is_one_start_and_one_end_despite_missed_detections():
    path = walk(0.1, 0.5, 0.9, 0.5, 40)
    for i in (10, 11, 25):  # a detector that misses a few frames
        path[i] = None
    events = run(camera(), [path])
    assert kinds(events) == [(EventKind.OBJECT, EventPhase.START), (EventKind.OBJECT, EventPhase.END)]


def test_single_frame_false_positive_gives_no_event():
    assert run(camera(), [[None] * 5 + [(0.5, 0.5)] + [None] * 5]) == []


def test_two_crossing_objects_keep_their_identities():
    a, b = walk(0.1, 0.4, 0.9, 0.6, 30), walk(0.9, 0.4, 0.1, 0.6, 30)
    lines = [{"name": "mid", "a": [0.5, 0.0], "b": [0.5, 1.0], "positive": "B->A", "negative": "A->B"}]
    events = run(camera(lines=lines), [a, b])
    crossings = [(e.track.id, e.direction) for e in events if e.kind is EventKind.LINE]
    assert sorted(d for _, d in crossings) == ["A->B", "B->A"]
    assert len({t for t, _ in crossings}) == 2
    assert kinds(events).count((EventKind.OBJECT, EventPhase.START)) == 2


def test_line_crossing_counts_per_direction_and_ignores_jitter_on_the_line():
    lines = [{"name": "mid", "a": [0.5, 0.0], "b": [0.5, 1.0], "positive": "left", "negative": "right"}]
    jitter = [(0.5 + 0.005 * (-1) ** i, 0.5) for i in range(20)]  # dithering on the line itself
    path = walk(0.2, 0.5, 0.5, 0.5, 10) + jitter + walk(0.5, 0.5, 0.8, 0.5, 10) + walk(0.8, 0.5, 0.2, 0.5, 15)
    events = [e for e in run(camera(lines=lines), [path]) if e.kind is EventKind.LINE]
    assert [(e.direction, e.count) for e in events] == [("right", 1), ("left", 1)]


def test_passing_beside_a_short_segment_is_not_a_crossing():
    lines = [{"name": "short", "a": [0.5, 0.0], "b": [0.5, 0.3]}]
    events = run(camera(lines=lines), [walk(0.1, 0.7, 0.9, 0.7, 30)])
    assert not [e for e in events if e.kind is EventKind.LINE]


def test_zone_enter_exit_and_loiter_once():
    zones = [{"name": "z", "polygon": [[0.4, 0.0], [0.6, 0.0], [0.6, 1.0], [0.4, 1.0]], "loiter_s": 2.0}]
    path = walk(0.1, 0.5, 0.5, 0.5, 10) + [(0.5, 0.5)] * 40 + walk(0.5, 0.5, 0.9, 0.5, 10)
    events = run(camera(zones=zones), [path])
    zone_events = [(e.kind, e.phase) for e in events if e.zone == "z"]
    assert zone_events == [
        (EventKind.ZONE, EventPhase.START),
        (EventKind.LOITER, EventPhase.INSTANT),
        (EventKind.ZONE, EventPhase.END),
    ]
    loiter = next(e for e in events if e.kind is EventKind.LOITER)
    assert loiter.value >= 2.0


def test_crowd_starts_after_dwell_and_ends_when_people_leave():
    zones = [
        {
            "name": "square",
            "polygon": [[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]],
            "crowd_count": 3,
            "crowd_for_s": 1.0,
        }
    ]
    paths = [[(0.3 + 0.15 * k, 0.5)] * 30 + [None] * 20 for k in range(3)]
    events = [e for e in run(camera(zones=zones), paths) if e.kind is EventKind.CROWD]
    assert [(e.phase, e.count) for e in events] == [(EventPhase.START, 3), (EventPhase.END, 0)]


def test_speed_between_two_calibrated_lines_and_speeding_flag():
    lines = [
        {"name": "l1", "a": [0.3, 0.0], "b": [0.3, 1.0]},
        {"name": "l2", "a": [0.7, 0.0], "b": [0.7, 1.0]},
    ]
    speed = [{"name": "s", "lines": ["l1", "l2"], "distance_m": 10.0, "limit_mps": 8.0}]
    # 0.02 of the frame per frame at 10 fps: 0.4 of the frame (10 m) takes 2 s → 5 m/s.
    slow = walk(0.1, 0.5, 0.9, 0.5, 41)
    fast = walk(0.1, 0.5, 0.9, 0.5, 11)  # 0.08 per frame → 20 m/s
    cam = camera(lines=lines, speed=speed)
    (s_slow,) = [e for e in run(cam, [slow]) if e.kind is EventKind.SPEED]
    (s_fast,) = [e for e in run(cam, [fast]) if e.kind is EventKind.SPEED]
    assert np.isclose(s_slow.value, 5.0, rtol=0.05) and s_slow.attributes["speeding"] is False
    assert np.isclose(s_fast.value, 20.0, rtol=0.05) and s_fast.attributes["speeding"] is True


def test_red_light_only_while_the_signal_is_red():
    lines = [{"name": "stop", "a": [0.5, 0.0], "b": [0.5, 1.0]}]
    red = [{"name": "rl", "line": "stop", "signal": "light"}]
    path = walk(0.1, 0.5, 0.9, 0.5, 20)
    cam = camera(lines=lines, red_light=red)
    assert [e.kind for e in run(cam, [path], signals={"light": "red"})].count(EventKind.RED_LIGHT) == 1
    assert [e.kind for e in run(cam, [path], signals={"light": "green"})].count(EventKind.RED_LIGHT) == 0


def test_tracker_min_hits_and_max_age():
    tracker = Tracker(TrackerConfig(min_hits=3, max_age=2))
    det = [Detection("car", 0.8, box_at(0.5, 0.5))]
    assert [len(tracker.update(det, t / 10).started) for t in range(4)] == [0, 0, 1, 0]
    ended = [len(tracker.update([], (4 + t) / 10).ended) for t in range(4)]
    assert ended == [0, 0, 1, 0]


def test_a_settled_track_never_takes_a_label_it_never_had():
    """A truck leaving at the frame edge, missed there, must not follow the person walking in beside it."""
    tracker = Tracker(TrackerConfig(min_hits=2, label_lock=20))
    for t in range(20):
        tracker.update([Detection("truck", 0.9, box_at(0.3 - 0.01 * t, 0.45))], t / 5)
    (truck,) = tracker.tracks
    person = [Detection("person", 0.9, box_at(0.1, 0.4))]
    tracker.update(person, 20 / 5)
    assert truck.misses == 1 and len(tracker.tracks) == 2  # the person is a new track
    # A young track still follows a flickering label (a cyclist seen as person, then bicycle).
    young = Tracker(TrackerConfig(min_hits=2, label_lock=20))
    for t, label in enumerate(["person", "person", "bicycle", "person"]):
        young.update([Detection(label, 0.9, box_at(0.5 + 0.01 * t, 0.5))], t / 5)
    assert len(young.tracks) == 1 and young.tracks[0].hits == 4
    # With the lock off, a settled track may switch, at a price (the old behaviour).
    unlocked = Tracker(TrackerConfig(min_hits=2, label_lock=0))
    for t in range(20):
        unlocked.update([Detection("truck", 0.9, box_at(0.3 - 0.01 * t, 0.45))], t / 5)
    unlocked.update(person, 20 / 5)
    assert len(unlocked.tracks) == 1 and unlocked.tracks[0].labels["person"] == 1


MID = [{"name": "mid", "a": [0.5, 0.0], "b": [0.5, 1.0], "positive": "B->A", "negative": "A->B"}]
BOX = [{"name": "z", "polygon": [[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]]}]


def test_an_object_leaving_at_the_border_ends_at_once_and_the_next_one_there_is_new():
    out = walk(0.8, 0.5, 0.99, 0.5, 6)  # walks out on the right
    back = [None] * 9 + walk(0.99, 0.52, 0.8, 0.52, 8)  # 0.3 s later someone walks in there
    events = run(camera(), [out, back])
    starts = [e for e in events if (e.kind, e.phase) == (EventKind.OBJECT, EventPhase.START)]
    ends = [e for e in events if (e.kind, e.phase) == (EventKind.OBJECT, EventPhase.END)]
    assert len({e.track.id for e in starts}) == 2
    assert ends[0].track.id == starts[0].track.id and ends[0].ts == 0.5  # ended when last seen


def test_an_object_lost_inside_a_zone_and_found_again_stays_inside():
    path = walk(0.1, 0.5, 0.4, 0.5, 10) + [None] * 12 + walk(0.42, 0.5, 0.9, 0.5, 15)  # hidden 1.2 s
    zone = [(e.phase, round(e.ts, 1)) for e in run(camera(zones=BOX), [path]) if e.kind is EventKind.ZONE]
    # Dated where the walk crosses the edges (x = 0.2 at 0.3 s, x = 0.8 at 3.31 s), interpolated between
    # the observations either side.
    assert zone == [(EventPhase.START, 0.3), (EventPhase.END, 3.3)]
    no_handoff = camera(zones=BOX, events={"zone_handoff_s": 0})
    phases = [e.phase for e in run(no_handoff, [path]) if e.kind is EventKind.ZONE]
    assert phases == [EventPhase.START, EventPhase.END, EventPhase.START, EventPhase.END]


def test_a_line_crossed_while_the_track_was_being_confirmed_counts():
    events = run(camera(lines=MID), [walk(0.45, 0.5, 0.75, 0.5, 8)])  # confirmed (3rd hit) past the line
    assert [(e.direction, round(e.ts, 2)) for e in events if e.kind is EventKind.LINE] == [("A->B", 0.12)]


def test_a_line_crossed_just_before_leaving_the_frame_counts():
    lines = [{"name": "edge", "a": [0.9, 0.0], "b": [0.9, 1.0], "positive": "B->A", "negative": "A->B"}]
    events = run(camera(lines=lines), [walk(0.7, 0.5, 0.95, 0.5, 5)])  # one frame past it, then gone
    assert [e.direction for e in events if e.kind is EventKind.LINE] == ["A->B"]


def test_a_zone_entered_while_hidden_is_dated_when_the_path_crossed_its_edge():
    # Seen outside until x = 0.16 (0.6 s), hidden 4 inferences, seen again inside from x = 0.3 (1.1 s):
    # the path crossed x = 0.2 around 0.74 s, not when it was next seen.
    path = walk(0.1, 0.5, 0.16, 0.5, 7) + [None] * 4 + walk(0.3, 0.5, 0.5, 0.5, 10)
    zone = [(e.phase, e.ts) for e in run(camera(zones=BOX), [path]) if e.kind is EventKind.ZONE]
    assert zone[0][0] is EventPhase.START and 0.6 < zone[0][1] < 0.95


def test_a_zone_crossed_while_hidden_is_entered_and_left():
    # Seen left of a narrow zone until 0.9 s (x = 0.4), hidden while it crosses x = 0.45..0.55, seen
    # again right of it from 1.5 s (x = 0.6): it went through, entering ~1.05 s and leaving ~1.35 s.
    narrow = [{"name": "strip", "polygon": [[0.45, 0.2], [0.55, 0.2], [0.55, 0.8], [0.45, 0.8]]}]
    step = 0.3 / 9
    path = walk(0.1, 0.5, 0.4, 0.5, 10) + [None] * 5 + walk(0.6, 0.5, 0.6 + 9 * step, 0.5, 10)
    zone = [(e.phase, e.ts) for e in run(camera(zones=narrow), [path]) if e.kind is EventKind.ZONE]
    assert [phase for phase, _ in zone] == [EventPhase.START, EventPhase.END]
    assert abs(zone[0][1] - 1.05) <= 0.15 and abs(zone[1][1] - 1.35) <= 0.15
    # Passing beside it (below the strip) is no visit.
    beside = walk(0.1, 0.9, 0.4, 0.9, 10) + [None] * 5 + walk(0.6, 0.9, 0.9, 0.9, 10)
    assert not [e for e in run(camera(zones=narrow), [beside]) if e.kind is EventKind.ZONE]


def test_a_zone_crossed_while_seen_inside_only_once_is_entered_and_left():
    # As above, but detected once in the middle of the strip (x = 0.5 at 1.2 s): one observation cannot
    # confirm the entry (min_zone_frames 2), and it must not hide the visit either.
    narrow = [{"name": "strip", "polygon": [[0.45, 0.2], [0.55, 0.2], [0.55, 0.8], [0.45, 0.8]]}]
    step = 0.3 / 9
    once = [None, None, (0.5, 0.5), None, None]
    path = walk(0.1, 0.5, 0.4, 0.5, 10) + once + walk(0.6, 0.5, 0.6 + 9 * step, 0.5, 10)
    zone = [(e.phase, e.ts) for e in run(camera(zones=narrow), [path]) if e.kind is EventKind.ZONE]
    assert [phase for phase, _ in zone] == [EventPhase.START, EventPhase.END]
    assert abs(zone[0][1] - 1.05) <= 0.15 and abs(zone[1][1] - 1.35) <= 0.15
    # Seen inside once and back out on the side it came from: no visit.
    back = walk(0.1, 0.5, 0.4, 0.5, 10) + [None, (0.5, 0.5), None] + walk(0.4, 0.5, 0.1, 0.5, 10)
    assert not [e for e in run(camera(zones=narrow), [back]) if e.kind is EventKind.ZONE]


RIGHT = [{"name": "right", "polygon": [[0.5, 0.2], [1.0, 0.2], [1.0, 0.8], [0.5, 0.8]]}]


def zone_events(events):
    return [(e.track.id, e.phase, round(e.ts, 2)) for e in events if e.kind is EventKind.ZONE]


def test_one_of_two_walking_in_together_who_steps_out_of_the_group_entered_with_it():
    # Two people walk in side by side as one blob (one detection, entering the zone at 0.65 s); from
    # 1.5 s the second walks a little faster and is detected on its own, just ahead of the first.
    group = walk(0.1, 0.5, 0.7, 0.5, 40)
    second = [None] * 15 + [(x + 0.03 + 0.004 * i, y) for i, (x, y) in enumerate(group[15:])]
    entries = [z for z in zone_events(run(camera(zones=BOX), [group, second])) if z[1] is EventPhase.START]
    assert [ts for _, _, ts in entries] == [0.65, 0.65]  # not 1.5 s, when it was first seen
    # Someone who appears there walking the other way was not in that group: entered when first seen.
    other = [None] * 15 + walk(group[15][0] + 0.03, 0.5, 0.25, 0.5, 20)
    entries = [z for z in zone_events(run(camera(zones=BOX), [group, other])) if z[1] is EventPhase.START]
    assert [ts for _, _, ts in entries] == [0.65, 1.5]


def test_a_track_that_turns_round_at_the_border_left_and_the_one_coming_back_is_new():
    # One walks out on the right and, as it reaches the border (1.1 s), meets someone walking in: one
    # blob, whose centre stalls there and then moves back in. The leaving track must not walk back in
    # with the newcomer (a track that did would leave the zone only at 2.9 s, and nobody would enter).
    out = walk(0.6, 0.5, 0.97, 0.5, 12)
    stall = [(0.975, 0.5), (0.978, 0.5), (0.978, 0.5), (0.975, 0.5), (0.97, 0.5), (0.962, 0.5)]
    events = run(camera(zones=RIGHT), [out + stall + walk(0.95, 0.5, 0.7, 0.5, 12)])
    starts = [e for e in events if (e.kind, e.phase) == (EventKind.OBJECT, EventPhase.START)]
    assert len(starts) == 2
    first, second = (e.track.id for e in starts)
    zone = zone_events(events)
    left = [ts for tid, phase, ts in zone if tid == first and phase is EventPhase.END]
    came = [ts for tid, phase, ts in zone if tid == second and phase is EventPhase.START]
    assert len(left) == 1 and 1.1 <= left[0] <= 1.9  # last at the border going out
    assert len(came) == 1 and came[0] <= 1.9  # in the blob since then, not from its confirmation
    # One that walks in there, steps back out to the border and walks in again is still one object:
    # it never walked out (``TURN_TRAVEL``).
    dither = walk(0.95, 0.5, 0.92, 0.5, 4) + walk(0.93, 0.5, 0.975, 0.5, 5) + walk(0.96, 0.5, 0.6, 0.5, 14)
    events = run(camera(zones=RIGHT), [dither])
    assert sum(1 for e in events if (e.kind, e.phase) == (EventKind.OBJECT, EventPhase.START)) == 1


def test_one_hidden_in_a_group_that_leaves_the_frame_left_with_it():
    # Two walk out on the right side by side; the second is detected alone until 1.5 s (x = 0.62),
    # then only as part of the first's blob until both leave the frame around 3.3 s.
    cam = camera(zones=RIGHT, tracker={"max_age": 30})  # it may coast that long (colours allow it live)
    group = walk(0.3, 0.5, 0.96, 0.5, 34)
    second = [(x + 0.02, y + 0.01) for x, y in group[:16]]
    exits = [z for z in zone_events(run(cam, [group, second])) if z[1] is EventPhase.END]
    assert len(exits) == 2 and all(3.0 <= ts <= 3.5 for _, _, ts in exits)  # not 1.5 s
