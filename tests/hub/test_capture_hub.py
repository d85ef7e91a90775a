"""Site capture on the hub side (issue 24): retention and the disk cap cover captured frames, the CLI and
the device page start captures for admins only, each logged; a request the broker refuses fails loudly."""

from __future__ import annotations

import os
import threading
import time

import paho.mqtt.client as mqtt
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub.capture.models import Capture, CaptureFrame
from cloud_hub.models import Device, Snapshot
from cloud_hub.retention import Retention
from cloud_hub.snapshots import SnapshotStore
from cloud_hub.web.database import ENGINE_KEY
from shared.capture import CaptureRequest
from shared.payloads import decode
from shared.topics import Topics


def jpeg(tag: str, size: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + (tag.encode() * size)[:size]


def seed(app, device_id: str = "cam-1") -> None:
    with Session(app.extensions[ENGINE_KEY]) as db:
        db.add(Device(id=device_id, first_seen=time.time(), last_seen=time.time(), state="online"))
        db.commit()


def add_capture(db: Session, capture_id: str, device_id: str = "cam-1", state: str = "complete") -> None:
    now = time.time()
    db.add(Capture(id=capture_id, device_id=device_id, requested_by="admin", requested_at=now, count=10,
                   interval_s=1, max_bytes=65536, mode="uniform", timeout_s=60, state=state,
                   rejected_frames=[], frames_received=0, device_captured=0, last_progress_at=now))


def test_retention_and_the_disk_cap_cover_captured_frames(app):
    seed(app)
    store = SnapshotStore(app.config["HUB_SETTINGS"].snapshot_dir)
    now = time.time()
    engine = app.extensions[ENGINE_KEY]
    with Session(engine) as db:
        add_capture(db, "cap-retention01")
        db.flush()
        for n in range(12):  # 100 KiB each; the first four are 40 days old
            sha, rel = store.put(jpeg(f"frame{n:03d}", 100 * 1024))
            age = 40 * 86400 if n < 4 else 100 - n
            db.add(CaptureFrame(capture_id="cap-retention01", frame=n, ts=now - age, width=64, height=48,
                                sha256=sha, path=rel, size_bytes=100 * 1024, received_at=now - age))
        # one event snapshot with the same bytes as an old captured frame: the file stays for it
        sha, rel = store.put(jpeg("frame000", 100 * 1024))
        db.add(Snapshot(device_id="cam-1", event_id="evt-shared-0001", sha256=sha, path=rel,
                        size_bytes=100 * 1024, received_at=now - 5))
        db.commit()
    for path in store.root.rglob("*.jpg"):  # old enough that the orphan sweep would take strays
        os.utime(path, (now - 7200, now - 7200))

    report = Retention(engine, str(store.root), days=30, cap_mb=None).run()
    assert report["snapshots"] == 4 and report["orphans"] == 0
    with Session(engine) as db:
        frames = sorted(db.scalars(select(CaptureFrame.frame)))
        shared = db.scalar(select(Snapshot.path))
    assert frames == list(range(4, 12))
    assert store.resolve(shared) is not None  # still used by the event snapshot
    assert len(list(store.root.rglob("*.jpg"))) == 9  # 8 frames + the shared file

    Retention(engine, str(store.root), days=None, cap_mb=0.5).run()  # 512 KiB: the oldest go first
    assert store.usage_bytes() <= 512 * 1024
    with Session(engine) as db:
        frames = sorted(db.scalars(select(CaptureFrame.frame)))
        snapshots = list(db.scalars(select(Snapshot.event_id)))
    assert frames == list(range(12 - len(frames), 12)) and len(frames) >= 4  # the newest frames survive
    assert snapshots == ["evt-shared-0001"]  # 5 s old: newer than every remaining frame, so it stays


def test_cli_starts_captures_for_admins_only_and_logs_them(app, runner, auth, mosquitto):
    seed(app)
    auth.create("alice", "admin")
    auth.create("victor", "viewer")
    settings = app.config["HUB_SETTINGS"]
    app.config["HUB_SETTINGS"] = settings.model_copy(update={"mqtt_url": mosquitto.url})
    got: list[bytes] = []
    subscribed = threading.Event()
    spy = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="capture-spy")
    spy.on_connect = lambda c, *_: c.subscribe(Topics().capture_request("cam-1"), 1)
    spy.on_subscribe = lambda *_: subscribed.set()
    spy.on_message = lambda _c, _u, msg: got.append(bytes(msg.payload))
    spy.connect(mosquitto.host, mosquitto.port)
    spy.loop_start()
    try:
        assert subscribed.wait(10)
        refused = runner.invoke(args=["capture", "start", "cam-1", "--count", "5", "--interval", "1",
                                      "--by", "victor"])
        assert refused.exit_code != 0 and "'victor' is not an admin user" in refused.output
        unknown = runner.invoke(args=["capture", "start", "cam-9", "--count", "5", "--interval", "1"])
        assert unknown.exit_code != 0 and "unknown device 'cam-9'" in unknown.output
        started = runner.invoke(args=["capture", "start", "cam-1", "--count", "5", "--interval", "1",
                                      "--mode", "motion", "--by", "alice"])
        assert started.exit_code == 0, started.output
        capture_id = started.stdout.split(":")[0]  # stdout: log lines go to stderr
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        request = decode(CaptureRequest, got[0])
        assert (request.capture_id, request.count, request.mode.value) == (capture_id, 5, "motion")
        busy = runner.invoke(args=["capture", "start", "cam-1", "--count", "5", "--interval", "1"])
        assert busy.exit_code != 0 and f"already has capture {capture_id} in progress" in busy.output
    finally:
        spy.loop_stop()
        spy.disconnect()
    listed = runner.invoke(args=["capture", "list"]).output
    assert capture_id in listed and "requested" in listed and "0/5" in listed and "by alice" in listed
    shown = runner.invoke(args=["capture", "show", capture_id]).output
    assert '"requested_by": "alice"' in shown and '"device_id": "cam-1"' in shown


