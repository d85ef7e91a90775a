"""No agent thread dies silently: the drain survives paho's NO_CONN race, and every loop (drain, capture,
pipeline, telemetry) is restarted by the supervisor, counted, and reported in telemetry."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from edge_agent.mqtt_link import MqttLink
from edge_agent.outbox import Outbox
from edge_agent.supervisor import Restarts, supervise
from shared.payloads import DeviceState, EventPayload, StatusPayload, TelemetryPayload, decode
from shared.topics import Topics
from tests.edge.conftest import agent_config
from tests.edge.test_faults import poll
from tests.support.recording_agent import RecordingAgent

DEVICE = "cam-test-1"


def test_supervise_restarts_a_failing_body_and_counts_it():
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("boom")

    restarts = Restarts()
    supervise("loop", body, threading.Event(), restarts, first_pause_s=0.01)
    assert len(calls) == 3 and restarts.by_name() == {"loop": 2} and restarts.total == 2


def test_supervise_gives_up_when_stopped():
    stop = threading.Event()
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        stop.set()
        raise RuntimeError("failing while the agent stops")

    restarts = Restarts()
    supervise("loop", body, stop, restarts, first_pause_s=0.01)
    assert calls == [1] and restarts.total == 1


def add_events(outbox: Outbox, count: int) -> list[str]:
    topics = Topics()
    ids: list[str] = []

    def build(seq: int) -> tuple[str, bytes]:
        event = EventPayload(event_id=f"evt-{seq:08d}", device_id=DEVICE, seq=seq, ts=time.time(),
                             kind="detection", label="red", score=0.9)
        ids.append(event.event_id)
        return topics.events(DEVICE), event.to_bytes()

    for _ in range(count):
        outbox.add_event(build)
    return ids


def test_drain_survives_a_publish_that_returns_no_conn(
    tmp_path: Path, persistent_broker, recorder_factory, red_model
):
    """The race of the issue: the drain publishes while the socket is already gone but the disconnect is
    not noticed yet. paho 2.2 then returns NO_CONN and ``MQTTMessageInfo.is_published()`` raises; the old
    drain thread died of it and the outbox grew for ever (here: 0 of 40 later events sent, thread dead).
    """
    broker = persistent_broker
    recorder = recorder_factory(broker.host, broker.port, topic="edgesight/v1/devices/+/events",
                                client_id="rec-no-conn", clean=False)
    config = agent_config(tmp_path, broker.url, red_model, {"type": "file", "path": "unused.mp4"})
    outbox = Outbox(tmp_path / "outbox.db")
    link = MqttLink(config, outbox, lambda st: StatusPayload(device_id=DEVICE, state=st, ts=time.time()))
    link.start()
    try:
        assert link.connected.wait(10)
        sent = add_events(outbox, 10)
        link.wake()
        assert poll(lambda: outbox.unsent() == 0, 10)
        broker.stop()  # graceful: the recorder's queue is saved; the agent's socket dies
        assert poll(lambda: not link.connected.is_set(), 10)
        link.connected.set()  # the drain has not heard of the disconnect yet
        sent += add_events(outbox, 20)
        link.wake()
        assert poll(lambda: link.inflight == 20, 5)  # handed to paho, which answered NO_CONN
        time.sleep(0.6)  # a few drain rounds look at those messages
        assert link._drainer.is_alive()
        broker.start()
        assert poll(lambda: outbox.unsent() == 0, 30)
        sent += add_events(outbox, 20)  # the stream goes on after the reconnect
        link.wake()
        assert poll(lambda: outbox.unsent() == 0, 30), f"{outbox.unsent()} rows stuck"
        assert recorder.wait_for(lambda: len(recorder.on("/events")) >= len(sent), 30)
        assert link._drainer.is_alive() and link.restarts.total == 0
    finally:
        link.stop()
        outbox.close()
    received = [decode(EventPayload, m.payload).event_id for m in recorder.on("/events")]
    assert sorted(set(received)) == sorted(sent)


def test_a_failing_pipeline_sink_is_restarted_and_reported_in_telemetry(
    tmp_path: Path, mosquitto, recorder_factory, red_model, red_clip
):
    """A sink that raises (the outbox's disk failing, say) used to end the camera's pipeline thread for
    good; now the supervisor restarts the loop, the camera goes on, and telemetry counts the restart."""
    recorder = recorder_factory(mosquitto.host, mosquitto.port)
    config = agent_config(tmp_path, mosquitto.url, red_model,
                          {"type": "file", "path": str(red_clip), "loop": True})
    agent = RecordingAgent(config)
    failures = {"left": 2}
    real_sink = agent._sink

    def flaky_sink(pipeline, frame, events) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OSError("disk I/O error")
        real_sink(pipeline, frame, events)

    agent._sink = flaky_sink  # type: ignore[method-assign]
    agent.start()
    try:
        assert poll(lambda: failures["left"] == 0, 30)
        assert poll(lambda: len(agent.emitted) >= 3, 30)  # events flow again after the restarts
        assert agent.cameras[0].worker.is_alive()
        assert agent.restarts.by_name() == {"pipeline-front": 2}

        def reported() -> bool:
            return any(decode(TelemetryPayload, m.payload).thread_restarts == 2
                       for m in recorder.on("/telemetry"))

        assert recorder.wait_for(reported, 10)
        statuses = [decode(StatusPayload, m.payload) for m in recorder.on("/status")]
        assert statuses and statuses[-1].state is DeviceState.ONLINE
    finally:
        agent.stop()
