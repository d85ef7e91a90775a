"""The registry built from the hub's settings: one place for the CLI and the dashboard to get it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

from sqlalchemy.engine import Engine

from cloud_hub.config import HubSettings
from shared.topics import Topics

from .dynsec import DynsecAdmin
from .endpoint import BrokerEndpoint
from .registry import DeviceRegistry
from .snippet import DeviceLink

DEFAULT_DEVICE_CA = "/etc/edgesight/ca.crt"
UNMANAGED_WARNING = (
    "EDGESIGHT_MQTT_ADMIN_URL is not set: the broker is not updated "
    "(fine for the embedded demo broker, which trusts its LAN)"
)


def without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def device_link(settings: HubSettings) -> DeviceLink:
    """What a device dials: DEVICE_MQTT_URL, else the hub's own broker URL minus its credentials."""
    return DeviceLink(
        url=settings.device_mqtt_url or without_userinfo(settings.mqtt_url),
        prefix=settings.mqtt_prefix,
        ca_file=settings.device_ca_file or DEFAULT_DEVICE_CA,
    )


def admin_login(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if not parts.username or parts.password is None:
        raise ValueError("EDGESIGHT_MQTT_ADMIN_URL must carry user:password (see cloud-hub broker-auth init)")
    return unquote(parts.username), unquote(parts.password)


def broker_managed(settings: HubSettings) -> bool:
    return bool(settings.mqtt_admin_url)


@contextlib.contextmanager
def open_registry(settings: HubSettings, engine: Engine) -> Iterator[DeviceRegistry]:
    """The registry on the hub's database and, when configured, the broker's dynsec admin (one login)."""
    topics, link = Topics(settings.mqtt_prefix), device_link(settings)
    if not settings.mqtt_admin_url:
        yield DeviceRegistry(engine, None, topics, link)
        return
    endpoint = BrokerEndpoint.from_url(settings.mqtt_admin_url, ca_file=settings.mqtt_ca_file)
    with DynsecAdmin(endpoint, *admin_login(settings.mqtt_admin_url)) as admin:
        yield DeviceRegistry(engine, admin, topics, link)
