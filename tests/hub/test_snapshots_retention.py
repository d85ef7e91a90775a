"""Snapshots over MQTT stored content-addressed; retention and the disk cap delete in order."""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import func, select

from cloud_hub.ingest.records import Incoming, TsWindow, classify
from cloud_hub.ingest.store import BatchWriter
from cloud_hub.models import DeadLetter, Event, Snapshot, Telemetry
from cloud_hub.retention import Retention
from cloud_hub.snapshots import SnapshotStore
from cloud_hub.web.database import ENGINE_KEY
from tests.hub.helpers import TOPICS, Device, event, telemetry, wait_until


def jpeg(tag: bytes, size: int = 1000) -> bytes:
    return b"\xff\xd8\xff\xe0" + (tag * size)[:size]


def test_snapshot_over_mqtt_is_stored_by_content_and_served(app, api, mosquitto, ingest_factory):
    worker = ingest_factory(mosquitto.url)
    cam = Device(mosquitto.host, mosquitto.port, "snap-cam")
    first, second = event("snap-cam", 1, has_snapshot=True), event("snap-cam", 2, has_snapshot=True)
    image = jpeg(b"frame")
    cam.send_event(first)
    cam.publish(TOPICS.snapshot("snap-cam", first.event_id), image)
    cam.publish(TOPICS.snapshot("snap-cam", second.event_id), image)  # same bytes: one file
    cam.send_event(second)
    wait_until(lambda: worker.snapshot()["snapshots"] == 2, what="two snapshot rows")
    sha = hashlib.sha256(image).hexdigest()
    root = SnapshotStore(app.config["HUB_SETTINGS"].snapshot_dir).root
    assert [p.name for p in root.rglob("*.jpg")] == [f"{sha}.jpg"]
    items = api.get("/api/v1/events?device=snap-cam").get_json()["items"]
    assert all(i["snapshot_url"] for i in items)
    response = api.get(items[0]["snapshot_url"])
    assert response.data == image
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    cam.close()


# Rows of all ages, as a hub whose ts window an operator widened would have stored them.
WIDE = TsWindow(past_s=365 * 86400, future_s=365 * 86400)


def store(app, store_dir, messages, received_at):
    writer = BatchWriter(app.extensions[ENGINE_KEY], SnapshotStore(store_dir))
    writer.write([classify(TOPICS, Incoming(t, raw, received_at=received_at), WIDE) for t, raw in messages])


def table_count(app, model) -> int:
    with app.extensions[ENGINE_KEY].connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_retention_deletes_old_rows_and_files_and_keeps_new_ones(app):
    snapshot_dir = app.config["HUB_SETTINGS"].snapshot_dir
    now = time.time()
    old, new = now - 40 * 86400, now - 3600
    messages = []
    for seq, ts in enumerate([old] * 30 + [new] * 10):
        payload = event("ret-cam", seq, ts=ts, has_snapshot=True)
        messages += [(TOPICS.events("ret-cam"), payload.to_bytes()),
                     (TOPICS.snapshot("ret-cam", payload.event_id), jpeg(str(seq).encode()))]
    messages += [(TOPICS.telemetry("ret-cam"), telemetry("ret-cam", ts=old).to_bytes()),
                 (TOPICS.telemetry("ret-cam"), telemetry("ret-cam", ts=new).to_bytes())]
    store(app, snapshot_dir, messages, old)
    with app.extensions[ENGINE_KEY].begin() as conn:  # snapshots age by arrival: make 30 of them old
        conn.execute(Snapshot.__table__.update().where(Snapshot.event_id.in_(
            [f"ret-cam-{s:08d}" for s in range(10)] + [f"ret-cam-{s:08d}" for s in range(10, 30)]))
            .values(received_at=old))
    store(app, snapshot_dir, [(TOPICS.events("ret-cam"), b"{broken")], old)

    report = Retention(app.extensions[ENGINE_KEY], snapshot_dir, days=30, cap_mb=None).run()
    assert report["events"] == 30 and report["telemetry"] == 1 and report["dead_letters"] == 1
    assert report["snapshots"] == 30
    assert table_count(app, Event) == 10
    assert table_count(app, Telemetry) == 1
    assert table_count(app, DeadLetter) == 0
    assert len(list(SnapshotStore(snapshot_dir).root.rglob("*.jpg"))) == 10


def test_disk_cap_removes_the_oldest_snapshots_first(app):
    snapshot_dir = app.config["HUB_SETTINGS"].snapshot_dir
    now = time.time()
    for seq in range(30):  # 30 files of 100 KiB, arriving one per second
        payload = event("cap-cam", seq, has_snapshot=True)
        store(app, snapshot_dir, [(TOPICS.events("cap-cam"), payload.to_bytes()),
                                  (TOPICS.snapshot("cap-cam", payload.event_id),
                                   jpeg(f"{seq:04d}".encode(), 100 * 1024))], now)
        with app.extensions[ENGINE_KEY].begin() as conn:
            conn.execute(Snapshot.__table__.update().where(Snapshot.event_id == payload.event_id)
                         .values(received_at=now - 100 + seq))
    retention = Retention(app.extensions[ENGINE_KEY], snapshot_dir, days=None, cap_mb=1.0)
    retention.run()
    store_ = SnapshotStore(snapshot_dir)
    assert store_.usage_bytes() <= 1024 * 1024
    with app.extensions[ENGINE_KEY].connect() as conn:
        kept = sorted(conn.execute(select(Snapshot.event_id)).scalars())
    assert kept == [f"cap-cam-{s:08d}" for s in range(30 - len(kept), 30)]  # the newest survive
    assert len(kept) >= 9
    assert table_count(app, Event) == 30  # the cap trims pictures, not events


def test_retention_command(runner, app):
    result = runner.invoke(args=["retention", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "events=0" in result.output


def test_a_snapshot_without_storage_is_a_dead_letter_not_dropped(app):
    writer = BatchWriter(app.extensions[ENGINE_KEY])  # no snapshot directory
    result = writer.write([classify(TOPICS, Incoming(TOPICS.snapshot("cam-x", "abcdefgh"), jpeg(b"x")))])
    assert (result.snapshots, result.dead_letters) == (0, 1)
    with app.extensions[ENGINE_KEY].connect() as conn:
        reason = conn.execute(select(DeadLetter.reason)).scalar_one()
    assert reason == "snapshot storage is not configured on this hub"
