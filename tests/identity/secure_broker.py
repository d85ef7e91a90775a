"""A real Mosquitto started from deploy/mosquitto/mosquitto-secure.conf with generated certs and dynsec.

Only ports and paths are rewritten; the ACL content is exactly what cloud_hub.identity generates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cloud_hub.identity.bootstrap import (
    ADMIN_USER,
    CONTROL_USER,
    HOMEASSISTANT_USER,
    INGEST_USER,
    ServiceCredentials,
    write_dynsec_config,
)
from cloud_hub.identity.certs import init_certs
from cloud_hub.identity.endpoint import BrokerEndpoint
from shared.topics import Topics
from tests.support.mosquitto import REPO, MosquittoBroker, free_port, wait_port

SECURE_CONF = REPO / "deploy" / "mosquitto" / "mosquitto-secure.conf"
PLUGIN_CANDIDATES = (
    Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/mosquitto_dynamic_security.so"),
)


def dynsec_plugin() -> Path:
    for path in PLUGIN_CANDIDATES:
        if path.exists():
            return path
    raise FileNotFoundError(f"Mosquitto dynamic security plugin not found in {PLUGIN_CANDIDATES}")


@dataclass
class SecureBroker:
    broker: MosquittoBroker
    tls_port: int
    certs: Path
    creds: ServiceCredentials
    topics: Topics

    @property
    def plain(self) -> BrokerEndpoint:
        return BrokerEndpoint(self.broker.host, self.broker.port)

    @property
    def tls(self) -> BrokerEndpoint:
        return BrokerEndpoint("127.0.0.1", self.tls_port, tls=True, ca_file=str(self.certs / "ca.crt"))

    def login(self, role: str) -> tuple[str, str]:
        return {
            "admin": (ADMIN_USER, self.creds.admin_password),
            "ingest": (INGEST_USER, self.creds.ingest_password),
            "control": (CONTROL_USER, self.creds.control_password),
            "homeassistant": (HOMEASSISTANT_USER, self.creds.homeassistant_password),
        }[role]

    def stop(self) -> None:
        self.broker.stop()


def render_secure_config(dynsec_file: Path, certs: Path, tls_port: int, extra_tls: str = "") -> str:
    text = SECURE_CONF.read_text()
    subs = {
        r"^plugin .*$": f"plugin {dynsec_plugin()}",
        r"^plugin_opt_config_file .*$": f"plugin_opt_config_file {dynsec_file}",
        r"^listener 8883$": f"listener {tls_port} 127.0.0.1",
        r"^cafile .*$": f"cafile {certs / 'ca.crt'}",
        r"^certfile .*$": f"certfile {certs / 'server.crt'}",
        r"^keyfile .*$": f"keyfile {certs / 'server.key'}",
    }
    for pattern, replacement in subs.items():
        text, count = re.subn(pattern, replacement, text, count=1, flags=re.M)
        assert count == 1, f"{SECURE_CONF} has no line matching {pattern}"
    if extra_tls:  # options for the TLS listener go right after its keyfile line
        text = re.sub(r"^(keyfile .*)$", lambda m: m.group(1) + "\n" + extra_tls, text, count=1, flags=re.M)
    return text


def launch_secure_broker(
    workdir: Path,
    certs: Path,
    dynsec_file: Path,
    creds: ServiceCredentials,
    topics: Topics,
    extra_tls: str = "",
    port: int | None = None,
    tls_port: int | None = None,
) -> SecureBroker:
    """Start Mosquitto on certificates and a dynsec file that already exist (e.g. made by the CLI)."""
    workdir.mkdir(parents=True, exist_ok=True)
    tls_port = tls_port or free_port()
    # tests.support.mosquitto keeps a root-started broker as root: as `mosquitto` it could not read the
    # 0600 keys and dynsec file written here; production sets file ownership instead (docs/security.md).
    config = render_secure_config(dynsec_file, certs, tls_port, extra_tls)
    broker = MosquittoBroker(workdir, port=port, base_config=config)
    broker.start()
    wait_port("127.0.0.1", tls_port)
    return SecureBroker(broker, tls_port, certs, creds, topics)


def start_secure_broker(workdir: Path, extra_tls: str = "") -> SecureBroker:
    """Generate a CA, broker certificate and dynsec config with fresh service passwords, then start."""
    workdir.mkdir(parents=True, exist_ok=True)
    certs = workdir / "certs"
    init_certs(certs)
    topics = Topics()
    creds = ServiceCredentials.generate()
    write_dynsec_config(workdir / "dynamic-security.json", topics, creds)
    return launch_secure_broker(workdir, certs, workdir / "dynamic-security.json", creds, topics, extra_tls)
