"""What Home Assistant should see, as messages: discovery configs and entity states for a fleet view.

Pure functions over plain data (``FleetView``), so the rendering is tested without a broker and the
publisher only diffs and sends. Keys are HA's full option names (no abbreviations) from the MQTT
binary_sensor, sensor and camera platforms; tests/support/hass_schema.py checks every payload against
HA's documented discovery schema.

Per device (an HA *device*, identifiers ``edgesight_<id>``):
  * ``binary_sensor`` connectivity "Online" — stays available while the device is offline (it says so);
  * per zone ``binary_sensor`` occupancy "<camera> <zone> occupied" and ``sensor`` "<camera> <zone> count";
  * per line and direction ``sensor`` "<camera> <line> <direction>" (state_class total_increasing);
  * per camera ``camera`` "<camera> last event": the JPEG of the latest event with a snapshot.
Everything but "Online" is unavailable while the device is offline or the publisher is gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from shared.topics import HASS_OFFLINE, HASS_ONLINE, HassTopics, hass_slug

NODE_PREFIX = "edgesight_"
MANUFACTURER = "edgesight"


@dataclass(frozen=True)
class LineView:
    name: str
    directions: tuple[str, ...]  # the line's positive and negative names, or those seen in events


@dataclass
class CameraView:
    zones: set[str] = field(default_factory=set)
    lines: dict[str, LineView] = field(default_factory=dict)


@dataclass
class DeviceView:
    device_id: str
    online: bool
    name: str | None = None
    agent_version: str | None = None
    model: str | None = None
    cameras: dict[str, CameraView] = field(default_factory=dict)
    occupancy: dict[tuple[str, str], int] = field(default_factory=dict)  # (camera, zone) -> inside now
    crossings: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (camera, line, dir) -> total
    snapshots: dict[str, SnapshotRef] = field(default_factory=dict)  # camera -> latest event picture


@dataclass(frozen=True)
class SnapshotRef:
    """A stored snapshot (its bytes are read only when it changes)."""

    snapshot_id: int
    path: str


@dataclass(frozen=True)
class Rendered:
    configs: dict[str, bytes]  # discovery topic -> retained JSON config
    states: dict[str, bytes | SnapshotRef]  # state topic -> retained payload (or a picture to send)


def node_id(device_id: str) -> str:
    return NODE_PREFIX + hass_slug(device_id)


def _device_block(device: DeviceView) -> dict[str, object]:
    block: dict[str, object] = {
        "identifiers": [f"{NODE_PREFIX}{device.device_id}"],
        "name": device.name or device.device_id,
        "manufacturer": MANUFACTURER,
        "model": "edge agent" + (f" ({device.model})" if device.model else ""),
    }
    if device.agent_version:
        block["sw_version"] = device.agent_version
    return block


def render(topics: HassTopics, devices: list[DeviceView], origin_version: str) -> Rendered:
    configs: dict[str, bytes] = {}
    states: dict[str, bytes | SnapshotRef] = {topics.bridge(): HASS_ONLINE.encode()}
    origin = {"name": "edgesight hub", "sw_version": origin_version}
    for device in devices:
        node = node_id(device.device_id)
        availability_topic = topics.availability(node)
        block = _device_block(device)
        bridge = {"topic": topics.bridge()}
        both = {"availability": [bridge, {"topic": availability_topic}], "availability_mode": "all"}

        def add(component: str, object_id: str, options: dict[str, object], *, node: str = node,
                block: dict[str, object] = block) -> None:
            config = {"unique_id": f"{node}_{object_id}", "device": block, "origin": origin, **options}
            topic = topics.discovery(component, node, object_id)
            configs[topic] = json.dumps(config, sort_keys=True).encode()

        add("binary_sensor", "online", {
            "name": "Online", "device_class": "connectivity", "entity_category": "diagnostic",
            "state_topic": availability_topic, "payload_on": HASS_ONLINE, "payload_off": HASS_OFFLINE,
            "availability": [bridge], "qos": 1,
        })
        states[availability_topic] = (HASS_ONLINE if device.online else HASS_OFFLINE).encode()
        for camera, view in sorted(device.cameras.items()):
            cam = hass_slug(camera)
            for zone in sorted(view.zones):
                zslug = hass_slug(zone)
                occupied = topics.state(node, cam, "zone", zslug, "occupied")
                count = topics.state(node, cam, "zone", zslug, "count")
                add("binary_sensor", f"{cam}_zone_{zslug}_occupied", {
                    "name": f"{camera} {zone} occupied", "device_class": "occupancy",
                    "state_topic": occupied, "payload_on": "ON", "payload_off": "OFF", "qos": 1, **both,
                })
                add("sensor", f"{cam}_zone_{zslug}_count", {
                    "name": f"{camera} {zone} count", "state_topic": count, "state_class": "measurement",
                    "icon": "mdi:account-group", "suggested_display_precision": 0, "qos": 1, **both,
                })
                inside = device.occupancy.get((camera, zone), 0)
                states[occupied] = b"ON" if inside > 0 else b"OFF"
                states[count] = str(inside).encode()
            for line in sorted(view.lines.values(), key=lambda item: item.name):
                lslug = hass_slug(line.name)
                for direction in line.directions:
                    dslug = hass_slug(direction)
                    topic = topics.state(node, cam, "line", lslug, dslug)
                    add("sensor", f"{cam}_line_{lslug}_{dslug}", {
                        "name": f"{camera} {line.name} {direction}", "state_topic": topic,
                        "state_class": "total_increasing", "icon": "mdi:counter",
                        "suggested_display_precision": 0, "qos": 1, **both,
                    })
                    states[topic] = str(device.crossings.get((camera, line.name, direction), 0)).encode()
            snapshot_topic = topics.state(node, cam, "snapshot")
            add("camera", f"{cam}_snapshot", {
                "name": f"{camera} last event", "topic": snapshot_topic, "qos": 1, **both,
            })
            if camera in device.snapshots:
                states[snapshot_topic] = device.snapshots[camera]
    return Rendered(configs, states)
