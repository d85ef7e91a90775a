"""A small synchronous MQTT test client that records what the broker answered (reason codes, messages)."""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from cloud_hub.identity.endpoint import BrokerEndpoint

NOT_AUTHORIZED = 0x87
TIMEOUT = 5.0


def wait_until(predicate, timeout: float = TIMEOUT, step: float = 0.01) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (no fixed sleeps in tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


class Probe:
    def __init__(
        self,
        endpoint: BrokerEndpoint,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        protocol: int = mqtt.MQTTv5,
    ):
        self.endpoint = endpoint
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"probe-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
            reconnect_on_failure=False,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        endpoint.configure(self.client)
        self.connack: ReasonCode | None = None
        self.disconnected = threading.Event()
        self.disconnect_reason: ReasonCode | None = None
        self.messages: list[mqtt.MQTTMessage] = []
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._pubacks: dict[int, ReasonCode] = {}
        c = self.client
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = lambda _c, _u, mid, codes, _p: self._subacks.__setitem__(mid, list(codes))
        c.on_publish = lambda _c, _u, mid, rc, _p: self._pubacks.__setitem__(mid, rc)
        c.on_message = lambda _c, _u, msg: self.messages.append(msg)

    def _on_connect(self, _c, _u, _flags, rc: ReasonCode, _props) -> None:
        self.connack = rc

    def _on_disconnect(self, _c, _u, _flags, rc: ReasonCode, _props) -> None:
        self.disconnect_reason = rc
        self.disconnected.set()

    @property
    def connected(self) -> bool:
        return self.connack is not None and not self.connack.is_failure and not self.disconnected.is_set()

    def connect(self, will: tuple[str, bytes] | None = None) -> ReasonCode | None:
        """Connect and return the CONNACK reason, or None if the broker closed without one."""
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
        self.client.loop_start()
        wait_until(lambda: self.connack is not None or self.disconnected.is_set())
        return self.connack

    def subscribe(self, topic: str, qos: int = 1) -> list[ReasonCode]:
        _rc, mid = self.client.subscribe(topic, qos)
        assert wait_until(lambda: mid in self._subacks), f"no SUBACK for {topic}"
        return self._subacks.pop(mid)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> ReasonCode | None:
        """The PUBACK reason code (QoS 1), or None when the connection closed before an answer."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos == 0:
            return None
        wait_until(lambda: info.mid in self._pubacks or self.disconnected.is_set())
        return self._pubacks.pop(info.mid, None)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
