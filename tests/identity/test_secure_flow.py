"""Acceptance (issue 7): the foundation's flow — edge agent → Mosquitto → ingest → database — with
authentication and TLS on, set up the way an operator does it: only through the `cloud-hub` CLI.

certs init → broker-auth init → Mosquitto from mosquitto-secure.conf → db upgrade → devices add (its printed
snippet becomes the agent's config) → the agent publishes over TLS → ingest (its own role) stores each event
once. Then the hub's anti-spoofing check and revocation, still through the CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub import db as hub_db
from cloud_hub.identity.bootstrap import ServiceCredentials
from cloud_hub.identity.endpoint import BrokerEndpoint
from cloud_hub.ingest.worker import IngestWorker
from cloud_hub.models import DeadLetter, Device, Event
from edge_agent.config import parse_config
from shared.payloads import EventKind, EventPayload
from shared.topics import Topics
from tests.edge.tiny_models import red_fomo, red_square_video
from tests.identity.probe import Probe, wait_until
from tests.identity.secure_broker import launch_secure_broker
from tests.identity.test_registry import stored_rows
from tests.support.mosquitto import free_port
from tests.support.recording_agent import RecordingAgent

DEVICE = "cam-secure-1"
LINE = {"name": "middle", "a": [0.5, 0.0], "b": [0.5, 1.0], "positive": "B->A", "negative": "A->B"}


def cloud_hub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The real console entry point in a child process, as an operator runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "cloud_hub", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert done.returncode == 0, f"cloud-hub {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def read_env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture(scope="module")
def red_assets(tmp_path_factory):
    base = tmp_path_factory.mktemp("red")
    return red_fomo(base / "model"), red_square_video(base / "clip.mp4")


def test_agent_to_database_with_authentication_and_tls(tmp_path, database_url, red_assets):
    model, clip = red_assets
    port, tls_port = free_port(), free_port()
    certs, dynsec = tmp_path / "certs", tmp_path / "broker" / "dynamic-security.json"
    hub_env = {"EDGESIGHT_DATABASE_URL": database_url, "EDGESIGHT_INSTANCE_PATH": str(tmp_path / "instance")}

    cloud_hub("certs", "init", "--out", str(certs), env=hub_env)
    cloud_hub(
        "broker-auth",
        "init",
        "--dynsec-file",
        str(dynsec),
        "--env-file",
        str(tmp_path / ".env"),
        "--internal-url",
        f"mqtt://127.0.0.1:{port}",
        env=hub_env,
    )
    urls = read_env_file(tmp_path / ".env")
    creds = ServiceCredentials(
        *(urlsplit(urls[f"EDGESIGHT_MQTT_{role}_URL"]).password for role in ("ADMIN", "INGEST", "CONTROL"))
    )
    broker = launch_secure_broker(
        tmp_path / "broker", certs, dynsec, creds, Topics(), port=port, tls_port=tls_port
    )
    web_env = {
        **hub_env,
        "EDGESIGHT_MQTT_URL": urls["EDGESIGHT_MQTT_CONTROL_URL"],
        "EDGESIGHT_MQTT_ADMIN_URL": urls["EDGESIGHT_MQTT_ADMIN_URL"],
        "EDGESIGHT_DEVICE_MQTT_URL": f"mqtts://127.0.0.1:{tls_port}",
        "EDGESIGHT_DEVICE_CA_FILE": str(certs / "ca.crt"),
    }
    engine = None
    ingest = None
    try:
        cloud_hub("db", "upgrade", env=hub_env)
        added = cloud_hub("devices", "add", DEVICE, "--group", "canary", env=web_env)
        snippet = yaml.safe_load(added.stdout)
        secret = snippet["device"]["password"]
        assert snippet["mqtt"]["url"].startswith("mqtts://")

        engine = hub_db.make_engine(database_url)
        ingest = IngestWorker(
            engine,
            urls["EDGESIGHT_MQTT_INGEST_URL"],
            "edgesight/v1",
            client_id="ingest-test",
            share_group="hub",
            persistent_session=False,
        ).start()
        config = parse_config(
            yaml.safe_dump(
                {
                    **snippet,
                    "outbox": {"path": str(tmp_path / "outbox.db")},
                    "telemetry": {"interval_s": 0.5},
                    "cameras": [
                        {
                            "name": "front",
                            "source": {"type": "file", "path": str(clip)},
                            "detect_fps": 20,
                            "model": {"path": str(model)},
                            "lines": [LINE],
                        }
                    ],
                }
            ),
            source="snippet+camera.yaml",
        )
        agent = RecordingAgent(config).start()
        try:
            assert agent.wait_sources_finished(30)
            assert agent.wait_drained(20)
            # The hub's end-to-end acknowledgements pass the broker's ACLs (ingest may publish a device's
            # acks topic, the device may read it): every event leaves the outbox on the hub's word.
            assert agent.link is not None and agent.link.wait_confirmed(20), agent.outbox.depth()
            assert agent.link.confirmed == len(agent.emitted)
        finally:
            agent.stop()
        emitted = sorted(e.event_id for e in agent.emitted)
        assert len(emitted) >= 3

        def stored() -> list[str]:
            with Session(engine) as session:
                return sorted(session.scalars(select(Event.event_id).where(Event.device_id == DEVICE)))

        assert wait_until(lambda: stored() == emitted, timeout=20), (stored(), emitted)
        def state() -> str | None:
            with Session(engine) as session:
                device = session.get(Device, DEVICE)
                return device.state if device else None

        assert wait_until(lambda: state() == "offline", timeout=10), state()  # its status reached the hub
        assert secret not in stored_rows(engine)

        # The broker lets the device write its own topic; the hub still refuses a payload that claims
        # to be another device (anti-spoofing: payload device id must equal the topic's).
        spoof = Probe(
            BrokerEndpoint.from_url(snippet["mqtt"]["url"], ca_file=str(certs / "ca.crt")),
            DEVICE,
            secret,
            client_id=DEVICE,
        )
        try:
            assert not spoof.connect().is_failure
            forged = EventPayload(
                event_id="forged-0001",
                device_id="cam-someone-else",
                seq=1,
                ts=time.time(),
                kind=EventKind.DETECTION,
                label="person",
                score=0.9,
            )
            assert spoof.publish(broker.topics.events(DEVICE), forged.to_bytes()).value < 0x80

            def mismatch() -> list[str]:
                with Session(engine) as session:
                    return list(session.scalars(select(DeadLetter.reason)))

            assert wait_until(lambda: any("device id mismatch" in r for r in mismatch()), timeout=10)
            assert stored() == emitted

            cloud_hub("devices", "revoke", DEVICE, env=web_env)
            assert wait_until(spoof.disconnected.is_set, timeout=5.0)
        finally:
            spoof.close()
        listed = cloud_hub("devices", "list", env=web_env).stdout
        assert f"{DEVICE}\trevoked\tgroup=canary" in listed
    finally:
        if ingest is not None:
            ingest.stop()
        if engine is not None:
            engine.dispose()
        broker.stop()
