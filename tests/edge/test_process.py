"""The agent as a real process: SIGTERM is graceful, SIGKILL loses nothing that reached the outbox."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from edge_agent.config import load_config
from shared.payloads import DeviceState, EventPayload, StatusPayload, decode
from tests.support.recording_agent import RecordingAgent

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, broker_url: str, model: Path, clip: Path, loop: bool) -> Path:
    data = {
        "device": {"id": "cam-proc-1"},
        "mqtt": {"url": broker_url, "reconnect_min_s": 1, "reconnect_max_s": 1},
        # No hub in these tests (a recorder stands in): events leave the outbox on the broker's PUBACK.
        "outbox": {"path": str(tmp_path / "outbox.db"), "hub_ack": False},
        "telemetry": {"interval_s": 1},
        "cameras": [
            {
                "name": "front",
                "source": {"type": "file", "path": str(clip), "loop": loop},
                "detect_fps": 20,
                "model": {"path": str(model)},
                "lines": [{"name": "middle", "a": [0.5, 0.0], "b": [0.5, 1.0]}],
            }
        ],
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def spawn(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def outbox_event_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT payload FROM messages WHERE kind = 'event' ORDER BY id").fetchall()
    return [decode(EventPayload, bytes(r[0])).event_id for r in rows]


def stranded_at_least(outbox: Path, n: int) -> bool:
    try:
        return outbox.exists() and len(outbox_event_ids(outbox)) >= n
    except sqlite3.OperationalError:  # the agent is still creating its schema
        return False


def poll(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_sigterm_stops_gracefully_with_offline_status(
    tmp_path: Path, mosquitto, recorder_factory, red_model, red_clip
):
    recorder = recorder_factory(mosquitto.host, mosquitto.port)
    proc = spawn(write_config(tmp_path, mosquitto.url, red_model, red_clip, loop=True))
    try:
        assert recorder.wait_for(lambda: len(recorder.on("/events")) >= 2, 60), proc.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log = proc.stdout.read().decode()
    assert "received SIGTERM" in log and "agent stopped" in log
    statuses = [decode(StatusPayload, m.payload) for m in recorder.on("/status")]
    assert statuses[0].state is DeviceState.ONLINE and statuses[-1].state is DeviceState.OFFLINE
    events = [decode(EventPayload, m.payload) for m in recorder.on("/events")]
    starts = [e.track_id for e in events if e.kind == "object" and e.phase == "start"]
    ends = [e.track_id for e in events if e.kind == "object" and e.phase == "end"]
    assert starts and sorted(starts) == sorted(ends)  # open tracks were ended and published before exit
    assert not outbox_event_ids(tmp_path / "outbox.db")


def test_sigkill_then_restart_delivers_what_was_in_the_outbox(
    tmp_path: Path, persistent_broker, recorder_factory, red_model, red_clip
):
    broker = persistent_broker
    recorder = recorder_factory(broker.host, broker.port, client_id="rec-kill", clean=False)
    broker.stop()  # events pile up in the outbox while the broker is away
    config_path = write_config(tmp_path, broker.url, red_model, red_clip, loop=True)
    outbox = tmp_path / "outbox.db"
    proc = spawn(config_path)
    try:
        assert poll(lambda: stranded_at_least(outbox, 4), 60)
        proc.kill()  # SIGKILL: no shutdown code runs
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    stranded = outbox_event_ids(outbox)
    assert len(stranded) >= 4
    broker.start()
    config = load_config(config_path)
    config.cameras[0].source.loop = False
    agent = RecordingAgent(config).start()
    try:
        assert agent.wait_sources_finished(30)
        assert agent.wait_drained(30)
        expected = len(stranded) + len(agent.emitted)
        assert recorder.wait_for(lambda: len(recorder.on("/events")) >= expected, 30), (
            len(recorder.on("/events")),
            len(stranded),
            len(agent.emitted),
            [m.topic for m in recorder.messages],
            broker.log()[-3000:],
        )
    finally:
        agent.stop()
    received = [decode(EventPayload, m.payload) for m in recorder.on("/events")]
    ids = [e.event_id for e in received]
    assert ids[: len(stranded)] == stranded  # the stranded events first, in order
    assert len(ids) == len(set(ids))  # none twice
    assert [e.seq for e in received] == sorted(e.seq for e in received)  # seq continued after the restart


def test_run_on_a_finite_file_exits_0_once_the_source_ended_and_the_outbox_drained(
    tmp_path: Path, mosquitto, recorder_factory, red_model, red_clip
):
    recorder = recorder_factory(mosquitto.host, mosquitto.port)
    proc = spawn(write_config(tmp_path, mosquitto.url, red_model, red_clip, loop=False))
    try:
        assert proc.wait(60) == 0  # no signal sent: the agent ends the run itself
    finally:
        if proc.poll() is None:
            proc.kill()
    log = proc.stdout.read().decode()
    assert "all sources ended and the outbox is empty" in log, log[-2000:]
    assert not outbox_event_ids(tmp_path / "outbox.db")
    assert recorder.wait_for(lambda: len(recorder.on("/events")) >= 2, 10)
