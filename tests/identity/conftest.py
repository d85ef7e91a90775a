"""Fixtures: a real Mosquitto started from the secure deploy config, its dynsec admin, two devices."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloud_hub.identity.credentials import new_secret
from cloud_hub.identity.dynsec import DynsecAdmin
from tests.identity.probe import Probe
from tests.identity.secure_broker import SecureBroker, start_secure_broker


@dataclass(frozen=True)
class Device:
    device_id: str
    password: str


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    broker = start_secure_broker(tmp_path / "broker")
    yield broker
    broker.stop()


@pytest.fixture
def admin(secure_broker: SecureBroker) -> Iterator[DynsecAdmin]:
    with DynsecAdmin(secure_broker.plain, *secure_broker.login("admin")) as client:
        yield client


@pytest.fixture
def devices(secure_broker: SecureBroker, admin: DynsecAdmin) -> dict[str, Device]:
    made = {}
    for name in ("cam-a", "cam-b"):
        made[name] = Device(name, new_secret())
        admin.create_device(secure_broker.topics, name, made[name].password)
    return made


@pytest.fixture
def probes() -> Iterator[Callable[..., Probe]]:
    """Make probes that are closed after the test."""
    made: list[Probe] = []

    def make(*args, **kwargs) -> Probe:
        made.append(Probe(*args, **kwargs))
        return made[-1]

    yield make
    for probe in made:
        probe.close()


@pytest.fixture
def observer(secure_broker: SecureBroker, admin: DynsecAdmin, probes) -> Probe:
    """A privileged test-only subscriber on ``#``: whatever the broker lets through, it sees."""
    admin.execute(
        [
            {
                "command": "createRole",
                "rolename": "test-observer",
                "acls": [
                    {"acltype": "subscribePattern", "topic": "#", "allow": True},
                    {"acltype": "publishClientReceive", "topic": "#", "allow": True},
                ],
            },
            {
                "command": "createClient",
                "username": "test-observer",
                "password": "observer",
                "roles": [{"rolename": "test-observer"}],
            },
        ]
    )
    probe = probes(secure_broker.plain, "test-observer", "observer")
    assert not probe.connect().is_failure
    assert not probe.subscribe("#")[0].is_failure
    return probe
