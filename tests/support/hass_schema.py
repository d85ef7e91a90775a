"""Home Assistant's MQTT discovery schema for the three components the hub publishes, as pydantic models.

Encoded from HA's own validation code (home-assistant/core, homeassistant/components/mqtt/):
  * config.py ``MQTT_BASE_SCHEMA`` (qos, encoding) and ``MQTT_RO_SCHEMA`` (state_topic required,
    value_template);
  * schemas.py / entity.py ``MQTT_ENTITY_COMMON_SCHEMA``: availability (single ``availability_topic`` *or*
    an ``availability`` list, never both: ``vol.Exclusive``), ``availability_mode`` (all/any/latest),
    ``device`` (``MQTT_ENTITY_DEVICE_INFO_SCHEMA``: at least one of identifiers/connections),
    ``origin`` (name required), enabled_by_default, entity_category, icon, json_attributes_*,
    object_id, unique_id;
  * binary_sensor.py ``PLATFORM_SCHEMA_MODERN``: device_class, expire_after, force_update, name,
    off_delay, payload_on, payload_off;
  * sensor.py ``_PLATFORM_SCHEMA_BASE``: device_class, expire_after, force_update,
    last_reset_value_template (only with state_class total), name, options, suggested_display_precision,
    state_class, unit_of_measurement;
  * camera.py ``PLATFORM_SCHEMA_BASE``: name, topic (required), image_encoding ("b64"; absent = raw bytes);
  * discovery.py: the topic ``<prefix>/<component>/[<node_id>/]<object_id>/config`` with node and object
    ids of ``[a-zA-Z0-9_-]``, and an empty retained payload deletes the entity.
Docs: https://www.home-assistant.io/integrations/mqtt/ (MQTT discovery), .../binary_sensor.mqtt/,
.../sensor.mqtt/, .../camera.mqtt/.

HA drops unknown keys (``extra=vol.REMOVE_EXTRA``); here they are errors (``extra="forbid"``), so a
misspelt option fails the test instead of being silently ignored by HA. Abbreviated keys (``stat_t``…)
are not accepted: the hub sends full names.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# discovery.py TOPIC_MATCHER, applied to the topic after "<discovery prefix>/".
DISCOVERY_TOPIC_RE = re.compile(
    r"^(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config$")

# homeassistant/components/binary_sensor/__init__.py BinarySensorDeviceClass
BINARY_SENSOR_DEVICE_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door", "gas",
    "heat", "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug", "power",
    "presence", "problem", "running", "safety", "smoke", "sound", "tamper", "update", "vibration", "window",
}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}  # SensorStateClass
ICON_RE = re.compile(r"^[a-z0-9_-]+:[a-z0-9-]+$")  # cv.icon: "<prefix>:<name>"


def valid_subscribe_topic(topic: str) -> str:
    """HA's util.valid_subscribe_topic: non-empty UTF-8 under 64 KiB, no NUL, wildcards only as whole
    levels and '#' last."""
    if not topic or len(topic.encode()) > 65535 or "\0" in topic:
        raise ValueError(f"invalid topic {topic!r}")
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "+" in level and level != "+":
            raise ValueError(f"'+' must be a whole level in {topic!r}")
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"'#' must be the last whole level in {topic!r}")
    return topic


Topic = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DeviceInfo(_Strict):
    identifiers: list[str] | str | None = None
    connections: list[Annotated[list[str], Field(min_length=2, max_length=2)]] | None = None
    manufacturer: str | None = None
    model: str | None = None
    model_id: str | None = None
    name: str | None = None
    hw_version: str | None = None
    serial_number: str | None = None
    sw_version: str | None = None
    via_device: str | None = None
    suggested_area: str | None = None
    configuration_url: str | None = None

    @model_validator(mode="after")
    def _identified(self) -> DeviceInfo:
        if not self.identifiers and not self.connections:
            raise ValueError("Device must have at least one identifying value in 'identifiers' and/or "
                             "'connections'")
        return self


class OriginInfo(_Strict):
    name: str
    sw_version: str | None = None
    support_url: str | None = None


class AvailabilityItem(_Strict):
    topic: Topic
    payload_available: str = "online"
    payload_not_available: str = "offline"
    value_template: str | None = None

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        return valid_subscribe_topic(value)


class EntityCommon(_Strict):
    """MQTT_BASE_SCHEMA + MQTT_ENTITY_COMMON_SCHEMA (availability included)."""

    qos: Literal[0, 1, 2] = 0
    encoding: str | None = None
    availability_topic: Topic | None = None
    availability_template: str | None = None
    payload_available: str | None = None
    payload_not_available: str | None = None
    availability: list[AvailabilityItem] | None = None
    availability_mode: Literal["all", "any", "latest"] = "latest"
    device: DeviceInfo | None = None
    origin: OriginInfo | None = None
    enabled_by_default: bool = True
    entity_category: Literal["config", "diagnostic"] | None = None
    icon: str | None = None
    json_attributes_topic: Topic | None = None
    json_attributes_template: str | None = None
    object_id: str | None = None
    unique_id: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _exclusive(self) -> EntityCommon:
        if self.availability_topic is not None and self.availability is not None:
            raise ValueError("availability_topic and availability are exclusive")
        if self.icon is not None and not ICON_RE.match(self.icon):
            raise ValueError(f"icon {self.icon!r} is not <prefix>:<name>")
        if self.availability_topic is not None:
            valid_subscribe_topic(self.availability_topic)
        return self


class BinarySensorConfig(EntityCommon):
    state_topic: Topic
    value_template: str | None = None
    device_class: str | None = None
    expire_after: Annotated[int, Field(ge=0)] | None = None
    force_update: bool = False
    off_delay: Annotated[int, Field(ge=0)] | None = None
    payload_on: str = "ON"
    payload_off: str = "OFF"

    @model_validator(mode="after")
    def _binary(self) -> BinarySensorConfig:
        valid_subscribe_topic(self.state_topic)
        if self.device_class is not None and self.device_class not in BINARY_SENSOR_DEVICE_CLASSES:
            raise ValueError(f"unknown binary_sensor device_class {self.device_class!r}")
        return self


class SensorConfig(EntityCommon):
    state_topic: Topic
    value_template: str | None = None
    device_class: str | None = None  # the sensor device classes; the hub sends none (counts have none)
    expire_after: Annotated[int, Field(ge=0)] | None = None
    force_update: bool = False
    last_reset_value_template: str | None = None
    options: list[str] | None = None
    suggested_display_precision: Annotated[int, Field(ge=0)] | None = None
    state_class: str | None = None
    unit_of_measurement: str | None = None

    @model_validator(mode="after")
    def _sensor(self) -> SensorConfig:
        valid_subscribe_topic(self.state_topic)
        if self.state_class is not None and self.state_class not in STATE_CLASSES:
            raise ValueError(f"unknown state_class {self.state_class!r}")
        if self.last_reset_value_template is not None and self.state_class != "total":
            raise ValueError("last_reset_value_template needs state_class total")
        if self.options is not None and (not self.options or self.state_class or self.unit_of_measurement):
            raise ValueError("options: only a non-empty list, for enum sensors")
        return self


class CameraConfig(EntityCommon):
    topic: Topic
    image_encoding: Literal["b64"] | None = None

    @model_validator(mode="after")
    def _camera(self) -> CameraConfig:
        valid_subscribe_topic(self.topic)
        return self


COMPONENTS: dict[str, type[EntityCommon]] = {
    "binary_sensor": BinarySensorConfig, "sensor": SensorConfig, "camera": CameraConfig,
}


def validate_discovery(topic: str, payload: dict, prefix: str = "homeassistant",
                       ) -> tuple[str, str | None, str, EntityCommon]:
    """Check one discovery message as HA would; returns (component, node_id, object_id, parsed)."""
    match = DISCOVERY_TOPIC_RE.match(topic[len(prefix) + 1:]) if topic.startswith(prefix + "/") else None
    if match is None:
        raise ValueError(f"not a discovery topic: {topic!r}")
    component = match["component"]
    if component not in COMPONENTS:
        raise ValueError(f"component {component!r} is not one the hub should publish")
    return component, match["node_id"], match["object_id"], COMPONENTS[component].model_validate(payload)
