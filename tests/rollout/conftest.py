"""Fixtures for rollout tests: hub keys, rendered frames, simulated devices on a real Mosquitto."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmarks.fleet_sim import SimulatedDevice, synthetic_frames
from edge_agent.updater.config import HealthConfig
from shared.signing import generate_keypair, load_private_key
from tests.rollout.support import PlainHub, reference


@pytest.fixture(scope="session")
def frames() -> list[np.ndarray]:
    return synthetic_frames(count=30)


@pytest.fixture
def hub_keys(tmp_path: Path):
    private_pem, public_pem = generate_keypair()
    public = tmp_path / "hub-ed25519.pub.pem"
    public.write_bytes(public_pem)
    return load_private_key(private_pem), public


@pytest.fixture
def baseline() -> Path:
    return reference("fomo-street")


@pytest.fixture
def device_factory(
    mosquitto, tmp_path: Path, hub_keys, frames, baseline
) -> Iterator[Callable[..., SimulatedDevice]]:
    devices: list[SimulatedDevice] = []

    def make(device_id: str, **kwargs) -> SimulatedDevice:
        # Many simulated cameras share the test machine's cores: their latencies measure each other, so
        # the relative latency check is off by default here (tests that need a latency verdict set one).
        kwargs.setdefault("health", HealthConfig(min_inferences=8, max_seconds=30, max_latency_ratio=None))
        kwargs.setdefault("fps", 20.0)
        public_key = kwargs.pop("public_key", hub_keys[1])
        device = SimulatedDevice(
            device_id,
            mosquitto.host,
            mosquitto.port,
            tmp_path / "stores" / device_id,
            public_key,
            kwargs.pop("baseline", baseline),
            frames,
            **kwargs,
        ).start()
        devices.append(device)
        return device

    yield make
    for device in devices:
        device.stop()


@pytest.fixture
def plain_hub(mosquitto, tmp_path: Path) -> Iterator[PlainHub]:
    hub = PlainHub(mosquitto.host, mosquitto.port, tmp_path / "hub-blobs")
    yield hub
    hub.close()


class RolloutHub:
    """The real hub side: app + SQLite + registry + signing key + the rollout service on Mosquitto."""

    PASSWORD = "rollout-admin-pw-1"

    def __init__(self, mosquitto, instance: Path):
        from cloud_hub import create_app
        from cloud_hub import db as hub_db
        from cloud_hub.rollout.keys import init_keys, key_dir, load_signing_key
        from cloud_hub.rollout.registry import blob_dir
        from cloud_hub.rollout.service import RolloutService

        url = f"sqlite:///{instance / 'hub.db'}"
        self.app = create_app(
            {"instance_path": str(instance), "database_url": url, "mqtt_url": mosquitto.url}
        )
        hub_db.upgrade(url)
        _, self.public_key = init_keys(key_dir(instance))
        self.key = load_signing_key(key_dir(instance))
        self.blobs = blob_dir(instance)
        self.engine = self.app.extensions["edgesight.engine"]
        self.service = RolloutService(
            self.engine, mosquitto.url, "edgesight/v1", self.blobs, self.key, tick_s=0.1
        ).start()

    def session(self):
        from sqlalchemy.orm import Session

        return Session(self.engine, expire_on_commit=False)

    def register(self, model_dir: Path):
        from cloud_hub.rollout.registry import register

        with self.session() as db:
            row, _ = register(db, model_dir / "model.onnx", model_dir / "manifest.json", self.blobs, self.key)
            return row

    def summary(self, campaign_id: str) -> dict:
        from cloud_hub.rollout import campaigns
        from cloud_hub.rollout.views import campaign_summary

        with self.session() as db:
            return campaign_summary(db, campaigns.get(db, campaign_id))

    def logged_in_client(self):
        from sqlalchemy.orm import Session

        from cloud_hub import auth

        with Session(self.engine) as db:
            auth.create_user(db, "operator", self.PASSWORD, "admin")
        client = self.app.test_client()
        client.get("/login")
        with client.session_transaction() as session:
            csrf = session["csrf"]
        client.post("/login", data={"username": "operator", "password": self.PASSWORD, "csrf_token": csrf})
        with client.session_transaction() as session:
            client.csrf = session["csrf"]
        return client

    def stop(self) -> None:
        self.service.stop()
        self.engine.dispose()


@pytest.fixture
def rollout_hub(mosquitto, tmp_path: Path) -> Iterator[RolloutHub]:
    hub = RolloutHub(mosquitto, tmp_path / "instance")
    yield hub
    hub.stop()


@pytest.fixture
def browser(tmp_path: Path):
    """Real headless Chromium (fresh profile) for the campaign page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def live_hub(rollout_hub):
    """The hub's web app on a real port (threaded werkzeug)."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, rollout_hub.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
