"""The events benchmark's scoring: pure logic on hand-made events (no rendering, no model)."""

from __future__ import annotations

from benchmarks.events import evaluate, unseen_span
from edge_agent.rules import RuleEvent
from edge_agent.tracker import Kalman, Track
from shared.payloads import EventKind, EventPhase
from synthetic_world import SyntheticVideo, TruthEvent

WINDOW = (2.0, 42.0)


def _event(kind: EventKind, ts: float, **fields) -> RuleEvent:
    track = Track(1, (0.4, 0.4, 0.5, 0.5), 1.0, ts, ts, Kalman(0.45, 0.45))
    phase = fields.pop("phase", EventPhase.INSTANT)
    return RuleEvent(kind, phase, track, ts, **fields)


def _score(
    events: list[RuleEvent],
    truth: list[TruthEvent],
    unseen: list[TruthEvent] | None = None,
    spans: dict[TruthEvent, tuple[float, float]] | None = None,
) -> dict:
    video = SyntheticVideo(seed=900_000_001, width=64, height=48, fps=10, duration_s=0.1)
    return evaluate(video, events, truth, tolerance=1.0, window=WINDOW, unseen=unseen, spans=spans)


def test_a_pair_straddling_the_window_edge_is_neither_a_miss_nor_a_false_alarm() -> None:
    truth = [
        TruthEvent("zone_exit", 7, "person", "crossing", None, 42.3),  # just after the window
        TruthEvent("zone_enter", 8, "person", "crossing", None, 1.8),  # just before it
        TruthEvent("line", 7, "person", "crosswalk", "A->B", 41.9),  # inside
    ]
    events = [
        _event(EventKind.ZONE, 42.0, phase=EventPhase.END, zone="crossing"),  # dated last seen: inside
        _event(EventKind.ZONE, 2.2, phase=EventPhase.START, zone="crossing"),
        _event(EventKind.LINE, 42.2, line="crosswalk", direction="A->B"),  # reported just after
    ]
    stats = _score(events, truth)
    assert (stats["zone_pred"], stats["zone_true"], stats["zone_matched"]) == (0, 0, 0)
    assert (stats["line_true"], stats["line_abs_error"]) == (1, 0)


def test_unmatched_events_count_where_they_happened() -> None:
    truth = [
        TruthEvent("zone_enter", 7, "person", "crossing", None, 10.0),
        TruthEvent("zone_exit", 7, "person", "crossing", None, 41.5),  # missed
        TruthEvent("line", 7, "person", "crosswalk", "A->B", 20.0),
    ]
    events = [
        _event(EventKind.ZONE, 10.4, phase=EventPhase.START, zone="crossing"),
        _event(EventKind.ZONE, 30.0, phase=EventPhase.END, zone="crossing"),  # a false exit
        _event(EventKind.ZONE, 43.0, phase=EventPhase.START, zone="crossing"),  # outside: not scored
        _event(EventKind.LINE, 20.3, line="crosswalk", direction="A->B"),
        _event(EventKind.LINE, 25.0, line="crosswalk", direction="B->A"),  # a false crossing
    ]
    stats = _score(events, truth)
    assert (stats["zone_pred"], stats["zone_true"], stats["zone_matched"]) == (2, 2, 1)
    assert (stats["line_true"], stats["line_abs_error"]) == (1, 1)


def test_a_prediction_matching_only_an_unseen_event_is_excused() -> None:
    unseen = [TruthEvent("zone_exit", 7, "person", "crossing", None, 20.0)]
    events = [_event(EventKind.ZONE, 20.5, phase=EventPhase.END, zone="crossing")]
    stats = _score(events, [], unseen)
    assert (stats["zone_pred"], stats["zone_true"], stats["zone_unseen"]) == (0, 0, 1)


def test_an_unseen_entry_reported_when_the_object_is_first_seen_is_excused() -> None:
    # It walked in behind a parked truck at 10 s and stepped out, seen, at 13 s: the camera can report
    # the entry no earlier than that, so a report at 13.2 s is neither a false alarm nor a match.
    entry = TruthEvent("zone_enter", 7, "person", "crossing", None, 10.0)
    seen = {i: {7: 0.0} for i in range(100, 130, 2)} | {i: {7: 1.0} for i in range(130, 160, 2)}
    span = unseen_span(entry, seen, fps=10.0, tolerance=1.0, min_visible=0.3)
    assert span == (9.0, 14.0)
    events = [_event(EventKind.ZONE, 13.2, phase=EventPhase.START, zone="crossing")]
    stats = _score(events, [], [entry], {entry: span})
    assert (stats["zone_pred"], stats["zone_true"], stats["zone_unseen"]) == (0, 0, 1)
    late = [_event(EventKind.ZONE, 15.5, phase=EventPhase.START, zone="crossing")]  # beyond the span
    assert _score(late, [], [entry], {entry: span})["zone_pred"] == 1
    assert _score(events, [], [entry])["zone_pred"] == 1  # without spans: its time ± tolerance only


def test_an_unseen_exit_may_be_reported_from_the_last_sighting() -> None:
    exit_ = TruthEvent("zone_exit", 7, "person", "crossing", None, 20.0)
    seen = {i: {7: 1.0} for i in range(150, 170, 2)} | {i: {7: 0.1} for i in range(170, 200, 2)}
    assert unseen_span(exit_, seen, fps=10.0, tolerance=1.0, min_visible=0.3) == (15.8, 21.0)
    never = TruthEvent("zone_exit", 8, "person", "crossing", None, 20.0)  # never seen at all
    assert unseen_span(never, seen, fps=10.0, tolerance=1.0, min_visible=0.3) == (19.0, 21.0)
