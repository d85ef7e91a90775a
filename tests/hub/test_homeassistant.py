"""Home Assistant discovery through a real Mosquitto: a device goes online and offline, objects enter a
zone and cross a line, an event carries a snapshot; the hub's ingest stores it and the hub's publisher
(cloud_hub.homeassistant) turns it into discovery configs and states. Every config is checked against HA's
documented discovery schema (tests/support/hass_schema.py); every state against what was sent."""

from __future__ import annotations

import json
import threading
import time

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud_hub.homeassistant.entities import node_id
from cloud_hub.homeassistant.publisher import HomeAssistantPublisher
from cloud_hub.homeassistant.reader import IdCursor
from cloud_hub.models import DeadLetter, Event
from cloud_hub.web.database import ENGINE_KEY
from shared.camera import CameraGeometry, ConfigStatePayload, LineGeometry, ZoneGeometry
from shared.topics import HassTopics, hass_slug
from tests.hub.helpers import TOPICS, event, status, wait_until
from tests.hub.helpers import Device as FakeDevice
from tests.support.hass_schema import validate_discovery

HASS = HassTopics()
DEVICE = "cam-ha.1"
NODE = node_id(DEVICE)


class Watcher:
    """Subscribes to HA's discovery prefix and the hub's HA states; keeps the last payload per topic."""

    def __init__(self, host: str, port: int, filters: tuple[str, ...] = (f"{HASS.discovery_prefix}/#",
                                                                       HASS.all_states())):
        self.last: dict[str, bytes] = {}
        self.history: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watcher-{time.monotonic_ns()}")
        self.client.on_connect = lambda c, *_: c.subscribe([(f, 1) for f in filters])
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def _on_message(self, _client, _userdata, message) -> None:
        with self.lock:
            self.last[message.topic] = bytes(message.payload)
            self.history.append((message.topic, bytes(message.payload), bool(message.retain)))

    def get(self, topic: str) -> bytes | None:
        with self.lock:
            return self.last.get(topic)

    def configs(self) -> dict[str, dict]:
        with self.lock:
            return {t: json.loads(p) for t, p in self.last.items()
                    if t.startswith(HASS.discovery_prefix + "/") and t.endswith("/config") and p}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def geometry(zones: list[str], lines: list[str]) -> dict[str, CameraGeometry]:
    square = [(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9)]
    return {"street": CameraGeometry(
        zones=[ZoneGeometry(name=z, polygon=square) for z in zones],
        lines=[LineGeometry(name=n, a=(0.5, 0.0), b=(0.5, 1.0), positive="in", negative="out")
               for n in lines],
    )}


def config_state(config_id: str, cameras: dict[str, CameraGeometry]) -> bytes:
    return ConfigStatePayload(device_id=DEVICE, ts=time.time(), config_id=config_id, state="applied",
                              cameras=cameras).to_bytes()


def jpeg(seed: int) -> bytes:
    image = np.full((48, 64, 3), seed % 255, dtype=np.uint8)
    cv2.rectangle(image, (8, 8), (40, 30), (0, 0, 255), -1)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


@pytest.fixture
def publisher_factory(app):
    made: list[HomeAssistantPublisher] = []
    settings = app.config["HUB_SETTINGS"]

    def start(mqtt_url: str) -> HomeAssistantPublisher:
        publisher = HomeAssistantPublisher(app.extensions[ENGINE_KEY], mqtt_url, HASS, settings.snapshot_dir,
                                           interval_s=0.2, client_id=f"test-ha-{len(made)}").start(10)
        made.append(publisher)
        return publisher

    yield start
    for publisher in made:
        publisher.stop()


def state_topic(*parts: str) -> str:
    return HASS.state(NODE, *parts)


def test_schema_checker_refuses_what_home_assistant_refuses():
    """The checker can fail: each payload here breaks one documented rule."""
    device = {"identifiers": ["x"], "name": "x"}
    good = {"state_topic": "a/b", "unique_id": "u", "device": device}
    validate_discovery("homeassistant/sensor/n/o/config", good)
    bad = [
        ("homeassistant/sensor/n/o/config", {"unique_id": "u"}),  # no state_topic
        ("homeassistant/sensor/n/o/config", good | {"stat_t": "a/b"}),  # abbreviations / unknown keys
        ("homeassistant/sensor/n/o/config", good | {"state_class": "sometimes"}),
        ("homeassistant/binary_sensor/n/o/config", good | {"device_class": "crowd"}),
        ("homeassistant/sensor/n/o/config", good | {"device": {"name": "no identifiers"}}),
        ("homeassistant/sensor/n/o/config",
         good | {"availability_topic": "a", "availability": [{"topic": "b"}]}),
        ("homeassistant/sensor/n/o/config", good | {"state_topic": "a/#/b"}),
        ("homeassistant/camera/n/o/config", {"name": "no topic"}),
        ("homeassistant/sensor/n/o/config", good | {"suggested_display_precision": "0"}),  # wrong type
        ("homeassistant/sensor/n.x/o/config", good),  # node ids are [a-zA-Z0-9_-]
    ]
    for topic, payload in bad:
        with pytest.raises((ValidationError, ValueError)):
            validate_discovery(topic, payload)


