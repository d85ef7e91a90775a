"""What ``edge-agent check`` tests before a camera is left alone: the broker answers *this* device with
its configured credentials and TLS, and the outbox directory takes a write (the agent's first act)."""

from __future__ import annotations

import os
import ssl
import tempfile
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config import AgentConfig


def check_broker(config: AgentConfig, timeout: float = 10.0) -> str | None:
    """None when the broker accepted a connection as this device; else what went wrong."""
    cfg = config.mqtt
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{config.device.id}-check",
                         protocol=mqtt.MQTTv311)
    client.username_pw_set(config.device.id, config.device.password)
    if cfg.tls is not None or cfg.url.startswith("mqtts://"):
        tls = cfg.tls
        try:
            client.tls_set(ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
                           certfile=str(tls.cert_file) if tls and tls.cert_file else None,
                           keyfile=str(tls.key_file) if tls and tls.key_file else None,
                           cert_reqs=ssl.CERT_REQUIRED)
        except (OSError, ssl.SSLError, ValueError) as exc:
            return f"TLS files unusable: {exc}"
        client.tls_insecure_set(bool(tls and tls.insecure))
    answered = threading.Event()
    result: list[str] = []

    def on_connect(_c, _u, _f, reason_code, _p) -> None:
        if reason_code.is_failure:
            result.append(f"broker refused device {config.device.id!r}: {reason_code}")
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(cfg.host, cfg.port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        return f"cannot reach {cfg.url}: {exc}"
    client.loop_start()
    try:
        if not answered.wait(timeout):
            return f"no answer from {cfg.url} within {timeout:.0f} s"
        return result[0] if result else None
    finally:
        client.disconnect()
        client.loop_stop()


def check_outbox(config: AgentConfig) -> str | None:
    """None when the outbox's directory exists (or can be made) and takes a file; else why not."""
    folder = config.outbox.path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".edgesight-check-") as probe:
            probe.write(b"x")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return f"outbox directory {folder} is not writable: {exc.strerror or exc}"
    return None
