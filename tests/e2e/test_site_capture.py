"""Issue 24, site capture end to end: a real Mosquitto, the real ingest worker and hub app (SQLite and
PostgreSQL), a real agent playing a real clip from ../shared/data/video.

The hub asks for 10 frames through its API (admins only); the broker restarts, or the agent, the ingest
worker and the web app all stop and start again, in the middle; every frame arrives once and decodes.
A device that stays offline past the timeout ends ``timed_out`` with the reason.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud_hub import auth, create_app
from cloud_hub.capture.models import Capture, CaptureChunkRow, CaptureFrame
from cloud_hub.db import upgrade
from cloud_hub.ingest.worker import IngestWorker
from cloud_hub.models import DeadLetter, Device
from cloud_hub.snapshots import SnapshotStore
from cloud_hub.web.database import ENGINE_KEY
from firmware_models.teachers import PERSON_CLIP, video_dir
from shared.capture import CaptureChunk
from shared.topics import Topics
from tests.e2e.conftest import wait_until

TOPICS = Topics()


class Hub:
    """The hub's processes for one test: the web app and one ingest worker, restartable."""

    def __init__(self, database_url: str, tmp_path: Path, mqtt_url: str):
        self.database_url, self.tmp_path, self.mqtt_url = database_url, tmp_path, mqtt_url
        self.app: Flask | None = None
        self.worker: IngestWorker | None = None
        upgrade(database_url)

    def start(self) -> Hub:
        self.app = create_app({"instance_path": str(self.tmp_path / "instance"),
                               "database_url": self.database_url,
                               "secret_key": "test-secret-key", "snapshot_dir": str(self.snapshots),
                               "log_format": "text", "mqtt_url": self.mqtt_url})
        self.app.config["TESTING"] = True
        self.worker = IngestWorker(self.app.extensions[ENGINE_KEY], self.mqtt_url, "edgesight/v1",
                                   client_id="capture-ingest", snapshot_dir=str(self.snapshots)).start()
        return self

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.app is not None:
            self.app.extensions[ENGINE_KEY].dispose()
        self.worker = self.app = None

    @property
    def snapshots(self) -> Path:
        return self.tmp_path / "snapshots"

    def db(self) -> Session:
        assert self.app is not None
        return Session(self.app.extensions[ENGINE_KEY])

    def client(self, role: str):
        assert self.app is not None
        with self.db() as db:
            name = f"{role}-{int(time.time() * 1000) % 100000}"
            user = auth.create_user(db, name, "a password long enough", role)
            secret = auth.create_token(db, user, "capture test").secret
        client = self.app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
        client.username = name  # type: ignore[attr-defined]
        return client

    def capture(self, capture_id: str) -> Capture:
        with self.db() as db:
            row = db.get(Capture, capture_id)
            assert row is not None
            db.expunge(row)
            return row


@pytest.fixture
def hub_factory(tmp_path: Path) -> Iterator[Callable[[str, str], Hub]]:
    hubs: list[Hub] = []

    def make(database_url: str, mqtt_url: str) -> Hub:
        hubs.append(Hub(database_url, tmp_path, mqtt_url).start())
        return hubs[-1]

    yield make
    for hub in hubs:
        hub.stop()


def clip_source() -> dict:
    return {"type": "file", "path": str(video_dir() / PERSON_CLIP), "loop": True}


def start_capture(hub: Hub, device_id: str, **body) -> str:
    admin = hub.client("admin")
    answer = admin.post(f"/api/v1/devices/{device_id}/captures", json=body)
    assert answer.status_code == 202, answer.get_json()
    started = answer.get_json()
    assert started["state"] == "requested" and started["requested_by"] == admin.username
    return started["id"]


def assert_all_frames_once(hub: Hub, capture_id: str, count: int) -> None:
    store = SnapshotStore(hub.snapshots)
    with hub.db() as db:
        frames = list(db.scalars(select(CaptureFrame).where(CaptureFrame.capture_id == capture_id)))
        chunks_left = db.scalar(select(func.count()).select_from(CaptureChunkRow)) or 0
        dead = list(db.scalars(select(DeadLetter.reason)))
    assert sorted(f.frame for f in frames) == list(range(count))  # each frame once (unique per capture)
    assert chunks_left == 0 and dead == []
    for f in frames:
        path = store.resolve(f.path)
        assert path is not None, f"frame {f.frame} missing under the snapshot store"
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == f.sha256
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[:2] == (f.height, f.width) and image.std() > 5


