"""The broker's first dynamic-security config: the hub's own service clients, no devices, deny by default.

Mosquitto's dynamic security plugin reads this JSON once at start and rewrites it on every change made
over ``$CONTROL``; from then on the hub manages devices live (dynsec.py). Writing the file ourselves
(instead of ``mosquitto_ctrl dynsec init``) lets one command create all three service principals with
their roles, and needs no Mosquitto tools on the hub's host.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from shared.topics import DEFAULT_DISCOVERY_PREFIX, Topics

from .acl import ADMIN_ROLE, CONTROL_ROLE, HOMEASSISTANT_ROLE, INGEST_ROLE, service_roles
from .credentials import hash_secret, new_secret
from .endpoint import BrokerEndpoint

ADMIN_USER = "edgesight-admin"
INGEST_USER = "edgesight-ingest"
CONTROL_USER = "edgesight-control"
HOMEASSISTANT_USER = "edgesight-homeassistant"

# Everything a role does not explicitly allow is refused, including receiving (defence in depth:
# a subscribe that slipped through would still deliver nothing).
DEFAULT_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}


@dataclass(frozen=True)
class ServiceCredentials:
    """Plain passwords of the hub's own broker clients: they go to the hub's environment, nowhere else."""

    admin_password: str
    ingest_password: str
    control_password: str
    homeassistant_password: str = field(default_factory=new_secret)

    @classmethod
    def generate(cls) -> ServiceCredentials:
        return cls(new_secret(), new_secret(), new_secret())

    def as_env(self, endpoint: BrokerEndpoint) -> dict[str, str]:
        """One broker URL per hub role, credentials in the user-info part (secrets are URL-safe)."""
        scheme, _, address = endpoint.url.partition("://")
        return {
            "EDGESIGHT_MQTT_INGEST_URL": f"{scheme}://{INGEST_USER}:{self.ingest_password}@{address}",
            "EDGESIGHT_MQTT_CONTROL_URL": f"{scheme}://{CONTROL_USER}:{self.control_password}@{address}",
            "EDGESIGHT_MQTT_ADMIN_URL": f"{scheme}://{ADMIN_USER}:{self.admin_password}@{address}",
            "EDGESIGHT_MQTT_HOMEASSISTANT_URL":
                f"{scheme}://{HOMEASSISTANT_USER}:{self.homeassistant_password}@{address}",
        }


def _client(username: str, password: str, role: str, text: str) -> dict[str, object]:
    return {
        "username": username,
        "textName": text,
        **hash_secret(password).to_dynsec(),
        "roles": [{"rolename": role}],
    }


def dynsec_config(topics: Topics, creds: ServiceCredentials,
                  discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> dict[str, object]:
    roles = service_roles(topics, discovery_prefix)
    return {
        "clients": [
            _client(ADMIN_USER, creds.admin_password, ADMIN_ROLE, "edgesight hub: device provisioning"),
            _client(INGEST_USER, creds.ingest_password, INGEST_ROLE, "edgesight hub: ingest workers"),
            _client(CONTROL_USER, creds.control_password, CONTROL_ROLE, "edgesight hub: rollouts/config"),
            _client(HOMEASSISTANT_USER, creds.homeassistant_password, HOMEASSISTANT_ROLE,
                    "edgesight hub: Home Assistant discovery"),
        ],
        "groups": [],
        "roles": [
            {"rolename": name, "acls": [rule.to_dynsec() for rule in rules]} for name, rules in roles.items()
        ],
        "defaultACLAccess": DEFAULT_ACCESS,
    }


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds hashes or secrets), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_dynsec_config(
    path: Path, topics: Topics, creds: ServiceCredentials, *, force: bool = False,
    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX,
) -> None:
    if path.exists() and not force:
        raise FileExistsError(
            f"{path} exists: the broker already has its clients (pass force to replace them all)"
        )
    write_private(path, json.dumps(dynsec_config(topics, creds, discovery_prefix), indent=2) + "\n")


def write_env_file(
    path: Path, creds: ServiceCredentials, endpoint: BrokerEndpoint, *, force: bool = False
) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (pass force to replace it)")
    lines = "".join(f"{key}={value}\n" for key, value in creds.as_env(endpoint).items())
    write_private(
        path, "# edgesight hub broker credentials (cloud-hub broker-auth init): keep secret\n" + lines
    )
