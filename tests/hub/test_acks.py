"""The hub's end-to-end acknowledgement: after each commit, every device hears which of its seqs are
stored (new or already there) and which were dead-lettered for good, through a real Mosquitto."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud_hub.ingest.records import Incoming, rejected_event_seq
from shared.payloads import AckPayload, decode, seq_ranges
from shared.topics import TopicKind
from tests.hub.helpers import TOPICS, event, wait_until
from tests.hub.helpers import Device as FakeDevice


class AckListener:
    def __init__(self, host: str, port: int):
        self.acks: list[AckPayload] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ack-listener")
        self.client.on_connect = lambda c, *_: c.subscribe(TOPICS.all_devices(TopicKind.ACKS), qos=1)
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def _on_message(self, _client, _userdata, message) -> None:
        device = TOPICS.parse(message.topic).device_id
        with self.lock:
            self.acks.append(decode(AckPayload, message.payload, topic_device_id=device))

    def seqs(self, device: str, field: str) -> set[int]:
        with self.lock:
            return {s for a in self.acks if a.device_id == device for lo, hi in getattr(a, field)
                    for s in range(lo, hi + 1)}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_seq_ranges_compress_exactly():
    assert seq_ranges({7, 1, 2, 3, 9, 10}) == [(1, 3), (7, 7), (9, 10)]
    assert seq_ranges([]) == []


def test_a_rejected_event_is_named_only_when_plain():
    def named(topic: str, body: bytes):
        return rejected_event_seq(TOPICS, Incoming(topic, body))

    events = TOPICS.events("cam-1")
    assert named(events, json.dumps({"device_id": "cam-1", "seq": 4, "score": 7}).encode()) == ("cam-1", 4)
    assert named(events, json.dumps({"device_id": "cam-2", "seq": 4}).encode()) is None  # spoofed
    assert named(events, json.dumps({"device_id": "cam-1", "seq": "4"}).encode()) is None  # no coercion
    assert named(events, b"[" * 5000) is None  # RecursionError inside, not out
    assert named(events, b'{"device_id": "cam-1", "seq": ' + b"9" * 4400 + b"}") is None  # huge integer
    assert named(TOPICS.status("cam-1"), b'{"device_id": "cam-1", "seq": 1}') is None
    assert named("nope/devices/cam-1/events", b"{}") is None


def test_ingest_acks_what_it_committed_duplicates_and_rejections_included(app, mosquitto, ingest_factory):
    listener = AckListener(mosquitto.host, mosquitto.port)
    worker = ingest_factory(mosquitto.url)
    cam = FakeDevice(mosquitto.host, mosquitto.port, "cam-ack")
    try:
        for seq in range(10):
            cam.send_event(event("cam-ack", seq))
        cam.send_event(event("cam-ack", 3))  # a resend: already stored, acknowledged again
        bad = json.loads(event("cam-ack", 10).to_bytes())
        bad["score"] = 7  # outside 0..1: dead-lettered for good
        cam.publish(TOPICS.events("cam-ack"), json.dumps(bad).encode())
        wait_until(lambda: listener.seqs("cam-ack", "stored") == set(range(10))
                   and listener.seqs("cam-ack", "rejected") == {10}, what="acks for 0..9 and 10")
        assert worker.snapshot()["acks_sent"] >= 1
        assert all(a.worker == "test-ingest-0" for a in listener.acks)
    finally:
        cam.close()
        listener.close()
