"""Wire payloads for seeing and steering a camera: the preview frame, the remote zone/line config and the
agent's answer to it (DESIGN.md, "Topics": ``preview``, ``config``, ``config/state``).

Geometry is normalised (0..1, x right, y down) like every box on the wire. The contract keeps the
geometry loose on purpose (plain numbers): the *agent* decides what it can run and says why it refused,
so the operator sees the real reason on the page, not a hub-side guess.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared.payloads import MAX_JSON_PAYLOAD_BYTES, DeviceId, Unit, WireModel

# A preview is a small JPEG in JSON (base64 grows it by 4/3): bounded so it always fits one payload.
MAX_PREVIEW_JPEG_BYTES = 40 * 1024
MAX_PREVIEW_WIDTH = 640
MIN_PREVIEW_INTERVAL_S = 0.5
assert MAX_PREVIEW_JPEG_BYTES * 4 // 3 + 4096 < MAX_JSON_PAYLOAD_BYTES

Name = Annotated[str, Field(min_length=1, max_length=64)]
Point = tuple[float, float]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneGeometry(_Part):
    name: Name
    polygon: Annotated[list[Point], Field(max_length=64)]
    labels: list[str] | None = None


class LineGeometry(_Part):
    """Crossing left→right of a→b (on screen) is ``positive``."""

    name: Name
    a: Point
    b: Point
    positive: Annotated[str, Field(max_length=32)] = "in"
    negative: Annotated[str, Field(max_length=32)] = "out"
    labels: list[str] | None = None


class CameraGeometry(_Part):
    zones: Annotated[list[ZoneGeometry], Field(max_length=32)] = Field(default_factory=list)
    lines: Annotated[list[LineGeometry], Field(max_length=32)] = Field(default_factory=list)


class PreviewBox(_Part):
    label: Annotated[str, Field(max_length=64)]
    score: Unit
    bbox: tuple[Unit, Unit, Unit, Unit]
    track_id: int | None = None


class PreviewPayload(WireModel):
    """QoS 0 on ``preview``, at most one per ``MIN_PREVIEW_INTERVAL_S`` per camera; off unless enabled.
    Carries the geometry the camera runs now, so the hub draws exactly what decides events."""

    device_id: DeviceId
    ts: float
    camera: Name = "default"
    width: Annotated[int, Field(gt=0, le=MAX_PREVIEW_WIDTH)]
    height: Annotated[int, Field(gt=0, le=MAX_PREVIEW_WIDTH)]
    jpeg_b64: Annotated[str, Field(max_length=MAX_PREVIEW_JPEG_BYTES * 4 // 3 + 4)]
    boxes: Annotated[list[PreviewBox], Field(max_length=64)] = Field(default_factory=list)
    zones: list[ZoneGeometry] = Field(default_factory=list)
    lines: list[LineGeometry] = Field(default_factory=list)


class RemoteConfig(WireModel):
    """Retained on ``config`` (hub → edge): zones and lines per camera name. Cameras not named keep theirs."""

    config_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    ts: float
    cameras: dict[Name, CameraGeometry]


class ConfigStateName(StrEnum):
    APPLIED = "applied"
    REFUSED = "refused"


class ConfigStatePayload(WireModel):
    """Retained on ``config/state`` (edge → hub): what the agent did with a remote config, and why."""

    device_id: DeviceId
    ts: float
    config_id: str
    state: ConfigStateName
    reason: Annotated[str, Field(max_length=2000)] | None = None
    cameras: dict[Name, CameraGeometry] = Field(
        default_factory=dict, description="the geometry each camera runs after this (the old one if refused)")
