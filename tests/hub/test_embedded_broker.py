"""The same ingest flow on the embedded amqtt broker (what `make demo` runs without Mosquitto)."""

from __future__ import annotations

import pytest

from cloud_hub.broker import EmbeddedBroker
from tests.hub.helpers import Device, event, status, wait_until
from tests.support.mosquitto import free_port


@pytest.fixture
def embedded_broker():
    broker = EmbeddedBroker("127.0.0.1", free_port()).start()
    yield broker
    broker.stop()


def test_events_flow_through_the_embedded_broker_exactly_once(api, embedded_broker, ingest_factory):
    worker = ingest_factory(embedded_broker.url)
    cam = Device(embedded_broker.host, embedded_broker.port, "demo-cam")
    cam.send_status(status("demo-cam"))
    sent = [event("demo-cam", seq) for seq in range(40)]
    for payload in sent:
        cam.send_event(payload)
    cam.send_event(sent[5])  # a redelivery
    cam.publish("edgesight/v1/devices/demo-cam/events", b"[1, 2]")
    cam.send_event(event("demo-cam", 40))

    def stored():
        return api.get("/api/v1/events?device=demo-cam&limit=500").get_json()["items"]

    wait_until(lambda: len(stored()) == 41, what="41 events via amqtt")
    assert sorted(e["seq"] for e in stored()) == list(range(41))
    wait_until(lambda: worker.snapshot()["dead_letters"] == 1, what="the array payload dead-lettered")
    assert worker.snapshot()["duplicates"] == 1
    devices = api.get("/api/v1/devices").get_json()["items"]
    assert [(d["id"], d["state"]) for d in devices] == [("demo-cam", "online")]
    cam.close()
