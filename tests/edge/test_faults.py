"""Fault tests with real parts: camera streams (MJPEG, RTSP) that drop and return, a broker killed
mid-stream. The 30 s broker outage checked down to the hub's database is in tests/e2e."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest

from shared.payloads import EventPayload, decode
from tests.edge.conftest import agent_config
from tests.edge.mjpeg import MjpegCamera
from tests.edge.rtsp import RtspCamera
from tests.support.recording_agent import RecordingAgent

# The broker writes its state after every subscription change, so a SIGKILL does not make it forget
# the test subscriber's persistent session (the agent under test is what we want to observe).
DURABLE = "user root\nautosave_on_changes true\nautosave_interval 1\n"


def poll(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize(
    "make_camera",
    [
        pytest.param(lambda: MjpegCamera(fps=20), id="mjpeg-http"),
        pytest.param(RtspCamera, id="rtsp"),  # gst-rtsp-server, RTP/JPEG; SIGKILLed without a TEARDOWN
    ],
)
def test_stream_source_drops_and_the_agent_reconnects(
    tmp_path: Path, mosquitto, recorder_factory, red_model, caplog: pytest.LogCaptureFixture, make_camera
):
    """A real camera server stops and comes back on the same port; the agent retries with backoff."""
    caplog.set_level(logging.WARNING, logger="edge_agent.capture")
    camera = make_camera().start()
    recorder = recorder_factory(mosquitto.host, mosquitto.port)
    source = {
        "type": "stream",
        "url": camera.url,
        "reconnect_min_s": 0.2,
        "reconnect_max_s": 0.5,
        "open_timeout_s": 2,
    }
    agent = RecordingAgent(agent_config(tmp_path, mosquitto.url, red_model, source)).start()
    cam = agent.cameras[0]
    try:
        assert poll(lambda: cam.buffer.grabbed >= 20, 20)
        camera.stop()
        assert poll(lambda: cam.capture.reconnects >= 1, 20)  # noticed the loss, retrying
        frames_before = cam.buffer.grabbed
        time.sleep(1.5)  # retries fail meanwhile; the agent keeps running
        assert cam.worker.is_alive() and cam.capture.is_alive() and cam.buffer.grabbed == frames_before
        delays = [float(m) for m in re.findall(r"retrying in ([\d.]+)s", caplog.text)]
        assert len(delays) >= 2 and delays == sorted(delays) and max(delays) == 0.5  # backoff, capped
        camera.start()  # same port
        assert poll(lambda: cam.buffer.grabbed >= frames_before + 20, 30)  # frames flow again
        restarted_at = time.time()
        assert recorder.wait_for(
            lambda: any(decode(EventPayload, m.payload).ts >= restarted_at for m in recorder.on("/events")),
            30,
        )
    finally:
        agent.stop()
        camera.stop()


def test_broker_killed_mid_stream_every_event_arrives_once(
    tmp_path: Path, mosquitto_factory, recorder_factory, red_model, red_clip
):
    broker = mosquitto_factory(extra_config=DURABLE)
    recorder = recorder_factory(broker.host, broker.port, client_id="rec-faults", clean=False)
    config = agent_config(
        tmp_path, broker.url, red_model, {"type": "file", "path": str(red_clip), "loop": True}
    )
    agent = RecordingAgent(config).start()
    try:
        assert recorder.wait_for(lambda: len(recorder.on("/events")) >= 3, 30)
        broker.stop(kill=True)  # SIGKILL: no goodbye to anyone
        outage_started = len(agent.emitted)
        # A short outage (until the agent has made events it cannot send) checked at the MQTT level; the
        # issue's real 30 s, down to the hub's database, is tests/e2e/test_camera_to_dashboard.py.
        assert poll(lambda: len(agent.emitted) >= outage_started + 4 and agent.outbox.depth() >= 4, 30)
        broker.start()
        time.sleep(1.0)  # the stream continues after the broker is back
        agent.stop_event.set()
        assert agent.wait_sources_finished(10)
        assert agent.wait_drained(30)
        emitted = [e.event_id for e in agent.emitted]
        assert recorder.wait_for(lambda: len(recorder.on("/events")) >= len(emitted), 30)
    finally:
        agent.stop()
    received = [decode(EventPayload, m.payload).event_id for m in recorder.on("/events")]
    assert sorted(received) == sorted(emitted)  # every event, none twice
    assert len(received) == len(set(received))
