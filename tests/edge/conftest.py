"""Fixtures for the edge agent tests: tiny real models, short clips, a recording MQTT subscriber."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config import AgentConfig, parse_config
from tests.edge.tiny_models import red_fomo, red_square_video


@pytest.fixture(scope="session")
def red_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return red_fomo(tmp_path_factory.mktemp("models") / "red-fomo")


@pytest.fixture(scope="session")
def red_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return red_square_video(tmp_path_factory.mktemp("clips") / "red-square.mp4")


class Recorder:
    """A paho subscriber that keeps every message it receives, for assertions."""

    def __init__(self, url_host: str, port: int, topic: str, client_id: str = "recorder", clean: bool = True):
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect_async(url_host, port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(message)

    def on(self, suffix: str) -> list[mqtt.MQTTMessage]:
        with self.lock:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def recorder_factory() -> Iterator[Callable[..., Recorder]]:
    made: list[Recorder] = []

    def make(host: str, port: int, topic: str = "edgesight/v1/devices/#", **kw) -> Recorder:
        rec = Recorder(host, port, topic, **kw)
        assert rec.wait_for(rec.subscribed.is_set, 10), "recorder could not subscribe"
        made.append(rec)
        return rec

    yield make
    for rec in made:
        rec.close()


def agent_config(tmp_path: Path, broker_url: str, model: Path, source: dict, **camera) -> AgentConfig:
    """A minimal valid config as YAML text → parse_config, the same path the CLI takes."""
    data = {
        "device": {"id": "cam-test-1"},
        "mqtt": {"url": broker_url, "reconnect_min_s": 1, "reconnect_max_s": 1},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "telemetry": {"interval_s": 0.5},
        "cameras": [
            {"name": "front", "source": source, "detect_fps": 20, "model": {"path": str(model)}, **camera}
        ],
    }
    return parse_config(yaml.safe_dump(data), source="test.yaml")


# Mosquitto started as root drops to the `mosquitto` user and then cannot write its persistence file
# (or log) into pytest's 0700 tmp dirs, so queued messages for persistent sessions vanish on restart.
# Staying root (ignored when the tests run unprivileged) keeps the broker's restart semantics real.
PERSISTENT = "user root\n"


@pytest.fixture
def persistent_broker(mosquitto_factory):
    return mosquitto_factory(extra_config=PERSISTENT)
