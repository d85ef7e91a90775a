"""Home Assistant discovery on the locked-down broker (real Mosquitto + dynamic security, ACLs exactly as
cloud_hub.identity generates them): the hub's publisher logs in as ``edgesight-homeassistant`` and may
publish configs and states only; Home Assistant's login (role ``homeassistant``) reads them and nothing
a device sends, and may publish only its birth message."""

from __future__ import annotations

import json
import time
from pathlib import Path

from cloud_hub.homeassistant.entities import node_id
from cloud_hub.homeassistant.publisher import HomeAssistantPublisher
from cloud_hub.identity.acl import HOMEASSISTANT_READER_ROLE
from cloud_hub.identity.credentials import new_secret
from cloud_hub.ingest.worker import IngestWorker
from cloud_hub.web.database import ENGINE_KEY
from shared.payloads import StatusPayload
from shared.topics import HassTopics
from tests.identity.probe import NOT_AUTHORIZED, wait_until
from tests.support.hass_schema import validate_discovery
from tests.support.hub import hub_app

HASS = HassTopics()


def url(secure_broker, user: str, password: str) -> str:
    return f"mqtt://{user}:{password}@{secure_broker.plain.host}:{secure_broker.plain.port}"


def test_discovery_through_the_locked_down_broker(secure_broker, admin, devices, probes, observer,
                                                  tmp_path: Path):
    ha_password = new_secret()
    admin.create_service_client("homeassistant", ha_password, HOMEASSISTANT_READER_ROLE, "Home Assistant")
    home_assistant = probes(secure_broker.plain, "homeassistant", ha_password)
    assert not home_assistant.connect().is_failure
    assert not home_assistant.subscribe(f"{HASS.discovery_prefix}/#")[0].is_failure
    assert not home_assistant.subscribe(HASS.all_states())[0].is_failure
    # Read-only: nothing a device sends, and no writing to a device or into the hub's own topics. (A fresh
    # login per refused publish: after one refusal the broker may drop the connection.)
    assert home_assistant.subscribe(f"{secure_broker.topics.prefix}/devices/#")[0].value == NOT_AUTHORIZED
    for topic in (secure_broker.topics.config("cam-a"), HASS.bridge(), HASS.discovery("sensor", "x", "y")):
        writer = probes(secure_broker.plain, "homeassistant", ha_password)
        assert not writer.connect().is_failure
        assert writer.publish(topic, b"{}").value == NOT_AUTHORIZED, topic
        writer.close()
    assert not home_assistant.publish(HASS.birth(), b"online").is_failure  # its birth message

    with hub_app(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path) as app:
        engine = app.extensions[ENGINE_KEY]
        ingest = IngestWorker(engine, url(secure_broker, *secure_broker.login("ingest")),
                              secure_broker.topics.prefix, client_id="ingest-ha-test").start()
        publisher = HomeAssistantPublisher(
            engine, url(secure_broker, *secure_broker.login("homeassistant")), HASS, tmp_path / "snapshots",
            interval_s=0.2).start(10)
        try:
            device = probes(secure_broker.plain, "cam-a", devices["cam-a"].password, client_id="cam-a")
            assert not device.connect().is_failure
            online = StatusPayload(device_id="cam-a", state="online", ts=time.time(), cameras=["street"])
            assert not device.publish(secure_broker.topics.status("cam-a"), online.to_bytes(),
                                      retain=True).is_failure
            availability = HASS.availability(node_id("cam-a"))
            assert wait_until(lambda: any(m.topic == availability and m.payload == b"online"
                                          for m in home_assistant.messages), 15), "HA never read online"
            configs = {m.topic: json.loads(m.payload) for m in list(home_assistant.messages)
                       if m.topic.endswith("/config") and m.payload}
            assert f"{HASS.discovery_prefix}/binary_sensor/{node_id('cam-a')}/online/config" in configs
            for topic, payload in configs.items():
                validate_discovery(topic, payload)
            assert publisher.errors == 0
            # The publisher's login reaches no device topic either (the observer would see it).
            spy = probes(secure_broker.plain, *secure_broker.login("homeassistant"))
            assert not spy.connect().is_failure
            assert spy.subscribe(secure_broker.topics.events("cam-a"))[0].value == NOT_AUTHORIZED
            assert spy.publish(secure_broker.topics.config("cam-a"), b"{}").value == NOT_AUTHORIZED
            assert not [m for m in observer.messages if m.topic == secure_broker.topics.config("cam-a")]
        finally:
            publisher.stop()
            ingest.stop()


def test_homeassistant_login_command_makes_a_read_only_login(secure_broker, probes, tmp_path: Path):
    """`cloud-hub broker-auth homeassistant-login`, as an operator runs it, against the real plugin."""
    import os
    import re
    import subprocess
    import sys

    env = {**os.environ, "EDGESIGHT_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
           "EDGESIGHT_INSTANCE_PATH": str(tmp_path / "instance"),
           "EDGESIGHT_MQTT_ADMIN_URL": url(secure_broker, *secure_broker.login("admin"))}
    done = subprocess.run([sys.executable, "-m", "cloud_hub", "broker-auth", "homeassistant-login"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    password = re.search(r"username homeassistant  password (\S+)", done.stdout).group(1)
    home_assistant = probes(secure_broker.plain, "homeassistant", password)
    assert not home_assistant.connect().is_failure
    assert not home_assistant.subscribe(f"{HASS.discovery_prefix}/#")[0].is_failure
    events = f"{secure_broker.topics.prefix}/devices/+/events"
    assert home_assistant.subscribe(events)[0].value == NOT_AUTHORIZED
