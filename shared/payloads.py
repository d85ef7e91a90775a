"""Payload models for every JSON message on the wire.

Each model carries ``schema`` (the wire schema version) and forbids unknown keys, so a producer that
drifts from the contract is rejected loudly instead of half-parsed. Timestamps are UNIX seconds (UTC)
as floats: cheap on the edge, unambiguous across time zones.

Decoding is strict (``decode``): no coercion (``"105"`` is not a seq, ``1.0`` is not an int), integers
fit in 64 bits, floats are finite, and pydantic-core's JSON parser refuses lone surrogates, nesting
deeper than its recursion limit and integers of thousands of digits before any Python recursion runs.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import SCHEMA_VERSION

# A single event is small; anything bigger is a bug or an attack (snapshots travel as raw JPEG bytes).
MAX_JSON_PAYLOAD_BYTES = 64 * 1024
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024

DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
# What a database column can hold: signed 64-bit integers (SQLite and PostgreSQL BIGINT).
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
AttributeKey = Annotated[str, Field(min_length=1, max_length=64)]
AttributeValue = Annotated[str, Field(max_length=256)] | Int64 | float | bool
MAX_ATTRIBUTES = 32


class PayloadError(ValueError):
    """A message that does not satisfy the contract; ``reason`` is short and storable."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class WireModel(BaseModel):
    # allow_inf_nan=False: JSON has no NaN/Infinity, and a database or a chart cannot use one.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


WireModel.model_config["populate_by_name"] = True


class DeviceState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class CpuInfo(BaseModel):
    """The device's CPU as far as model choice goes (``shared.cpu_features``): the hub picks a model
    variant whose int8 kernels run fast on it (issue 9)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: Annotated[str, Field(max_length=32, description="platform.machine(), e.g. aarch64, x86_64")]
    int8: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=list,
        description="int8 features: neon, dotprod, i8mm (ARM); avx2, avx512bw, avx512_vnni, avx_vnni, "
        "amx_int8 (x86)",
    )


class StatusPayload(WireModel):
    """Retained on ``status``; the broker publishes the offline variant as the last will."""

    device_id: DeviceId
    state: DeviceState
    ts: float
    agent_version: str | None = None
    model: str | None = Field(default=None, description="active model as name@version")
    uptime_s: float | None = None
    cameras: list[str] = Field(default_factory=list)
    cpu: CpuInfo | None = None


class EventKind(StrEnum):
    OBJECT = "object"  # tracked-object lifecycle (start/update/end)
    ZONE = "zone"  # zone enter / exit
    LOITER = "loiter"  # dwell in a zone longer than T
    LINE = "line"  # directional line crossing
    CROWD = "crowd"  # count in a zone >= N for T seconds
    SPEED = "speed"  # speed between two calibrated lines
    RED_LIGHT = "red_light"  # line crossed while the signal is red
    DETECTION = "detection"  # a raw detection with no rule attached


class EventPhase(StrEnum):
    START = "start"
    UPDATE = "update"
    END = "end"
    INSTANT = "instant"


class EventPayload(WireModel):
    """One event. ``(device_id, event_id)`` is globally unique; ``seq`` orders a device's events."""

    event_id: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    device_id: DeviceId
    seq: Count
    ts: float
    camera: str = "default"
    kind: EventKind
    phase: EventPhase = EventPhase.INSTANT
    label: Annotated[str, Field(max_length=64)]
    score: Unit
    bbox: tuple[Unit, Unit, Unit, Unit] | None = Field(
        default=None, description="normalised x1, y1, x2, y2"
    )
    track_id: Int64 | None = None
    zone: str | None = None
    line: str | None = None
    direction: str | None = None
    count: Int64 | None = None
    value: float | None = Field(default=None, description="rule-specific value, e.g. speed in m/s")
    model: str | None = None
    has_snapshot: bool = False
    attributes: Annotated[dict[AttributeKey, AttributeValue], Field(max_length=MAX_ATTRIBUTES)] = Field(
        default_factory=dict)


class TelemetryPayload(WireModel):
    device_id: DeviceId
    ts: float
    camera: str = "default"
    fps_in: float = 0.0
    fps_processed: float = 0.0
    inference_ms_p50: float | None = None
    inference_ms_p95: float | None = None
    cnn_frame_share: Unit | None = None
    motion_ratio: Unit | None = None
    outbox_depth: Count = 0
    frames_dropped: Count = 0
    events_dropped: Count = 0
    thread_restarts: Count = Field(default=0, description="agent loops restarted after an error since start")
    cpu_temp_c: float | None = None


