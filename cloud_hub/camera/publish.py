"""Publish one retained message from a web request (the remote config): connect, publish, wait, leave.

A web worker holds no MQTT connection of its own; configs are rare, so a short connection per save is
simpler than a shared client and fails loudly (the operator sees it) when the broker is unreachable.
"""

from __future__ import annotations

import ssl
import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud_hub.config import parse_mqtt_url
from shared.topics import QOS_RELIABLE


class PublishError(RuntimeError):
    """The broker did not take the message; the text says why."""


def connect_check(mqtt_url: str, *, ca_file: str | None = None, timeout: float = 5.0) -> None:
    """Connect and leave; raises PublishError with the reason when the broker does not accept us."""
    publish_retained(mqtt_url, None, b"", ca_file=ca_file, timeout=timeout)


def publish_retained(mqtt_url: str, topic: str | None, payload: bytes, *, ca_file: str | None = None,
                     timeout: float = 5.0) -> None:
    address = parse_mqtt_url(mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edgesight-web-{uuid.uuid4().hex[:10]}")
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(_c, _u, _f, reason_code, _p) -> None:
        if reason_code.is_failure:
            refused.append(str(reason_code))
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(address.host, address.port, keepalive=10)
    except OSError as exc:
        raise PublishError(f"broker {address.host}:{address.port} unreachable: {exc}") from None
    client.loop_start()
    try:
        if not connected.wait(timeout) or refused:
            raise PublishError(f"broker {address.host}:{address.port} refused the hub: "
                               f"{refused[0] if refused else 'no answer'}")
        if topic is None:
            return
        info = client.publish(topic, payload, qos=QOS_RELIABLE, retain=True)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise PublishError(f"broker did not acknowledge {topic}")
    finally:
        client.disconnect()
        client.loop_stop()
