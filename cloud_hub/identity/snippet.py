"""The agent config a new device needs to log in: printed once, never stored (the hub keeps a hash)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class DeviceLink:
    """How devices reach the broker, as seen from the device (not the hub's internal address)."""

    url: str
    prefix: str
    ca_file: str | None = None  # path on the device; None for plain mqtt:// (lab only)

    def mqtt_section(self) -> dict[str, Any]:
        section: dict[str, Any] = {"url": self.url, "prefix": self.prefix}
        if self.url.startswith("mqtts://") and self.ca_file:
            section["tls"] = {"ca_file": self.ca_file}
        return section


def agent_config_snippet(device_id: str, secret: str, link: DeviceLink) -> str:
    """YAML with the ``device`` and ``mqtt`` sections of edge_agent's config (validated by its models)."""
    body = yaml.safe_dump(
        {"device": {"id": device_id, "password": secret}, "mqtt": link.mqtt_section()}, sort_keys=False
    )
    notes = [f"# edgesight agent credentials for {device_id}: shown once, the hub keeps only a hash."]
    if link.url.startswith("mqtts://") and link.ca_file:
        notes.append("# Copy the hub's CA certificate (ca.crt) to this path on the device:")
        notes.append(f"#   {link.ca_file}")
    elif link.url.startswith("mqtt://"):
        notes.append(
            "# WARNING: plain mqtt:// sends this password in clear text; use mqtts:// outside a lab."
        )
    return "\n".join(notes) + "\n" + body
