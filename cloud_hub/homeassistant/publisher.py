"""``cloud-hub homeassistant``: publish the fleet to Home Assistant by MQTT discovery (off unless run).

One process, one MQTT connection (client id ``edgesight-homeassistant``; on the locked-down broker the
``edgesight-homeassistant`` login). Every ``interval_s`` it reads the fleet from the database
(reader.py), renders discovery configs and states (entities.py) and sends what changed, retained:

* a config that is new or different is published; one that is no longer wanted (a zone or line removed
  from the camera, a device deleted) gets an empty retained payload, HA's documented way to delete it.
  Retained configs left by an earlier run are read back at connect, so removal survives restarts;
* states are sent when they change; the camera's topic carries the raw JPEG (HA's MQTT camera);
* the bridge topic says ``online`` and the MQTT last will says ``offline``, so HA marks every entity
  unavailable when this process dies; HA's birth message (``<prefix>/status`` = ``online``) makes it
  send everything again.

A failing poll is logged and counted (``errors``) and the next one runs; a supervisor restarts the
poll thread and paho's network loop if either dies. Ingest is a different process and never waits on
this one.
"""

from __future__ import annotations

import logging
import ssl
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cloud_hub.config import parse_mqtt_url
from cloud_hub.homeassistant.entities import NODE_PREFIX, SnapshotRef, render
from cloud_hub.homeassistant.reader import FleetReader
from cloud_hub.snapshots import SnapshotStore
from cloud_hub.supervisor import Supervisor
from shared.payloads import MAX_SNAPSHOT_BYTES
from shared.topics import HASS_OFFLINE, HASS_ONLINE, QOS_RELIABLE, HassTopics

log = logging.getLogger(__name__)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edgesight")
    except PackageNotFoundError:
        return "unknown"


class HomeAssistantPublisher:
    def __init__(self, engine: Engine, mqtt_url: str, topics: HassTopics, snapshot_dir: str | Path,
                 *, interval_s: float = 1.0, client_id: str = "edgesight-homeassistant",
                 ca_file: str | None = None, settle_s: float = 0.5):
        self.engine = engine
        self.topics = topics
        self.interval_s = interval_s
        self.settle_s = settle_s
        self.store = SnapshotStore(snapshot_dir)
        self.reader = FleetReader(engine)
        self.origin_version = _version()
        self.address = parse_mqtt_url(mqtt_url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if self.address.username:
            self.client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            self.client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
        self.client.will_set(topics.bridge(), HASS_OFFLINE, qos=QOS_RELIABLE, retain=True)
        self.client.suppress_exceptions = True
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._lock = threading.Lock()
        self._configs: dict[str, bytes] = {}  # discovery topic -> what the broker holds (retained)
        self._states: dict[str, bytes | SnapshotRef] = {}  # state topic -> last sent
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self.supervisor = Supervisor("homeassistant-supervisor")
        self.polls = 0
        self.errors = 0

    # ---------------------------------------------------------------------------------- mqtt
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("homeassistant: broker refused the connection: %s", reason_code)
            return
        with self._lock:
            self._states.clear()  # a new session: send every state again
        self._subscribed.clear()
        client.subscribe([(self.topics.discovery_filter(), QOS_RELIABLE),
                          (self.topics.birth(), QOS_RELIABLE)])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("homeassistant: subscription refused (%s): removals of entities from an earlier run "
                      "and HA's birth message will be missed; check the broker ACL", failed[0])
        self._subscribed.set()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        try:
            if msg.topic == self.topics.birth():
                if bytes(msg.payload) == HASS_ONLINE.encode():
                    log.info("homeassistant: Home Assistant came online; sending everything again")
                    with self._lock:
                        self._configs = {t: b"" for t in self._configs}  # forces a resend of each
                        self._states.clear()
                return
            node = msg.topic.split("/")[-3]
            if node.startswith(NODE_PREFIX) and msg.retain:
                with self._lock:  # a config held by the broker (ours, maybe from an earlier run)
                    if msg.payload:
                        self._configs.setdefault(msg.topic, bytes(msg.payload))
        except Exception:  # never into paho's thread
            log.exception("homeassistant: handling %s failed", msg.topic)

    # ------------------------------------------------------------------------------ lifecycle
    def start(self, wait_s: float = 30.0) -> HomeAssistantPublisher:
        self.client.reconnect_delay_set(1, 10)
        self.client.connect_async(self.address.host, self.address.port, 30)
        self.client.loop_start()
        self.supervisor.watch("homeassistant-mqtt", self._network_alive, self.client.loop_start)
        if not self._subscribed.wait(wait_s):
            log.warning("homeassistant: broker %s:%d not reachable yet; retrying",
                        self.address.host, self.address.port)
        self.supervisor.spawn("homeassistant-poll", self._run)
        self.supervisor.start()
        return self

    def _network_alive(self) -> bool:
        thread = self.client._thread
        return thread is not None and thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self.supervisor.stop()
        self.supervisor.join("homeassistant-poll", 10)
        info = self.client.publish(self.topics.bridge(), HASS_OFFLINE, qos=QOS_RELIABLE, retain=True)
        if self.client.is_connected():
            info.wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._subscribed.wait(1.0):
                self._stop.wait(self.settle_s)  # retained configs arrive right after the SUBACK
                break
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # the guard: one bad poll must not end the publisher
                self.errors += 1
                log.exception("homeassistant: poll failed")
            self._stop.wait(self.interval_s)

    # ------------------------------------------------------------------------------------ step
    def step(self) -> int:
        """Read, render, send what changed; returns how many messages were published."""
        if not self.client.is_connected():
            return 0
        with Session(self.engine) as db:
            devices = self.reader.poll(db)
        rendered = render(self.topics, devices, self.origin_version)
        sent = 0
        with self._lock:
            for topic in sorted(set(self._configs) - set(rendered.configs)):
                if self._configs[topic]:
                    sent += self._publish(topic, b"")
                del self._configs[topic]
            for topic, payload in rendered.configs.items():
                if self._configs.get(topic) != payload:
                    sent += self._publish(topic, payload)
                    self._configs[topic] = payload
            # States after configs: HA subscribes to a state topic when it reads the config.
            for topic, value in rendered.states.items():
                if self._states.get(topic) == value:
                    continue
                payload = self._picture(value) if isinstance(value, SnapshotRef) else value
                if payload is None:
                    continue
                sent += self._publish(topic, payload)
                self._states[topic] = value
        self.polls += 1
        return sent

    def _picture(self, ref: SnapshotRef) -> bytes | None:
        path = self.store.resolve(ref.path)
        if path is None:
            return None  # deleted by retention in the meantime: keep the previous picture
        data = path.read_bytes()
        return data if len(data) <= MAX_SNAPSHOT_BYTES else None

    def _publish(self, topic: str, payload: bytes) -> int:
        info = self.client.publish(topic, payload, qos=QOS_RELIABLE, retain=True)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish {topic}: {mqtt.error_string(info.rc)}")
        return 1
