"""Where the hub's own MQTT clients connect, and how (plain TCP or TLS that verifies the broker)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class BrokerEndpoint:
    host: str
    port: int
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> BrokerEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"broker URL {url!r}: expected mqtt://host[:port] or mqtts://host[:port]")
        return cls(
            parts.hostname,
            parts.port or DEFAULT_PORTS[parts.scheme],
            parts.scheme == "mqtts",
            ca_file,
            cert_file,
            key_file,
        )

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def configure(self, client: mqtt.Client) -> None:
        """Turn on TLS with certificate and host-name checks (never ``tls_insecure``)."""
        if self.tls:
            client.tls_set(
                ca_certs=self.ca_file,
                certfile=self.cert_file,
                keyfile=self.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
