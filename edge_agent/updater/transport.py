"""What the updater needs from MQTT: subscribe with a handler, publish, hear about (re)connects.

On a camera the updater rides on the agent's own connection (one client id per device; a second
connection with the same id would kick the first off the broker). ``PahoTransport`` is that adapter
for a paho client the caller owns, or one it creates for a standalone updater (fleet simulations).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]


class Transport(Protocol):
    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None: ...

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None: ...

    def add_connect_listener(self, callback: Callable[[], None]) -> None: ...


class PahoTransport:
    """Routes messages by filter to handlers and re-subscribes on every (re)connect."""

    def __init__(self, client: mqtt.Client):
        self.client = client
        self._handlers: list[tuple[str, int, Handler]] = []
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.bytes_received = 0
        self.messages_received = 0
        client.on_connect = self._on_connect
        client.on_message = self._on_message

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 30,
    ) -> PahoTransport:
        """A standalone client (clean session, auto-reconnect) with its network loop started."""
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if username:
            client.username_pw_set(username, password)
        client.reconnect_delay_set(0.2, 5)
        client.max_inflight_messages_set(50)
        transport = cls(client)
        client.connect_async(host, port, keepalive)
        client.loop_start()
        return transport

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        with self._lock:
            self._handlers.append((topic_filter, qos, handler))
        if self.client.is_connected():
            self.client.subscribe(topic_filter, qos)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain)

    def add_connect_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("mqtt connect refused: %s", reason_code)
            return
        with self._lock:
            subs = [(f, q) for f, q, _ in self._handlers]
        if subs:
            client.subscribe(subs)
        for callback in self._listeners:
            callback()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        self.bytes_received += len(msg.payload)
        self.messages_received += 1
        with self._lock:
            handlers = [h for f, _, h in self._handlers if mqtt.topic_matches_sub(f, msg.topic)]
        for handler in handlers:
            try:
                handler(msg.topic, msg.payload)
            except Exception:  # a handler bug must not kill paho's network thread
                log.exception("handler for %s failed", msg.topic)