def wait_device(hub: Hub, device_id: str) -> None:
    def known() -> bool:
        with hub.db() as db:
            return db.get(Device, device_id) is not None
    wait_until(known, 20, f"device {device_id} registered")


def test_capture_of_10_frames_survives_a_broker_restart(database_url, mosquitto, hub_factory, agent_factory):
    hub = hub_factory(database_url, mosquitto.url)
    agent_factory(mosquitto.url, clip_source(), device_id="cap-cam")
    wait_device(hub, "cap-cam")

    viewer = hub.client("viewer")
    refused = viewer.post("/api/v1/devices/cap-cam/captures", json={"count": 10, "interval_s": 0.3})
    assert refused.status_code == 403
    with hub.db() as db:
        assert db.scalar(select(func.count()).select_from(Capture)) == 0  # nothing logged, nothing sent

    capture_id = start_capture(hub, "cap-cam", count=10, interval_s=0.3, max_bytes=64 * 1024)
    wait_until(lambda: hub.capture(capture_id).frames_received >= 3, 20, "3 frames in")
    mosquitto.stop()  # the broker goes away mid-capture; the agent keeps taking frames to disk
    time.sleep(1.0)
    mosquitto.start()
    wait_until(lambda: hub.capture(capture_id).state == "complete", 40, "capture complete")
    row = hub.capture(capture_id)
    assert row.frames_received == 10 and row.reason is None and row.finished_at is not None
    assert_all_frames_once(hub, capture_id, 10)

    shown = viewer.get(f"/api/v1/captures/{capture_id}").get_json()
    assert shown["state"] == "complete" and shown["progress"] == 1.0 and len(shown["frames"]) == 10
    image = viewer.get(shown["frames"][0]["url"])
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    page = viewer.get("/devices/cap-cam").get_data(as_text=True)
    assert capture_id in page and "10 / 10" in page and "Start capture" not in page  # viewers only watch


