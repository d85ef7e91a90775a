"""Turn one MQTT message into what the database needs, or into a dead letter with a reason.

Pure functions (no I/O) so every rejection rule is unit-testable and the same for every worker.
The wire contract (shared.payloads.decode) does the schema work; this adds what the database needs on
top: 64-bit integers, finite floats, text that encodes to UTF-8 without NUL characters (PostgreSQL text
refuses NUL, sqlite3 refuses lone surrogates), and a ``ts`` within a window of the hub's clock (an event
stamped in the year 33658 would break every page that shows it, and retention would never reach it).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import String

from cloud_hub.camera import ingest as camera_ingest
from cloud_hub.capture import ingest as capture_ingest
from cloud_hub.models import Device, Event, Telemetry
from shared.payloads import (
    MAX_JSON_PAYLOAD_BYTES,
    MAX_SNAPSHOT_BYTES,
    EventPayload,
    PayloadError,
    StatusPayload,
    TelemetryPayload,
    decode,
)
from shared.topics import ParsedTopic, TopicError, TopicKind, Topics

INT64_MAX = 2**63 - 1
EVENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class Incoming:
    """A message as it came off the wire; ``mid``/``qos`` are what we ack after commit."""

    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0
    received_at: float = 0.0


@dataclass(frozen=True)
class TsWindow:
    """How far a device's ``ts`` may be from the hub's clock: behind (a backlog drained after an
    outage) and ahead (clock skew). Outside it the message is a dead letter, not a row."""

    past_s: float = 30 * 86400.0
    future_s: float = 3600.0

    def check(self, ts: float, now: float, *, past: bool = True) -> None:
        if ts > now + self.future_s:
            raise PayloadError(f"ts out of window: {ts!r} is more than {self.future_s:g} s ahead of the hub")
        floor = now - self.past_s if past else 0.0
        if ts < floor:
            raise PayloadError(f"ts out of window: {ts!r} is before {floor:.0f}"
                               + (f" ({self.past_s:g} s behind the hub)" if past else ""))


DEFAULT_WINDOW = TsWindow()


@dataclass
class Record:
    kind: Literal["event", "status", "telemetry", "snapshot", "preview", "config_state", "capture_chunk",
                  "capture_state", "dead"]
    incoming: Incoming
    device_id: str | None = None
    row: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


def dead(incoming: Incoming, reason: str) -> Record:
    return Record("dead", incoming, reason=reason[:1000])


def _text_limits(model: type) -> dict[str, int]:
    return {c.name: c.type.length for c in model.__table__.columns
            if isinstance(c.type, String) and c.type.length}


# Column widths, so an over-long field is a clear dead letter on every database (SQLite would not care).
LIMITS = {"event": _text_limits(Event), "status": _text_limits(Device), "telemetry": _text_limits(Telemetry)}


def _check_storable(values: dict[str, Any], kind: str) -> None:
    """What the database cannot hold: integers beyond 64 bits, NaN/inf, NUL characters, over-long text."""
    limits = LIMITS[kind]
    for key, value in values.items():
        _check_value(value, key)
        if key in limits and isinstance(value, str) and len(value) > limits[key]:
            raise PayloadError(f"too long: {key} has {len(value)} characters, at most {limits[key]}")


def _check_value(value: Any, where: str) -> None:
    kind = type(value)
    if kind is str:
        if "\x00" in value:
            raise PayloadError(f"invalid text: {where} contains a NUL character")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise PayloadError(f"invalid text: {where} is not valid UTF-8 (lone surrogate)") from None
    elif kind is int:
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise PayloadError(f"out of range: {where} does not fit in 64 bits")
    elif kind is float:
        if not math.isfinite(value):
            raise PayloadError(f"out of range: {where} is not a finite number")
    elif kind is dict:
        for k, v in value.items():
            _check_value(str(k), f"a key of {where}")
            _check_value(v, f"{where}.{k}")
    elif kind is list or kind is tuple:
        for i, v in enumerate(value):
            _check_value(v, f"{where}.{i}")


def event_row(msg: EventPayload, received_at: float) -> dict[str, Any]:
    row = msg.model_dump(exclude={"schema_version"})
    row["kind"] = msg.kind.value
    row["phase"] = msg.phase.value
    row["bbox"] = list(msg.bbox) if msg.bbox is not None else None
    row["attributes"] = dict(msg.attributes) or None
    row["received_at"] = received_at
    return row


def telemetry_row(msg: TelemetryPayload, received_at: float) -> dict[str, Any]:
    row = msg.model_dump(exclude={"schema_version"})
    row["received_at"] = received_at
    return row


def status_row(msg: StatusPayload) -> dict[str, Any]:
    """Only what the status says: a bare last will (``offline``) keeps the known versions."""
    row: dict[str, Any] = {"state": msg.state.value, "status_ts": msg.ts}
    optional = {"agent_version": msg.agent_version, "model": msg.model, "uptime_s": msg.uptime_s,
                "cameras": list(msg.cameras) or None}
    row.update({k: v for k, v in optional.items() if v is not None})
    return row


@lru_cache(maxsize=65536)
def parse_topic(topics: Topics, topic: str) -> ParsedTopic:
    """A fleet publishes on a bounded set of topics (devices x kinds): parse each one once."""
    return topics.parse(topic)


def classify(topics: Topics, incoming: Incoming, window: TsWindow = DEFAULT_WINDOW) -> Record:
    """Every contract failure becomes a dead letter whose reason says what was wrong (anything else
    that could raise is caught by cloud_hub.ingest.guard)."""
    now = incoming.received_at or time.time()
    try:
        parsed = parse_topic(topics, incoming.topic)
    except TopicError as exc:
        return dead(incoming, f"unknown topic: {exc}")
    device_id = parsed.device_id
    try:
        if parsed.kind is TopicKind.EVENTS:
            event = decode(EventPayload, incoming.payload, topic_device_id=device_id)
            window.check(event.ts, now)
            row = event_row(event, incoming.received_at)
            _check_storable(row, "event")
            return Record("event", incoming, device_id, row)
        if parsed.kind is TopicKind.STATUS:
            status = decode(StatusPayload, incoming.payload, topic_device_id=device_id)
            window.check(status.ts, now, past=False)  # a last will carries its connect time: any age
            row = status_row(status)
            _check_storable(row, "status")
            return Record("status", incoming, device_id, row)
        if parsed.kind is TopicKind.TELEMETRY:
            telemetry = decode(TelemetryPayload, incoming.payload, topic_device_id=device_id)
            window.check(telemetry.ts, now)
            row = telemetry_row(telemetry, incoming.received_at)
            _check_storable(row, "telemetry")
            return Record("telemetry", incoming, device_id, row)
        if parsed.kind is TopicKind.SNAPSHOT:
            return _snapshot(incoming, device_id, parsed.arg or "")
        if parsed.kind in camera_ingest.KINDS:
            record = camera_ingest.classify(parsed.kind, incoming, device_id)
            ts = record.row.get("ts", record.row.get("reported_at"))
            if isinstance(ts, float | int):
                window.check(ts, now)  # pages show these times too
            return record
        if parsed.kind in capture_ingest.KINDS:
            record = capture_ingest.classify(parsed.kind, incoming, device_id, parsed.arg)
            window.check(record.row["ts"], now)
            return record
    except PayloadError as exc:
        return dead(incoming, exc.reason)
    return dead(incoming, f"unknown topic: kind {parsed.kind.value!r} is not ingested by the hub")


def _snapshot(incoming: Incoming, device_id: str, event_id: str) -> Record:
    if not EVENT_ID_RE.match(event_id):
        raise PayloadError(f"invalid snapshot topic: event id {event_id!r}")
    if len(incoming.payload) > MAX_SNAPSHOT_BYTES:
        raise PayloadError(f"oversize snapshot: {len(incoming.payload)} bytes > {MAX_SNAPSHOT_BYTES}")
    if not incoming.payload.startswith(JPEG_MAGIC):
        raise PayloadError("snapshot is not a JPEG (missing FF D8 FF header)")
    return Record("snapshot", incoming, device_id, {"event_id": event_id})


def rejected_event_seq(topics: Topics, incoming: Incoming) -> tuple[str, int] | None:
    """For a dead-lettered event: ``(device, seq)`` when the message names them plainly, so the hub can
    tell the device to stop resending it. Best effort and never raises (the message is hostile)."""
    try:
        parsed = parse_topic(topics, incoming.topic)
        if parsed.kind is not TopicKind.EVENTS or len(incoming.payload) > MAX_JSON_PAYLOAD_BYTES:
            return None
        data = json.loads(incoming.payload)
    except Exception:  # RecursionError, UnicodeDecodeError, ValueError (huge ints), TopicError
        return None
    if not isinstance(data, dict) or data.get("device_id") != parsed.device_id:
        return None
    seq = data.get("seq")
    if type(seq) is not int or not 0 <= seq <= INT64_MAX:
        return None
    return parsed.device_id, seq