def test_slugs_are_topic_safe_and_distinct():
    for name in ("door", "Door A", "door_a", "a/b", "x#", "+", "ünïcode", "é" * 80, ""):
        slug = hass_slug(name)
        assert slug and all(c.isascii() and (c.isalnum() or c in "_-") for c in slug), slug
    assert hass_slug("Door A") != hass_slug("door_a")
    assert hass_slug("door") == "door"


def test_id_cursor_rereads_ids_that_commit_late():
    cursor = IdCursor(10)
    cursor.advance([11, 14], now=0.0)
    assert cursor.last == 14 and cursor.pending_gaps() == [12, 13]
    cursor.advance([13], now=1.0)  # committed late: read once, no longer a gap
    assert cursor.pending_gaps() == [12]
    cursor.advance([], now=100.0)  # given up after the TTL
    assert cursor.pending_gaps() == []


def test_home_assistant_discovery_follows_the_fleet(app, mosquitto, ingest_factory, publisher_factory):
    watcher = Watcher(mosquitto.host, mosquitto.port)
    ingest_factory(mosquitto.url)
    device = FakeDevice(mosquitto.host, mosquitto.port, DEVICE, will=True)
    device.send_status(status(DEVICE, cameras=["street"]))
    first = config_state("c1", geometry(["door", "Car Park/2"], ["gate"]))
    device.publish(TOPICS.config_state(DEVICE), first, retain=True)
    publisher = publisher_factory(mosquitto.url)

    zones = {"door": "door", "Car Park/2": hass_slug("Car Park/2")}
    expected = {f"{HASS.discovery_prefix}/binary_sensor/{NODE}/online/config",
                f"{HASS.discovery_prefix}/camera/{NODE}/street_snapshot/config",
                f"{HASS.discovery_prefix}/sensor/{NODE}/street_line_gate_in/config",
                f"{HASS.discovery_prefix}/sensor/{NODE}/street_line_gate_out/config"}
    for slug in zones.values():
        expected |= {f"{HASS.discovery_prefix}/binary_sensor/{NODE}/street_zone_{slug}_occupied/config",
                     f"{HASS.discovery_prefix}/sensor/{NODE}/street_zone_{slug}_count/config"}
    configs = wait_until(lambda: (c := watcher.configs()) and set(c) >= expected and c, 20, "configs")
    assert set(configs) == expected

    # Every config is what HA's discovery schema accepts, each entity has its own unique_id, all share one
    # device, and every topic the configs name is one the hub publishes.
    parsed = {topic: validate_discovery(topic, payload) for topic, payload in configs.items()}
    unique_ids = [p[3].unique_id for p in parsed.values()]
    assert all(unique_ids) and len(set(unique_ids)) == len(unique_ids)
    for _component, node, object_id, entity in parsed.values():
        assert node == NODE and entity.device.identifiers == [f"edgesight_{DEVICE}"]
        assert entity.device.sw_version == "0.1.0" and entity.origin.name == "edgesight hub"
        assert entity.availability and entity.availability[0].topic == HASS.bridge()
        if object_id != "online":  # everything else also follows the device's own availability
            assert entity.availability_mode == "all"
            assert [a.topic for a in entity.availability] == [HASS.bridge(), state_topic("availability")]
    online = parsed[f"{HASS.discovery_prefix}/binary_sensor/{NODE}/online/config"][3]
    assert online.device_class == "connectivity"
    counter = parsed[f"{HASS.discovery_prefix}/sensor/{NODE}/street_line_gate_in/config"][3]
    assert counter.state_class == "total_increasing"
    occupied = parsed[f"{HASS.discovery_prefix}/binary_sensor/{NODE}/street_zone_door_occupied/config"][3]
    assert occupied.device_class == "occupancy"
    camera = parsed[f"{HASS.discovery_prefix}/camera/{NODE}/street_snapshot/config"][3]
    assert camera.topic == state_topic("street", "snapshot") and camera.image_encoding is None  # raw bytes

    # Online: the connectivity sensor reads its payload_on; the bridge is up.
    wait_until(lambda: watcher.get(online.state_topic) == online.payload_on.encode(), 10, "online -> ON")
    assert watcher.get(HASS.bridge()) == b"online"
    occupied_topic, count_topic = occupied.state_topic, state_topic("street", "zone", "door", "count")
    wait_until(lambda: (watcher.get(count_topic), watcher.get(occupied_topic)) == (b"0", b"OFF"), 10, "empty")

    # Two people enter the door zone, one leaves: occupancy 1. Crossings: in, in, out.
    seq = iter(range(1, 1000))
    for track, phase in ((1, "start"), (2, "start"), (1, "end")):
        device.send_event(event(DEVICE, next(seq), kind="zone", phase=phase, zone="door", line=None,
                                direction=None, track_id=track, camera="street"))
    for track, direction in ((3, "in"), (4, "in"), (5, "out")):
        device.send_event(event(DEVICE, next(seq), kind="line", line="gate", direction=direction,
                                track_id=track, camera="street"))
    in_topic, out_topic = counter.state_topic, state_topic("street", "line", "gate", "out")
    wait_until(lambda: watcher.get(count_topic) == b"1", 10, "occupancy count 1")
    assert watcher.get(occupied_topic) == b"ON"
    wait_until(lambda: (watcher.get(in_topic), watcher.get(out_topic)) == (b"2", b"1"), 10, "counters 2/1")
    # A resent event (same event id) is stored once, so it is counted once.
    again = event(DEVICE, 4, kind="line", line="gate", direction="in", track_id=3, camera="street")
    device.send_event(again)
    device.send_event(event(DEVICE, next(seq), kind="line", line="gate", direction="in", track_id=6,
                            camera="street"))
    wait_until(lambda: watcher.get(in_topic) == b"3", 10, "counter increased to 3")
    time.sleep(1.0)
    values = [int(p) for t, p, _ in watcher.history if t == in_topic]
    assert values == sorted(values) and values[-1] == 3  # total_increasing never went down

    # The last event's snapshot: the camera topic carries the JPEG itself.
    picture = jpeg(7)
    shot = event(DEVICE, next(seq), kind="object", phase="start", line=None, direction=None, track_id=9,
                 camera="street", has_snapshot=True)
    device.send_event(shot)
    device.publish(TOPICS.snapshot(DEVICE, shot.event_id), picture)
    got = wait_until(lambda: watcher.get(camera.topic), 10, "camera picture")
    assert got == picture
    decoded = cv2.imdecode(np.frombuffer(got, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (48, 64, 3)

    # A zone removed from the camera's config: its entities get an empty retained config (HA deletes them).
    device.publish(TOPICS.config_state(DEVICE), config_state("c2", geometry(["door"], ["gate"])), retain=True)
    removed = [t for t in expected if f"zone_{zones['Car Park/2']}_" in t]
    wait_until(lambda: all(watcher.get(t) == b"" for t in removed), 10, "empty configs for the removed zone")
    assert all(watcher.get(t) for t in expected - set(removed))  # the rest stay

    # Home Assistant restarts (its birth message): every config and state is sent again.
    with watcher.lock:
        mark = len(watcher.history)
    device.publish(HASS.birth(), b"online")

    def resent() -> set[str]:
        with watcher.lock:
            return {t for t, p, _ in watcher.history[mark:] if p}

    wait_until(lambda: resent() >= (expected - set(removed)) | {in_topic, out_topic, camera.topic}, 10,
               "everything sent again after HA's birth")

    # The device vanishes (its last will): Online -> OFF, its occupancy is forgotten (a restarted agent
    # re-reports who is inside).
    device.drop()
    wait_until(lambda: watcher.get(online.state_topic) == online.payload_off.encode(), 15, "offline -> OFF")
    wait_until(lambda: watcher.get(count_topic) == b"0", 10, "occupancy cleared when offline")

    # A publisher restart neither resurrects the removed zone nor resends unchanged configs as new ones;
    # its stop says offline on the bridge (entities unavailable) and the next start online again.
    publisher.stop()
    wait_until(lambda: watcher.get(HASS.bridge()) == b"offline", 10, "bridge offline")
    later = Watcher(mosquitto.host, mosquitto.port)  # what a Home Assistant starting now would read
    publisher_factory(mosquitto.url)
    wait_until(lambda: later.get(HASS.bridge()) == b"online", 10, "bridge online again")
    time.sleep(1.0)
    assert set(later.configs()) == expected - set(removed)
    assert later.get(in_topic) == b"3" and later.get(out_topic) == b"1"  # totals from the database
    assert later.get(camera.topic) == picture
    assert publisher.errors == 0
    later.close()
    watcher.close()


def test_home_assistant_discovery_is_off_by_default(app, mosquitto, ingest_factory):
    """Ingest and a device working as usual, no `cloud-hub homeassistant`: nothing for HA on the broker."""
    watcher = Watcher(mosquitto.host, mosquitto.port, filters=("#",))
    ingest_factory(mosquitto.url)
    device = FakeDevice(mosquitto.host, mosquitto.port, DEVICE)
    device.send_status(status(DEVICE, cameras=["street"]))
    for seq in range(1, 6):
        device.send_event(event(DEVICE, seq, kind="line", line="gate", direction="in", camera="street"))
    engine = app.extensions[ENGINE_KEY]

    def stored() -> int:
        with Session(engine) as db:
            return db.scalar(select(func.count()).select_from(Event))

    wait_until(lambda: stored() == 5, 15, "events stored")
    time.sleep(1.0)
    with watcher.lock:
        topics = {t for t, _, _ in watcher.history}
    assert topics and not [t for t in topics if t.startswith((HASS.discovery_prefix + "/", HASS.root + "/"))]
    device.close()
    watcher.close()


def test_malformed_and_unknown_input_never_stops_ingest_or_the_publisher(app, mosquitto, ingest_factory,
                                                                         publisher_factory):
    watcher = Watcher(mosquitto.host, mosquitto.port)
    ingest_factory(mosquitto.url)
    publisher = publisher_factory(mosquitto.url)
    device = FakeDevice(mosquitto.host, mosquitto.port, DEVICE)
    device.send_status(status(DEVICE, cameras=["street"]))
    hostile = [
        (TOPICS.events(DEVICE), b"{not json"),
        (TOPICS.events(DEVICE), json.dumps({"device_id": DEVICE, "seq": "1"}).encode()),
        (TOPICS.config_state(DEVICE), b"[]"),
        (f"{TOPICS.prefix}/devices/{DEVICE}/bogus", b"?"),
        (TOPICS.snapshot(DEVICE, "no-such-event-0001"), b"not a jpeg"),
        (HASS.birth(), b"online"),  # HA's birth: everything is sent again, nothing breaks
        (HASS.birth(), b"\xff\xfe"),
    ]
    for topic, payload in hostile:
        device.publish(topic, payload)
    # Valid on the wire but odd: names with topic wildcards, separators, unicode; an unknown direction.
    odd_zone, odd_line = "zone/#+ ünï", "line +/#"
    seq = iter(range(1, 1000))
    device.send_event(event(DEVICE, next(seq), kind="zone", phase="start", zone=odd_zone, line=None,
                            direction=None, track_id=1, camera="cam/#1"))
    device.send_event(event(DEVICE, next(seq), kind="line", line=odd_line, direction="sideways", track_id=2,
                            camera="cam/#1"))
    device.send_event(event(DEVICE, next(seq), kind="zone", phase="end", zone="never-entered", line=None,
                            direction=None, track_id=3, camera="street"))
    for _ in range(5):
        device.send_event(event(DEVICE, next(seq), kind="line", line="gate", direction="in", camera="street"))
    engine = app.extensions[ENGINE_KEY]

    def counts() -> tuple[int, int]:
        with Session(engine) as db:
            return (db.scalar(select(func.count()).select_from(Event)),
                    db.scalar(select(func.count()).select_from(DeadLetter)))

    wait_until(lambda: counts()[0] == 8, 15, "every good event stored")
    wait_until(lambda: counts()[1] >= 4, 15, "the bad ones dead-lettered")
    gate_in = state_topic("street", "line", "gate", "in")
    wait_until(lambda: watcher.get(gate_in) == b"5", 10, "the publisher still counts")
    cam, zone = hass_slug("cam/#1"), hass_slug(odd_zone)
    odd = wait_until(lambda: {t: c for t, c in watcher.configs().items() if f"/{cam}_" in t and
                               (f"zone_{zone}_" in t or "line_" in t)}, 10, "entities for odd names")
    for topic, payload in odd.items():
        validate_discovery(topic, payload)
    assert watcher.get(state_topic(cam, "zone", zone, "count")) == b"1"
    assert watcher.get(state_topic(cam, "line", hass_slug(odd_line), "sideways")) == b"1"
    assert publisher.errors == 0 and publisher.polls > 0
    assert publisher.supervisor.total_restarts() == 0
    device.close()
    watcher.close()
