"""Helpers for hub tests: a paho publisher acting as a device, event builders, polling with a deadline."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shared.payloads import EventPayload, StatusPayload, TelemetryPayload
from shared.topics import Topics

TOPICS = Topics()


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value {value!r})")
        time.sleep(0.05)


def event(device_id: str, seq: int, **fields: Any) -> EventPayload:
    values: dict[str, Any] = {
        "event_id": f"{device_id}-{seq:08d}".replace(".", "_"),
        "device_id": device_id, "seq": seq, "ts": time.time(), "kind": "line", "label": "person",
        "score": 0.9, "line": "door", "direction": "A->B",
    }
    values.update(fields)
    return EventPayload(**values)


def status(device_id: str, state: str = "online", **fields: Any) -> StatusPayload:
    return StatusPayload(device_id=device_id, state=state, ts=time.time(), agent_version="0.1.0",
                         model="crop-classifier@1.0.0", **fields)


def telemetry(device_id: str, **fields: Any) -> TelemetryPayload:
    values: dict[str, Any] = {"device_id": device_id, "ts": time.time(), "fps_in": 10.0,
                              "fps_processed": 9.5, "inference_ms_p50": 3.2}
    values.update(fields)
    return TelemetryPayload(**values)


class Device:
    """A paho client publishing as one device (client id = device id, like the edge agent)."""

    def __init__(self, host: str, port: int, device_id: str, will: bool = False):
        self.device_id = device_id
        client_id = f"{device_id}-{uuid.uuid4().hex[:6]}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if will:
            offline = StatusPayload(device_id=device_id, state="offline", ts=time.time())
            self.client.will_set(TOPICS.status(device_id), offline.to_bytes(), qos=1, retain=True)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published(), f"broker did not acknowledge {topic}"

    def send_event(self, payload: EventPayload) -> None:
        self.publish(TOPICS.events(self.device_id), payload.to_bytes())

    def send_status(self, payload: StatusPayload) -> None:
        self.publish(TOPICS.status(self.device_id), payload.to_bytes(), retain=True)

    def send_telemetry(self, payload: TelemetryPayload) -> None:
        self.publish(TOPICS.telemetry(self.device_id), payload.to_bytes(), qos=0)

    def drop(self) -> None:
        """Vanish without DISCONNECT so the broker publishes the last will."""
        self.client.loop_stop()
        self.client.socket().close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