class ModelOffer(WireModel):
    """Retained on ``model/offer``: the model a device should run (issue: rollout)."""

    campaign_id: str
    name: str
    version: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size_bytes: Annotated[int, Field(gt=0)]
    chunk_size: Annotated[int, Field(gt=0)]
    signature: str | None = Field(default=None, description="base64 Ed25519 over signed_bytes()")
    manifest: dict[str, Any]
    rollback: bool = False
    shadow: bool = False
    device_scope: DeviceId | None = Field(
        default=None,
        description="the one device this model may run on (a site-adapted model); absent: any device",
    )

    def signed_bytes(self) -> bytes:
        """The canonical bytes the hub signs: everything that decides what runs on the device.

        ``device_scope`` is signed only when present, so an unscoped offer signs the same bytes as
        before scopes existed."""
        body: dict[str, Any] = {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "manifest": self.manifest,
            "rollback": self.rollback,
            "shadow": self.shadow,
        }
        if self.device_scope is not None:
            body["device_scope"] = self.device_scope
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class ChunkRequest(WireModel):
    campaign_id: str
    sha256: str
    first: Annotated[int, Field(ge=0)]
    count: Annotated[int, Field(ge=1, le=256)]


class ModelStateName(StrEnum):
    OFFERED = "OFFERED"
    DOWNLOADING = "DOWNLOADING"
    VERIFIED = "VERIFIED"
    INSTALLED = "INSTALLED"
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"
    ROLLED_BACK = "ROLLED_BACK"
    SHADOW = "SHADOW"


class ModelStatePayload(WireModel):
    device_id: DeviceId
    ts: float
    campaign_id: str | None = None
    name: str
    version: str
    state: ModelStateName
    progress: Unit | None = None
    reason: str | None = None
    shadow: dict[str, float] | None = None


SeqRange = tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]
MAX_ACK_RANGES = 4096


class AckPayload(WireModel):
    """On ``acks`` (hub → device, QoS 1): the event seqs one ingest worker has committed.

    Sent after every database commit that held events of this device, by whichever worker committed
    them: ``stored`` lists inclusive ``[lo, hi]`` seq ranges now in the database (new or already
    there), ``rejected`` the ranges dead-lettered for good. Either way the device may delete them from
    its outbox; what is never acknowledged it publishes again (see edge_agent/outbox.py).
    """

    device_id: DeviceId
    ts: float
    stored: Annotated[list[SeqRange], Field(max_length=MAX_ACK_RANGES)] = Field(default_factory=list)
    rejected: Annotated[list[SeqRange], Field(max_length=MAX_ACK_RANGES)] = Field(default_factory=list)
    worker: Annotated[str, Field(max_length=128)] | None = Field(
        default=None, description="client id of the ingest worker that committed them (diagnostics)"
    )


def seq_ranges(seqs: list[int] | set[int]) -> list[tuple[int, int]]:
    """Sorted inclusive ranges covering exactly ``seqs``: {1, 2, 3, 7} → [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


M = TypeVar("M", bound=WireModel)


def decode(model: type[M], raw: bytes, *, topic_device_id: str | None = None) -> M:
    """Parse raw bytes into ``model`` or raise PayloadError with a storable reason; never anything else.

    Strict JSON-mode validation (pydantic-core parses the bytes itself, in Rust, with a recursion limit
    and no lone surrogates), so a hostile body is refused here, not deep in a worker thread.
    When ``topic_device_id`` is given, the payload's ``device_id`` must equal it (anti-spoofing).
    """
    if len(raw) > MAX_JSON_PAYLOAD_BYTES:
        raise PayloadError(f"oversize payload: {len(raw)} bytes > {MAX_JSON_PAYLOAD_BYTES}")
    try:
        msg = model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        if first["type"] == "json_invalid":
            raise PayloadError(f"invalid JSON: {first['msg'].removeprefix('Invalid JSON: ')}") from None
        if first["type"] == "model_type" and not first["loc"]:
            raise PayloadError("payload must be a JSON object") from None
        loc = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise PayloadError(f"schema: {loc}: {first['msg']}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # belt and braces: the parser's own limits
        raise PayloadError(f"invalid JSON: {type(exc).__name__}") from None
    payload_device = getattr(msg, "device_id", topic_device_id)
    if topic_device_id is not None and payload_device != topic_device_id:
        raise PayloadError(
            f"device id mismatch: payload {payload_device!r} on topic of {topic_device_id!r}"
        )
    return msg
