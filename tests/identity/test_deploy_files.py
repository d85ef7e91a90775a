"""The compose override for the secure broker refers to real files and its health check really works."""

from __future__ import annotations

import subprocess

import yaml

from tests.support.mosquitto import REPO

OVERRIDE = REPO / "deploy" / "mosquitto" / "compose.secure.yaml"


class _ComposeLoader(yaml.SafeLoader):
    """Compose's ``!override``/``!reset`` tags, read as plain values."""


def _tagged(loader: yaml.SafeLoader, _tag: str, node: yaml.Node):
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


_ComposeLoader.add_multi_constructor("!", _tagged)


def _override() -> dict:
    return yaml.load(OVERRIDE.read_text(), Loader=_ComposeLoader)


def test_override_mounts_the_secure_config_and_publishes_only_tls():
    mosquitto = _override()["services"]["mosquitto"]
    assert mosquitto["ports"] == ["8883:8883"]
    sources = {v.split(":")[0]: v.split(":")[1] for v in mosquitto["volumes"]}
    assert sources["./deploy/mosquitto/mosquitto-secure.conf"] == "/mosquitto/config/mosquitto.conf"
    assert (REPO / "deploy/mosquitto/mosquitto-secure.conf").exists()
    conf = (REPO / "deploy/mosquitto/mosquitto-secure.conf").read_text()
    for target in ("/mosquitto/certs/ca.crt", "/mosquitto/certs/server.crt", "/mosquitto/certs/server.key"):
        assert target in sources.values() and target in conf


def test_health_check_tells_a_running_secure_broker_from_none(secure_broker):
    command = _override()["services"]["mosquitto"]["healthcheck"]["test"][1]
    on_port = command.replace("-h 127.0.0.1", f"-h 127.0.0.1 -p {secure_broker.broker.port}")
    assert subprocess.run(["sh", "-c", on_port], timeout=10).returncode == 0
    secure_broker.stop()
    assert subprocess.run(["sh", "-c", on_port], timeout=10).returncode != 0


def test_every_service_talking_to_the_locked_broker_logs_in_and_has_a_health_check():
    services = _override()["services"]
    for name, variable in (("web", "EDGESIGHT_MQTT_CONTROL_URL"), ("ingest", "EDGESIGHT_MQTT_INGEST_URL"),
                           ("rollout", "EDGESIGHT_MQTT_CONTROL_URL"),
                           ("homeassistant", "EDGESIGHT_MQTT_HOMEASSISTANT_URL")):
        assert variable in services[name]["environment"]["EDGESIGHT_MQTT_URL"], name
    base = yaml.load((REPO / "compose.yaml").read_text(), Loader=_ComposeLoader)["services"]
    for name in ("web", "ingest", "rollout", "mosquitto", "homeassistant"):
        assert "healthcheck" in base[name] or "healthcheck" in services.get(name, {}), name


def test_the_rollout_health_check_tells_a_broker_that_accepts_it_from_one_that_does_not(mosquitto):
    import os
    import sys

    check = [sys.executable, "-m", "cloud_hub.mqtt_health"]
    env = dict(os.environ, EDGESIGHT_MQTT_URL=mosquitto.url)
    assert subprocess.run(check, env=env, cwd=REPO, timeout=20).returncode == 0
    env["EDGESIGHT_MQTT_URL"] = "mqtt://127.0.0.1:1"
    assert subprocess.run(check, env=env, cwd=REPO, timeout=20, capture_output=True).returncode == 1
