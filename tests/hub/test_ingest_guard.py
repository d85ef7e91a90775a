"""Ingest that nothing can stop: hostile messages become dead letters with a reason, a failing batch is
replayed message by message, an oversize body is kept as head + size + sha256, a dead writer thread is
restarted by the supervisor and reported on the ingest process's /readyz and /metrics."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from cloud_hub.ingest.records import Incoming, classify
from cloud_hub.ingest.store import BatchWriter
from cloud_hub.models import DeadLetter, Event
from cloud_hub.web.database import ENGINE_KEY
from tests.hub.helpers import TOPICS, Device, event, wait_until
from tests.support.mosquitto import free_port

GOOD = event("hostile-cam", 0).to_bytes()
HOSTILE = {
    "deep nesting": b"[" * 5000,
    "huge integer": GOOD.replace(b'"seq":0', b'"seq":' + b"7" * 4400),
    "lone surrogate zone": GOOD[:-1] + b',"zone":"\\ud800"}',
    "lone surrogate attribute": GOOD.replace(b'"attributes":{}', b'"attributes":{"k":"\\udfff"}'),
}


def stored(app, device_id: str) -> int:
    with app.extensions[ENGINE_KEY].connect() as conn:
        return conn.execute(select(func.count()).select_from(Event).where(Event.device_id == device_id)
                            ).scalar_one()


def dead_letters(app) -> list[DeadLetter]:
    with app.extensions[ENGINE_KEY].connect() as conn:
        return list(conn.execute(select(DeadLetter).order_by(DeadLetter.id)).all())


def test_hostile_messages_on_a_devices_own_topic_do_not_stop_ingest(app, mosquitto, ingest_factory):
    """Before: the first of these killed the ingest-writer thread (0 of 51 later events stored); the
    surrogate stalled SQLite forever (UnicodeEncodeError retried endlessly)."""
    worker = ingest_factory(mosquitto.url)
    cam = Device(mosquitto.host, mosquitto.port, "hostile-cam")
    for body in HOSTILE.values():
        cam.publish(TOPICS.events("hostile-cam"), body)
    for seq in range(1, 52):
        cam.send_event(event("hostile-cam", seq))
    cam.close()
    wait_until(lambda: stored(app, "hostile-cam") == 51, 30, "51 good events after the hostile ones")
    letters = dead_letters(app)
    assert len(letters) == len(HOSTILE)
    assert all(letter.reason.startswith("invalid JSON") for letter in letters), [r.reason for r in letters]
    assert worker.ready() and worker.snapshot()["thread_restarts"] == 0


def test_a_batch_the_driver_cannot_encode_is_replayed_one_by_one(app):
    """A row that slipped past validation (here: a lone surrogate put in by hand) fails the whole batch;
    the replay stores the others and dead-letters it with the driver's reason."""
    now = time.time()
    records = [classify(TOPICS, Incoming(TOPICS.events("enc-cam"), event("enc-cam", i).to_bytes(),
                                         received_at=now)) for i in range(5)]
    records[2].row["zone"] = "\ud800"
    result = BatchWriter(app.extensions[ENGINE_KEY]).write(records)
    assert (result.events_stored, result.dead_letters) == (4, 1)
    (letter,) = dead_letters(app)
    assert letter.reason.startswith(("cannot store: UnicodeEncodeError", "database refused")), letter.reason
    assert stored(app, "enc-cam") == 4


def test_an_oversize_body_is_kept_as_head_size_and_sha256(app, mosquitto, ingest_factory):
    """Before: a 3 MB rejected message was stored whole as a dead letter."""
    ingest_factory(mosquitto.url)
    body = b'{"pad":"' + b"x" * (3 * 1024 * 1024) + b'"}'
    cam = Device(mosquitto.host, mosquitto.port, "big-cam")
    cam.publish(TOPICS.events("big-cam"), body)
    cam.close()
    (letter,) = wait_until(lambda: dead_letters(app), 30, "the oversize dead letter")
    assert letter.reason.startswith("oversize payload")
    assert letter.payload == body[:4096]
    assert (letter.payload_size, letter.payload_sha256) == (len(body), hashlib.sha256(body).hexdigest())


class WriterBug(BaseException):
    """Stands for a bug nothing foresaw: not even ``except Exception`` catches it."""


def metric_values(text: str) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels.get("thread", "")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_dead_writer_thread_is_restarted_and_reported(app, mosquitto, ingest_factory, monkeypatch):
    from cloud_hub.metrics import serve_ingest_metrics

    worker = ingest_factory(mosquitto.url)
    port = free_port()
    server = serve_ingest_metrics(worker, port, addr="127.0.0.1")
    real_write = worker.writer.write
    calls = {"n": 0}

    def write_once_dies(records):
        calls["n"] += 1
        if calls["n"] == 1:
            raise WriterBug("boom")
        return real_write(records)

    monkeypatch.setattr(worker.writer, "write", write_once_dies)
    cam = Device(mosquitto.host, mosquitto.port, "crash-cam")
    for seq in range(20):
        cam.send_event(event("crash-cam", seq))
    cam.close()
    wait_until(lambda: stored(app, "crash-cam") == 20, 30, "all 20 events after the writer restart")
    assert worker.supervisor.status()["ingest-writer"]["restarts"] == 1
    assert worker.supervisor.status()["ingest-writer"]["last_error"] == "WriterBug: boom"
    base = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
        ready = json.load(response)
    assert ready["status"] == "ok" and ready["checks"]["threads"]["ingest-writer"]["restarts"] == 1
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        values = metric_values(response.read().decode())
    assert values[("edgesight_thread_restarts_total", "ingest-writer")] == 1
    assert values[("edgesight_thread_alive", "ingest-writer")] == 1
    assert values[("edgesight_ingest_ready", "")] == 1
    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
        assert response.status == 200
    server.shutdown()


def test_readyz_is_503_while_a_thread_is_dead(app, mosquitto, ingest_factory):
    from cloud_hub.metrics import readiness

    worker = ingest_factory(mosquitto.url)
    worker.supervisor.stop()  # no restarts: the dead thread stays dead
    worker.client.disconnect()  # ends paho's network loop
    wait_until(lambda: not worker.supervisor.status()["ingest-mqtt"]["alive"], 10, "the network loop to end")
    status, body = readiness(worker)
    assert status == 503 and body["checks"]["threads"]["ingest-mqtt"]["alive"] is False
