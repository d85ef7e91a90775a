"""Ingest through a real Mosquitto into SQLite and PostgreSQL: exactly once, dead letters, statuses."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from cloud_hub.models import DeadLetter, Device, Event, Telemetry
from cloud_hub.web.database import ENGINE_KEY
from tests.hub.helpers import TOPICS, event, status, telemetry, wait_until
from tests.hub.helpers import Device as FakeDevice


def scalar(app, query):
    with app.extensions[ENGINE_KEY].connect() as conn:
        return conn.execute(query).scalar_one()


def event_count(app) -> int:
    return scalar(app, select(func.count()).select_from(Event))


def test_events_are_stored_exactly_once_and_served_by_the_api(app, api, mosquitto, ingest_factory):
    worker = ingest_factory(mosquitto.url)
    cam = FakeDevice(mosquitto.host, mosquitto.port, "cam-1")
    sent = [event("cam-1", seq, label="car" if seq % 3 == 0 else "person") for seq in range(120)]
    for payload in sent:
        cam.send_event(payload)
    wait_until(lambda: event_count(app) == 120, what="120 stored events")

    ids: list[str] = []
    cursor = None
    while True:
        body = api.get("/api/v1/events", query_string={"limit": 50, "cursor": cursor or ""}).get_json()
        ids += [item["event_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(ids) == sorted(p.event_id for p in sent)
    assert worker.snapshot()["duplicates"] == 0
    cars = api.get("/api/v1/events?label=car&limit=500").get_json()["items"]
    assert {e["event_id"] for e in cars} == {p.event_id for p in sent if p.label == "car"}
    devices = api.get("/api/v1/devices").get_json()["items"]
    assert [d["id"] for d in devices] == ["cam-1"]
    cam.close()


def test_the_same_event_delivered_twice_is_stored_once(app, api, mosquitto, ingest_factory):
    worker = ingest_factory(mosquitto.url)
    cam = FakeDevice(mosquitto.host, mosquitto.port, "cam-2")
    payload = event("cam-2", 7)
    cam.send_event(payload)
    cam.send_event(payload)
    cam.send_event(event("cam-2", 8))
    wait_until(lambda: worker.snapshot()["received"] == 3, what="three messages received")
    assert event_count(app) == 2
    assert worker.snapshot()["duplicates"] == 1
    rows = api.get("/api/v1/events?device=cam-2").get_json()["items"]
    assert sorted(r["seq"] for r in rows) == [7, 8]
    cam.close()


def test_bad_messages_become_dead_letters_and_ingest_continues(app, mosquitto, ingest_factory):
    worker = ingest_factory(mosquitto.url)
    cam = FakeDevice(mosquitto.host, mosquitto.port, "cam-3")
    good = event("cam-3", 1).model_dump(mode="json", by_alias=True)
    wrong_schema = dict(good, score=7.5, event_id="cam-3-bad-schema")
    spoofed = dict(good, device_id="cam-9", event_id="cam-3-spoofed")
    bad = {
        TOPICS.events("cam-3"): [b"{not json", json.dumps(wrong_schema).encode(),
                                 json.dumps(spoofed).encode(), b"x" * (70 * 1024)],
        "edgesight/v1/devices/bad id!/events": [b"{}"],
        "edgesight/v1/devices/cam-3/snapshots/abcdefgh/extra": [b"\xff\xd8\xff"],
    }
    for topic, payloads in bad.items():
        for raw in payloads:
            cam.publish(topic, raw)
    cam.send_event(event("cam-3", 2))
    wait_until(lambda: event_count(app) == 1, what="the good event after the bad ones")
    wait_until(lambda: worker.snapshot()["dead_letters"] == 6, what="six dead letters")

    with app.extensions[ENGINE_KEY].connect() as conn:
        letters = conn.execute(select(DeadLetter.topic, DeadLetter.payload, DeadLetter.reason)
                               .order_by(DeadLetter.id)).all()
    reasons = [r.reason for r in letters]
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1].startswith("schema: score")
    assert reasons[2].startswith("device id mismatch")
    assert reasons[3].startswith("oversize payload")
    assert reasons[4].startswith("unknown topic: invalid device id 'bad id!'")
    assert reasons[5].startswith("unknown topic: unknown topic kind")
    assert letters[0].payload == b"{not json"  # kept whole for later inspection
    cam.close()


def test_status_and_last_will_drive_online_offline(app, api, mosquitto, ingest_factory):
    ingest_factory(mosquitto.url)
    cam = FakeDevice(mosquitto.host, mosquitto.port, "cam-4", will=True)
    cam.send_status(status("cam-4", uptime_s=12.0, cameras=["front"]))
    cam.send_telemetry(telemetry("cam-4", fps_processed=8.0))

    def device():
        items = api.get("/api/v1/devices").get_json()["items"]
        return items[0] if items else None

    wait_until(lambda: (device() or {}).get("state") == "online", what="cam-4 online")
    wait_until(lambda: (device() or {}).get("fps") == 8.0, what="telemetry fps on the device")
    assert device()["model"] == "crop-classifier@1.0.0"
    assert scalar(app, select(func.count()).select_from(Telemetry)) == 1
    cam.drop()
    wait_until(lambda: device()["state"] == "offline", what="last will marks cam-4 offline")
    assert device()["online"] is False
    assert device()["model"] == "crop-classifier@1.0.0"  # a bare will keeps what the device reported
    assert scalar(app, select(func.count()).select_from(Device)) == 1


def test_retained_status_is_picked_up_by_a_late_ingest(app, api, mosquitto, ingest_factory):
    cam = FakeDevice(mosquitto.host, mosquitto.port, "cam-5")
    cam.send_status(status("cam-5"))
    ingest_factory(mosquitto.url)
    wait_until(lambda: [d["state"] for d in api.get("/api/v1/devices").get_json()["items"]] == ["online"],
               what="retained status applied")
    cam.close()