def test_a_request_the_broker_refuses_leaves_a_failed_capture(app, runner):
    seed(app)
    settings = app.config["HUB_SETTINGS"]
    app.config["HUB_SETTINGS"] = settings.model_copy(update={"mqtt_url": "mqtt://127.0.0.1:9"})
    result = runner.invoke(args=["capture", "start", "cam-1", "--count", "5", "--interval", "1"])
    assert result.exit_code != 0 and "unreachable" in result.output
    with Session(app.extensions[ENGINE_KEY]) as db:
        row = db.scalars(select(Capture)).one()
    assert row.state == "failed" and row.reason.startswith("request not delivered: broker 127.0.0.1:9")
    assert row.requested_by.startswith("cli:")


def test_device_page_form_is_for_admins(app, client, auth, mosquitto):
    seed(app)
    settings = app.config["HUB_SETTINGS"]
    app.config["HUB_SETTINGS"] = settings.model_copy(update={"mqtt_url": mosquitto.url})
    auth.create("victor", "viewer")
    auth.create("alice", "admin")
    auth.login("victor")
    page = client.get("/devices/cam-1").get_data(as_text=True)
    assert 'id="captures"' in page and "Start capture" not in page
    denied = client.post("/devices/cam-1/captures", data={"csrf_token": auth.csrf(), "count": "3",
                                                          "interval_s": "1"})
    assert denied.status_code == 403
    auth.logout()
    auth.login("alice")
    assert "Start capture" in client.get("/devices/cam-1").get_data(as_text=True)
    form = {"csrf_token": auth.csrf(), "count": "3", "interval_s": "1", "mode": "uniform", "max_kib": "64"}
    done = client.post("/devices/cam-1/captures", data=form)
    assert done.status_code == 302 and done.headers["Location"].endswith("/devices/cam-1#captures")
    page = client.get("/devices/cam-1").get_data(as_text=True)
    assert "capture cap-" in page and "0 / 3" in page and "alice" in page
    with Session(app.extensions[ENGINE_KEY]) as db:
        row = db.scalars(select(Capture)).one()
    assert (row.requested_by, row.count, row.max_bytes, row.state) == ("alice", 3, 64 * 1024, "requested")
