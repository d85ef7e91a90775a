"""The agent end to end against a real Mosquitto: events, status, telemetry, outbox semantics."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from shared import cpu_features
from shared.payloads import (
    DeviceState,
    EventKind,
    EventPayload,
    EventPhase,
    StatusPayload,
    TelemetryPayload,
    decode,
)
from tests.edge.conftest import agent_config
from tests.support.recording_agent import RecordingAgent

pytestmark = pytest.mark.arm64  # also runs on aarch64: make test-arm

LINE = {"name": "middle", "a": [0.5, 0.0], "b": [0.5, 1.0], "positive": "B->A", "negative": "A->B"}
ZONE = {"name": "right", "polygon": [[0.6, 0.0], [1.0, 0.0], [1.0, 1.0], [0.6, 1.0]]}


def events_of(recorder) -> list[EventPayload]:
    return [decode(EventPayload, m.payload, topic_device_id="cam-test-1") for m in recorder.on("/events")]


def test_agent_publishes_events_status_and_telemetry(
    tmp_path: Path, mosquitto, recorder_factory, red_model, red_clip
):
    recorder = recorder_factory(mosquitto.host, mosquitto.port)
    config = agent_config(
        tmp_path,
        mosquitto.url,
        red_model,
        {"type": "file", "path": str(red_clip)},
        lines=[LINE],
        zones=[ZONE],
    )
    agent = RecordingAgent(config).start()
    try:
        assert agent.wait_sources_finished(30)
        assert agent.wait_drained(15)
        assert recorder.wait_for(lambda: len(recorder.on("/events")) >= len(agent.emitted), 10)
        assert recorder.wait_for(lambda: recorder.on("/telemetry"), 10)
    finally:
        agent.stop()
    events = events_of(recorder)
    kinds = [(e.kind, e.phase) for e in events]
    # One red square crossed left → right: one object start/end, one crossing, one zone enter/exit.
    assert kinds.count((EventKind.OBJECT, EventPhase.START)) == 1
    assert kinds.count((EventKind.OBJECT, EventPhase.END)) == 1
    crossings = [e for e in events if e.kind is EventKind.LINE]
    assert [(e.line, e.direction, e.count) for e in crossings] == [("middle", "A->B", 1)]
    assert kinds.count((EventKind.ZONE, EventPhase.START)) == 1
    assert kinds.count((EventKind.ZONE, EventPhase.END)) == 1
    assert {e.label for e in events} == {"red_thing"}
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert len({e.event_id for e in events}) == len(events)
    assert [e.event_id for e in events] == [e.event_id for e in agent.emitted]
    start = next(e for e in events if e.phase is EventPhase.START and e.kind is EventKind.OBJECT)
    assert start.has_snapshot
    snaps = recorder.on(f"/snapshots/{start.event_id}")
    assert snaps and snaps[0].payload[:2] == b"\xff\xd8"  # a JPEG
    statuses = [decode(StatusPayload, m.payload) for m in recorder.on("/status")]
    assert statuses[0].state is DeviceState.ONLINE and statuses[0].model == "red-fomo@1.0.0"
    assert statuses[-1].state is DeviceState.OFFLINE  # published on graceful stop
    assert statuses[0].cpu is not None and statuses[0].cpu.arch == platform.machine().lower()
    assert tuple(statuses[0].cpu.int8) == cpu_features.current().int8
    telemetry = [decode(TelemetryPayload, m.payload) for m in recorder.on("/telemetry")]
    assert all(t.camera == "front" for t in telemetry)
    assert any(t.fps_in > 0 for t in telemetry)
    assert any(t.inference_ms_p50 is not None for t in telemetry)
    assert json.loads(recorder.on("/status")[0].payload)["schema"] == 1


def test_broker_down_at_start_then_up_delivers_everything_once(
    tmp_path: Path, persistent_broker, recorder_factory, red_model, red_clip
):
    broker = persistent_broker
    # A persistent subscriber session, so the broker queues for it while it reconnects after the outage.
    recorder = recorder_factory(broker.host, broker.port, client_id="rec-persistent", clean=False)
    broker.stop()
    config = agent_config(
        tmp_path, broker.url, red_model, {"type": "file", "path": str(red_clip)}, lines=[LINE], zones=[ZONE]
    )
    agent = RecordingAgent(config).start()
    try:
        assert agent.wait_sources_finished(30)
        assert agent.outbox is not None
        waiting = agent.outbox.depth()
        emitted = [e.event_id for e in agent.emitted]
        assert waiting >= len(emitted) >= 5  # events (+ snapshots) wait on disk
        assert not recorder.messages
        broker.start()
        assert agent.wait_drained(30)
        assert recorder.wait_for(lambda: len(recorder.on("/events")) >= len(emitted), 30)
    finally:
        agent.stop()
    received = [e.event_id for e in events_of(recorder)]
    assert received == emitted  # all delivered, in order, none twice


def test_red_light_signal_over_mqtt(tmp_path: Path, mosquitto, recorder_factory, red_model, red_clip):
    import paho.mqtt.publish as publish

    from shared.topics import Topics

    recorder = recorder_factory(mosquitto.host, mosquitto.port)
    signal_topic = Topics().signal("cam-test-1", "crossing_light")
    broker = {"hostname": mosquitto.host, "port": mosquitto.port}
    # Malformed signals first (retained, so they arrive at connect): logged and ignored, nothing breaks.
    publish.single(Topics().signal("cam-test-1", "junk"), b"\xff\xfe", qos=1, retain=True, **broker)
    publish.single(Topics().signal("cam-test-1", "junk2"), b'{"state": ', qos=1, retain=True, **broker)
    publish.single(signal_topic, '{"state": "RED"}', qos=1, retain=True, **broker)
    config = agent_config(
        tmp_path,
        mosquitto.url,
        red_model,
        {"type": "file", "path": str(red_clip)},
        lines=[LINE],
        red_light=[{"name": "rl", "line": "middle", "signal": "crossing_light"}],
    )
    agent = RecordingAgent(config).start()
    try:
        assert agent.wait_sources_finished(30) and agent.wait_drained(15)
        assert recorder.wait_for(lambda: len(recorder.on("/events")) >= len(agent.emitted), 10)
    finally:
        agent.stop()
    red = [e for e in events_of(recorder) if e.kind is EventKind.RED_LIGHT]
    assert [(e.line, e.direction, e.attributes["signal"]) for e in red] == [
        ("middle", "A->B", "crossing_light")
    ]
