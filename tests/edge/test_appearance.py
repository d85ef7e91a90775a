"""Colour appearance: pure logic on painted pixels, and what it changes in the tracker."""

from __future__ import annotations

import numpy as np

from edge_agent import appearance
from edge_agent.config import TrackerConfig
from edge_agent.tracker import Tracker
from model_runtime import Detection


def painted(bgr: tuple[int, int, int], shade: float = 1.0) -> np.ndarray | None:
    image = np.zeros((40, 40, 3), np.uint8)
    image[:] = [int(c * shade) for c in bgr]
    return appearance.describe(image, (0.2, 0.2, 0.8, 0.8))


RED, BLUE = (30, 30, 200), (200, 60, 30)


def test_colours_tell_objects_apart_and_shade_does_not():
    assert appearance.distance(painted(RED), painted(BLUE)) > 0.9
    assert appearance.distance(painted(RED), painted(RED, shade=0.5)) < 0.1  # a shadow, a darker gain
    assert appearance.distance(painted(RED), None) == 1.0  # unknown: no evidence either way


def test_a_one_cell_box_still_samples_pixels_and_an_empty_one_gives_none():
    image = np.full((96, 160, 3), (30, 30, 200), np.uint8)
    tiny = appearance.describe(image, (0.5, 0.5, 0.5, 0.5))  # a zero-size box: MIN_SIDE_PX around it
    assert tiny is not None and abs(float(tiny.sum()) - 1.0) < 1e-5
    assert appearance.describe(image, (1.2, 1.2, 1.3, 1.3)) is None  # outside the frame


def test_blend_moves_towards_the_new_look():
    red, blue = painted(RED), painted(BLUE)
    mixed = appearance.blend(red, blue, 0.3)
    assert appearance.distance(mixed, red) < appearance.distance(mixed, blue)
    assert appearance.blend(None, blue, 0.3) is blue and appearance.blend(red, None, 0.3) is red


def coasting_then(colour: np.ndarray | None, weight: float) -> bool:
    """A red person tracked for 1 s, missed twice, then a detection 0.08 off its path: same track?"""
    tracker = Tracker(TrackerConfig(appearance_weight=weight))
    red = painted(RED)
    for i in range(10):
        x = 0.3 + 0.01 * i
        update = tracker.update([Detection("person", 0.9, (x - 0.02, 0.48, x + 0.02, 0.52))], i / 10, [red])
    first = update.active[0].id
    tracker.update([], 1.0, [])
    tracker.update([], 1.1, [])
    x = 0.42
    tracker.update([Detection("person", 0.9, (x - 0.02, 0.56, x + 0.02, 0.60))], 1.2, [colour])
    return any(t.id == first and t.misses == 0 for t in tracker.tracks)


def test_a_coasting_track_reaching_far_takes_only_a_detection_that_looks_like_it():
    assert coasting_then(painted(BLUE), weight=0.0)  # position alone: the blue one is taken
    assert not coasting_then(painted(BLUE), weight=3.0)  # someone else: a new track
    assert coasting_then(painted(RED), weight=3.0)  # the red person found again


def red_person_then(gap: int, detection: tuple[float, float], colour: np.ndarray | None, **config):
    """A red person walks right for 1 s, is hidden ``gap`` inferences, then a detection at ``detection``
    (centre) with ``colour`` keeps coming for 6 inferences. Returns (tracker, first track id, updates)."""
    tracker = Tracker(TrackerConfig(**config))
    red = painted(RED)
    for i in range(10):
        x = 0.3 + 0.01 * i
        update = tracker.update([Detection("person", 0.9, (x - 0.02, 0.48, x + 0.02, 0.52))], i / 10, [red])
    first = update.active[0].id
    ts = 0.9
    updates = []
    for _ in range(gap):
        ts += 0.1
        updates.append(tracker.update([], ts, []))
    cx, cy = detection
    for k in range(6):
        ts += 0.1
        x = cx + 0.01 * k
        box = (x - 0.02, cy - 0.02, x + 0.02, cy + 0.02)
        updates.append(tracker.update([Detection("person", 0.9, box)], ts, [colour]))
    return tracker, first, updates


def test_a_lost_track_waits_unseen_and_comes_back_only_for_a_look_alike():
    # Hidden 8 inferences (max_age 5): lost, so the rules no longer see it, but not ended.
    tracker, first, updates = red_person_then(8, (0.48, 0.5), painted(RED), max_age=5, max_lost=6)
    assert all(t.id != first for t in updates[6].active) and not any(u.ended for u in updates[:8])
    assert any(t.id == first and not t.lost for t in updates[-1].active)  # the red person, back
    assert not any(u.started for u in updates)  # ... and no second object start
    # Someone blue there instead: a new object; the lost track ends after max_age + max_lost misses.
    tracker, first, updates = red_person_then(8, (0.48, 0.5), painted(BLUE), max_age=5, max_lost=6)
    assert [t.id for u in updates for t in u.ended] == [first]
    assert len([t for u in updates for t in u.started]) == 1
    # max_lost 0: ended at max_age, as before.
    tracker, first, updates = red_person_then(8, (0.48, 0.5), painted(RED), max_age=5, max_lost=0)
    assert [t.id for t in updates[5].ended] == [first]


def test_a_new_track_of_a_lost_object_is_merged_into_it():
    # Found again 0.15 off its path after 3 missed inferences: outside the association gate, so a new
    # track starts; when it is confirmed, it turns out to be the coasting red person and continues it.
    tracker, first, updates = red_person_then(3, (0.5, 0.62), painted(RED), max_age=5, max_lost=6)
    assert not any(u.started for u in updates)
    assert [t.id for t in updates[-1].active] == [first] and len(tracker.tracks) == 1
    # A blue one there is someone else: its own start, and the red track keeps coasting.
    tracker, first, updates = red_person_then(3, (0.5, 0.62), painted(BLUE), max_age=5, max_lost=6)
    started = [t.id for u in updates for t in u.started]
    assert len(started) == 1 and started[0] != first
    assert any(t.id == first and t.misses > 0 for t in tracker.tracks)
