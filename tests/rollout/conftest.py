"""Fixtures for rollout tests: hub keys, rendered frames, simulated devices on a real Mosquitto."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from edge_agent.updater.config import HealthConfig
from edge_agent.updater.sim import SimulatedDevice, synthetic_frames
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
def device_factory(mosquitto, tmp_path: Path, hub_keys, frames, baseline) -> Iterator[Callable[..., SimulatedDevice]]:
    devices: list[SimulatedDevice] = []

    def make(device_id: str, **kwargs) -> SimulatedDevice:
        kwargs.setdefault("health", HealthConfig(min_inferences=8, max_seconds=30))
        kwargs.setdefault("fps", 20.0)
        device = SimulatedDevice(device_id, mosquitto.host, mosquitto.port, tmp_path / "stores" / device_id,
                                 hub_keys[1], kwargs.pop("baseline", baseline), frames, **kwargs).start()
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
