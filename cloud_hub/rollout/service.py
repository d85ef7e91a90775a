"""``cloud-hub rollout serve``: the rollout controller and the chunk server in their own process.

One MQTT connection (client id ``edgesight-rollout``, the broker's control role): chunk requests go to
the chunk server's thread, device state reports and campaign ticks to the controller's thread. Ingest
runs elsewhere, so a fleet downloading a model does not slow event storage.

Every MQTT handler is guarded: a message that fails in any way is counted in ``state_errors`` and
logged, never raised into paho's network thread; a supervisor restarts the network loop and the
controller thread should either die anyway (``edgesight_thread_restarts_total``).
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cloud_hub.config import parse_mqtt_url
from cloud_hub.rollout.chunks import ChunkGrant, ChunkServer
from cloud_hub.rollout.controller import Controller, Grant, apply_state
from cloud_hub.rollout.registry import blob_path
from cloud_hub.supervisor import Supervisor
from shared.payloads import ChunkRequest, ModelStatePayload, PayloadError, decode
from shared.topics import TopicError, TopicKind, Topics

log = logging.getLogger(__name__)


class RolloutService:
    def __init__(
        self,
        engine: Engine,
        mqtt_url: str,
        prefix: str,
        blobs: Path,
        signing_key,
        client_id: str = "edgesight-rollout",
        tick_s: float = 0.25,
        max_bytes_per_s: float | None = None,
        ca_file: str | None = None,
        device_timeout_s: float | None = 3600.0,
    ):
        self.engine = engine
        self.topics = Topics(prefix)
        self.blobs = blobs
        self.tick_s = tick_s
        self.address = parse_mqtt_url(mqtt_url)
        # A persistent session: device reports sent while this service restarts wait in the broker.
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if self.address.username:
            self.client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            self.client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)  # None: system CAs
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.suppress_exceptions = True  # a handler's exception must not end the network loop
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.controller = Controller(self._publish_offer, signing_key, device_timeout_s)
        self.chunks = ChunkServer(self._publish_chunk, self._grant, self.topics, max_bytes_per_s)
        self._grants: dict[str, Grant] = {}
        self._states: queue.Queue[ModelStatePayload] = queue.Queue()
        self._stop = threading.Event()
        self.supervisor = Supervisor("rollout-supervisor")
        self._connected = threading.Event()
        self.state_errors = 0

    # ---------------------------------------------------------------------------------- mqtt
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("rollout: broker refused the connection: %s", reason_code)
            return
        client.subscribe(
            [(self.chunks.request_filter, 1), (self.topics.all_devices(TopicKind.MODEL_STATE), 1)]
        )
        self._connected.set()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        try:
            self._handle(msg.topic, bytes(msg.payload))
        except (TopicError, PayloadError) as exc:
            self.state_errors += 1
            log.warning("rollout: bad message on %s: %s", msg.topic, exc)
        except Exception:  # the guard: no message may stop the rollout service
            self.state_errors += 1
            log.exception("rollout: handling a message failed")

    def _handle(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/model/chunks/req"):
            self.chunks.on_request(topic, payload)
            return
        device_id = self.topics.parse(topic).device_id
        self._states.put(decode(ModelStatePayload, payload, topic_device_id=device_id))

    def _publish_offer(self, device_id: str, payload: bytes) -> None:
        self.client.publish(self.topics.model_offer(device_id), payload, qos=1, retain=True)

    def _publish_chunk(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def _grant(self, device_id: str, request: ChunkRequest) -> ChunkGrant | None:
        grant = self._grants.get(request.campaign_id)
        if grant is None or grant.sha256 != request.sha256 or device_id not in grant.devices:
            return None
        return ChunkGrant(blob_path(self.blobs, grant.sha256), grant.size_bytes, grant.chunk_size)

    # ----------------------------------------------------------------------------- lifecycle
    def start(self, wait_s: float = 30.0) -> RolloutService:
        with Session(self.engine) as db:
            self._grants = self.controller.grants(db)
        self.chunks.start()
        self.client.reconnect_delay_set(1, 10)  # min >= 1 s: a broker restart is not hammered
        self.client.connect_async(self.address.host, self.address.port, 30)
        self.client.loop_start()
        self.supervisor.watch("rollout-mqtt", self._network_alive, self.client.loop_start)
        if not self._connected.wait(wait_s):
            log.warning(
                "rollout: broker %s:%d not reachable yet; retrying", self.address.host, self.address.port
            )
        self.supervisor.spawn("rollout-controller", self._run)
        self.supervisor.start()
        return self

    def _network_alive(self) -> bool:
        thread = self.client._thread  # paho sets it in loop_start, clears it when the loop ends
        return thread is not None and thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self.supervisor.stop()
        self.supervisor.join("rollout-controller", 10)
        self.chunks.stop()
        self.client.disconnect()
        self.client.loop_stop()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.step()
            except Exception:
                log.exception("rollout controller step failed")

    def step(self) -> None:
        """Apply queued reports, advance campaigns, refresh what the chunk server may serve."""
        with Session(self.engine) as db:
            while True:
                try:
                    apply_state(db, self._states.get_nowait())
                except queue.Empty:
                    break
            db.flush()
            self.controller.tick(db)
            self._grants = self.controller.grants(db)