def test_capture_resumes_after_agent_and_hub_restart(mosquitto, hub_factory, agent_factory, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    hub = hub_factory(url, mosquitto.url)
    agent = agent_factory(mosquitto.url, clip_source(), device_id="cap-cam")
    wait_device(hub, "cap-cam")
    capture_id = start_capture(hub, "cap-cam", count=10, interval_s=0.4, mode="motion")
    wait_until(lambda: hub.capture(capture_id).frames_received >= 3, 20, "3 frames in")

    agent.stop()  # the agent and every hub process stop mid-capture
    hub.stop()
    hub = hub_factory(url, mosquitto.url)
    midway = hub.capture(capture_id)
    assert midway.state == "capturing" and 3 <= midway.frames_received < 10  # the state survived
    listed = hub.client("viewer").get("/api/v1/devices/cap-cam/captures").get_json()["items"]
    assert [c["id"] for c in listed] == [capture_id] and listed[0]["state"] == "capturing"

    agent_factory(mosquitto.url, clip_source(), device_id="cap-cam")  # same disk: resumes its capture
    wait_until(lambda: hub.capture(capture_id).state == "complete", 40, "capture complete after restarts")
    assert hub.capture(capture_id).frames_received == 10
    assert_all_frames_once(hub, capture_id, 10)


def test_an_offline_device_times_out_with_the_reason(mosquitto, hub_factory, agent_factory, tmp_path: Path):
    hub = hub_factory(f"sqlite:///{tmp_path / 'hub.db'}", mosquitto.url)
    agent = agent_factory(mosquitto.url, clip_source(), device_id="cap-cam")
    wait_device(hub, "cap-cam")
    agent.stop()

    def offline() -> bool:
        with hub.db() as db:
            return db.get(Device, "cap-cam").state == "offline"
    wait_until(offline, 20, "device offline")
    capture_id = start_capture(hub, "cap-cam", count=3, interval_s=0.2, timeout_s=1)
    viewer = hub.client("viewer")
    again = hub.client("admin").post("/api/v1/devices/cap-cam/captures", json={"count": 3, "interval_s": 1})
    assert again.status_code == 400 and capture_id in again.get_json()["error"]  # one at a time
    time.sleep(1.5)
    shown = viewer.get(f"/api/v1/captures/{capture_id}").get_json()
    assert shown["state"] == "timed_out" and "offline for more than 1 s" in shown["reason"]

    # The device comes back and finds the retained request: the hub says it is over, the device forgets.
    back = agent_factory(mosquitto.url, clip_source(), device_id="cap-cam")
    folder = Path(back.config.outbox.path).parent / "captures" / capture_id
    wait_until(lambda: (folder / "done").exists(), 20, "the device dropped the timed-out capture")
    assert list(folder.glob("*.jpg")) == []
    assert hub.capture(capture_id).state == "timed_out" and hub.capture(capture_id).frames_received == 0


def _publisher(mosquitto, client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    return client


def _chunk(device: str, capture_id: str, data: bytes, frame: int = 0, frames: int = 2, **over) -> bytes:
    fields = dict(device_id=device, capture_id=capture_id, frame=frame, frames=frames, chunk=0, chunks=1,
                  ts=time.time(), size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                  data_b64=base64.b64encode(data).decode())
    return CaptureChunk.model_construct(**(fields | over)).to_bytes()


def test_bad_capture_input_is_dead_lettered_and_ingest_goes_on(mosquitto, hub_factory, tmp_path: Path):
    hub = hub_factory(f"sqlite:///{tmp_path / 'hub.db'}", mosquitto.url)
    with hub.db() as db:
        db.add_all([Device(id=d, first_seen=time.time(), last_seen=time.time(), state="online")
                    for d in ("cam-a", "cam-b")])
        db.commit()
    capture_id = start_capture(hub, "cam-a", count=2, interval_s=1)
    good = cv2.imencode(".jpg", np.random.default_rng(1).integers(0, 255, (48, 64, 3), np.uint8))[1].tobytes()
    a, b = _publisher(mosquitto, "cam-a"), _publisher(mosquitto, "cam-b")
    try:
        missing = "cap-doesnotexist"
        a.publish(TOPICS.capture_chunk("cam-a", missing), _chunk("cam-a", missing, good), 1)
        # cam-b names cam-a's capture on its own topic (the broker's ACL stops it on cam-a's topic)
        b.publish(TOPICS.capture_chunk("cam-b", capture_id), _chunk("cam-b", capture_id, good), 1)
        big = b"\xff\xd8\xff" + bytes(40 * 1024)
        a.publish(TOPICS.capture_chunk("cam-a", capture_id), _chunk("cam-a", capture_id, big), 1)
        fake = b"not a jpeg at all, but its sha256 is right"
        a.publish(TOPICS.capture_chunk("cam-a", capture_id), _chunk("cam-a", capture_id, fake, frame=1), 1)
        a.publish(TOPICS.capture_chunk("cam-a", capture_id), _chunk("cam-a", capture_id, good, frame=0), 1)

        def reasons() -> list[str]:
            with hub.db() as db:
                return list(db.scalars(select(DeadLetter.reason)))
        wait_until(lambda: len(reasons()) >= 4 and hub.capture(capture_id).state == "complete", 20,
                   "four dead letters and the good frame stored")
    finally:
        for client in (a, b):
            client.loop_stop()
            client.disconnect()
    text = "\n".join(reasons())
    assert "capture cap-doesnotexist does not exist" in text
    assert f"capture {capture_id} is not a capture of device cam-b" in text
    assert "data_b64" in text  # the oversized chunk: refused by the contract's bound
    assert f"capture {capture_id} frame 1: no JPEG start-of-image marker" in text
    row = hub.capture(capture_id)
    assert row.frames_received == 1 and row.rejected_frames == [1]
    assert row.reason == "1 of 2 frames refused (see dead letters)"
    assert hub.worker is not None and hub.worker.ready()


def test_capture_survives_a_restart_of_the_hub_processes(mosquitto, agent_factory, tmp_path: Path):
    """The hub as an operator runs it: `cloud-hub ingest` is its own process, stopped (SIGTERM) and started
    again mid-capture; `cloud-hub capture` commands read the state from another process each time."""
    import json
    import os
    import signal
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, EDGESIGHT_INSTANCE_PATH=str(tmp_path / "instance"),
               EDGESIGHT_MQTT_URL=mosquitto.url,
               EDGESIGHT_DATABASE_URL=f"sqlite:///{tmp_path / 'hub.db'}",
               EDGESIGHT_SNAPSHOT_DIR=str(tmp_path / "snapshots"), EDGESIGHT_LOG_FORMAT="text")

    def hub(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "cloud_hub", *args], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def ingest(n: int) -> subprocess.Popen:
        log = open(tmp_path / f"ingest-{n}.log", "w")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen([sys.executable, "-m", "cloud_hub", "ingest", "--client-id", "hub-ingest"],
                                cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: "ingest subscribed" in (tmp_path / f"ingest-{n}.log").read_text(), 30,
                   "ingest subscribed")
        return proc

    def show(capture_id: str) -> dict:
        return json.loads(hub("capture", "show", capture_id))

    worker = ingest(0)
    try:
        agent_factory(mosquitto.url, clip_source(), device_id="cap-cam")
        wait_until(lambda: _known(env, "cap-cam"), 30, "device known")
        capture_id = hub("capture", "start", "cap-cam", "--count", "10", "--interval", "0.4").split(":")[0]
        wait_until(lambda: show(capture_id)["frames_received"] >= 3, 30, "3 frames in")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        midway = show(capture_id)
        assert midway["state"] == "capturing" and 3 <= midway["frames_received"] < 10
        time.sleep(1.0)  # the agent goes on while the hub is down
        worker = ingest(1)
        wait_until(lambda: show(capture_id)["state"] == "complete", 40, "capture complete after the restart")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    final = show(capture_id)
    assert final["frames_received"] == 10 and sorted(f["frame"] for f in final["frames"]) == list(range(10))
    assert final["requested_by"].startswith("cli:")
    store = SnapshotStore(tmp_path / "snapshots")
    for f in final["frames"]:
        path = store.resolve(SnapshotStore.relative_path(f["sha256"]))
        assert path is not None
        image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[:2] == (f["height"], f["width"])


def _known(env: dict, device_id: str) -> bool:
    from sqlalchemy import create_engine

    engine = create_engine(env["EDGESIGHT_DATABASE_URL"])
    try:
        with Session(engine) as db:
            return db.get(Device, device_id) is not None
    except Exception:  # the table may not exist before ingest migrated
        return False
    finally:
        engine.dispose()


def test_cancel_stops_the_device_and_keeps_what_is_stored(mosquitto, hub_factory, agent_factory,
                                                         tmp_path: Path):
    hub = hub_factory(f"sqlite:///{tmp_path / 'hub.db'}", mosquitto.url)
    agent = agent_factory(mosquitto.url, clip_source(), device_id="cap-cam")
    wait_device(hub, "cap-cam")
    capture_id = start_capture(hub, "cap-cam", count=200, interval_s=0.3)
    wait_until(lambda: hub.capture(capture_id).frames_received >= 2, 20, "2 frames in")
    assert hub.client("viewer").post(f"/api/v1/captures/{capture_id}/cancel").status_code == 403
    admin = hub.client("admin")
    answer = admin.post(f"/api/v1/captures/{capture_id}/cancel")
    assert answer.status_code == 200, answer.get_json()
    cancelled = answer.get_json()
    assert cancelled["state"] == "failed" and cancelled["reason"] == f"cancelled by {admin.username}"
    folder = Path(agent.config.outbox.path).parent / "captures" / capture_id
    wait_until(lambda: (folder / "done").exists(), 10, "the device stopped")
    assert list(folder.glob("*.jpg")) == []
    kept = hub.capture(capture_id).frames_received
    time.sleep(1.0)  # nothing more is taken
    assert hub.capture(capture_id).frames_received == kept >= 2
    assert admin.post(f"/api/v1/captures/{capture_id}/cancel").status_code == 409  # already over
