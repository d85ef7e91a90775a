"""Hub settings: one pydantic model filled from a YAML file, then the environment, then test overrides.

Web and ingest are separate processes that must agree on the database and the broker, so both read
their settings through this one function instead of each parsing the environment its own way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.topics import DEFAULT_DISCOVERY_PREFIX, DEFAULT_PREFIX

# Environment variable → setting. DATABASE_URL is the conventional fallback (Heroku, compose files).
ENVIRONMENT = {
    "EDGESIGHT_DATABASE_URL": "database_url",
    "EDGESIGHT_MQTT_URL": "mqtt_url",
    "EDGESIGHT_MQTT_PREFIX": "mqtt_prefix",
    "EDGESIGHT_SECRET_KEY": "secret_key",
    "EDGESIGHT_SNAPSHOT_DIR": "snapshot_dir",
    "EDGESIGHT_RETENTION_DAYS": "retention_days",
    "EDGESIGHT_SNAPSHOT_CAP_MB": "snapshot_cap_mb",
    "EDGESIGHT_TRUSTED_PROXIES": "trusted_proxies",
    "EDGESIGHT_LOG_FORMAT": "log_format",
    "EDGESIGHT_INGEST_BATCH_SIZE": "ingest_batch_size",
    "EDGESIGHT_INGEST_MAX_DELAY_S": "ingest_max_delay_s",
    "EDGESIGHT_INGEST_TS_PAST_S": "ingest_ts_past_s",
    "EDGESIGHT_INGEST_TS_FUTURE_S": "ingest_ts_future_s",
    "EDGESIGHT_MQTT_RECONNECT_MIN_S": "mqtt_reconnect_min_s",
    "EDGESIGHT_MQTT_RECONNECT_MAX_S": "mqtt_reconnect_max_s",
    # Device identity (docs/security.md).
    "EDGESIGHT_MQTT_ADMIN_URL": "mqtt_admin_url",
    "EDGESIGHT_MQTT_CA_FILE": "mqtt_ca_file",
    "EDGESIGHT_DEVICE_MQTT_URL": "device_mqtt_url",
    "EDGESIGHT_DEVICE_CA_FILE": "device_ca_file",
    # Home Assistant discovery (cloud-hub homeassistant; docs/hub/README.md).
    "EDGESIGHT_HOMEASSISTANT_PREFIX": "homeassistant_prefix",
    "EDGESIGHT_HOMEASSISTANT_INTERVAL_S": "homeassistant_interval_s",
}
FALLBACKS = {"database_url": "DATABASE_URL"}


class ConfigError(ValueError):
    """A settings problem, with the file or variable it came from."""


class HubSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in instance/")
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_prefix: str = DEFAULT_PREFIX
    secret_key: str | None = Field(default=None, description="session signing key; default kept in instance/")
    snapshot_dir: str | None = Field(default=None, description="default instance/snapshots")
    retention_days: float | None = Field(default=None, gt=0, description="delete events older than this")
    snapshot_cap_mb: float | None = Field(default=None, gt=0, description="disk cap for snapshots")
    trusted_proxies: int = Field(default=0, ge=0, description="reverse proxies in front (X-Forwarded-*)")
    log_format: str = Field(default="json", pattern="^(json|text)$")
    login_attempts_per_minute: int = Field(default=5, ge=1)
    ingest_batch_size: int = Field(default=500, ge=1)
    ingest_max_delay_s: float = Field(default=0.025, gt=0)
    ingest_ts_past_s: float = Field(default=30 * 86400.0, gt=0,
                                    description="an event's ts may be this far behind the hub's clock")
    ingest_ts_future_s: float = Field(default=3600.0, ge=0,
                                      description="an event's ts may be this far ahead of the hub's clock")
    mqtt_reconnect_min_s: float = Field(default=1.0, ge=1.0, description="first reconnect delay")
    mqtt_reconnect_max_s: float = Field(default=10.0, ge=1.0, description="longest reconnect delay")
    # Device identity (docs/security.md).
    mqtt_admin_url: str | None = Field(
        default=None, description="dynsec admin login (mqtt://user:pass@host); unset: broker not managed"
    )
    mqtt_ca_file: str | None = Field(default=None, description="CA the hub's MQTT clients trust for mqtts://")
    device_mqtt_url: str | None = Field(
        default=None, description="URL devices dial (default: mqtt_url without credentials)"
    )
    device_ca_file: str | None = Field(default=None, description="CA path on the device, for agent configs")
    # Home Assistant discovery: only `cloud-hub homeassistant` reads these (it is off unless that runs).
    homeassistant_prefix: str = Field(
        default=DEFAULT_DISCOVERY_PREFIX, pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$",
        description="Home Assistant's MQTT discovery prefix")
    homeassistant_interval_s: float = Field(
        default=1.0, ge=0.1, le=60.0, description="how often the hub's state is read and published")

    @model_validator(mode="after")
    def _reconnect_bounds(self) -> HubSettings:
        if self.mqtt_reconnect_min_s > self.mqtt_reconnect_max_s:
            raise ValueError(f"mqtt_reconnect_min_s ({self.mqtt_reconnect_min_s:g}) must not exceed "
                             f"mqtt_reconnect_max_s ({self.mqtt_reconnect_max_s:g})")
        return self


def load_settings(
    overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None
) -> HubSettings:
    """File (EDGESIGHT_CONFIG) < environment < ``overrides``; errors name their source."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # field → where its value came from, for the error message
    path = env.get("EDGESIGHT_CONFIG")
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of settings")
        values.update(loaded)
        sources.update({str(k): path for k in loaded})
    for field, variable in FALLBACKS.items():
        if env.get(variable):
            values[field] = env[variable]
            sources[field] = f"environment {variable}"
    for variable, field in ENVIRONMENT.items():
        if env.get(variable):
            values[field] = env[variable]
            sources[field] = f"environment {variable}"
    values.update(overrides or {})
    sources.update({k: "overrides" for k in overrides or {}})
    try:
        return HubSettings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if not loc:  # a rule across fields: name the fields it involves
            fields = [f for f in HubSettings.model_fields if f in message]
            loc = ", ".join(fields) or "settings"
            source = "; ".join(f"{f} from {sources.get(f, 'defaults')}" for f in fields) or "settings"
        else:
            source = sources.get(loc.split(".")[0], path or "environment")
        raise ConfigError(f"{source}: {loc}: {message}") from None


def default_database_url(instance_path: str | Path) -> str:
    return f"sqlite:///{Path(instance_path) / 'edgesight.db'}"


def normalise_database_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 here (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class MqttAddress(BaseModel):
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(url: str) -> MqttAddress:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ConfigError(f"mqtt url {url!r}: scheme must be mqtt:// or mqtts://")
    tls = parts.scheme in ("mqtts", "ssl")
    return MqttAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=parts.username,
        password=parts.password,
    )
