"""Read queries shared by the REST API, the dashboard pages and the dashboard benchmark.

Each query is shaped for an index in models.py: newest-first keyset pagination on (ts, id), filters
that match an index prefix, counts over a bounded time window. None of them counts a whole table.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer as SAInteger
from sqlalchemy import Select, and_, cast, func, select, tuple_
from sqlalchemy.orm import Session

from cloud_hub.models import Device, Event, Snapshot, Telemetry
from shared.payloads import DeviceState

MAX_PAGE = 500
DEFAULT_PAGE = 50
COUNT_GROUPS = ("label", "line", "zone", "occupancy", "kind", "device")
# What each group counts: objects, not events (an object makes a start, updates, zone and line events).
COUNT_MEANING = {
    "label": "tracked objects (one per track)",
    "line": "line crossings, per direction",
    "zone": "zone entries",
    "occupancy": "most objects inside each zone at once",
    "kind": "events (every kind and phase)",
    "device": "tracked objects (one per track)",
}
EVENT_FILTERS = ("device", "label", "kind", "zone", "line", "camera")


class QueryError(ValueError):
    """A bad query parameter; the message names it (the API answers 400 with it)."""


def parse_time(value: str | None, name: str) -> float | None:
    """UNIX seconds or ISO 8601 (naive means UTC)."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise QueryError(f"{name}: expected UNIX seconds or ISO 8601, got {value!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    if not math.isfinite(number):
        raise QueryError(f"{name}: must be a finite number")
    return number


def parse_int(value: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise QueryError(f"{name}: expected an integer, got {value!r}") from None
    if not lo <= number <= hi:
        raise QueryError(f"{name}: must be between {lo} and {hi}")
    return number


def encode_cursor(ts: float, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{ts!r}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, row_id = raw.split("|")
        value = float(ts), int(row_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise QueryError("cursor: not a cursor returned by this API") from None
    if not math.isfinite(value[0]):
        raise QueryError("cursor: not a cursor returned by this API")
    return value


@dataclass(frozen=True)
class EventFilter:
    device: str | None = None
    label: str | None = None
    kind: str | None = None
    zone: str | None = None
    line: str | None = None
    camera: str | None = None
    since: float | None = None
    until: float | None = None

    @classmethod
    def from_args(cls, args: Any) -> EventFilter:
        values = {name: (args.get(name) or None) for name in EVENT_FILTERS}
        return cls(**values, since=parse_time(args.get("since"), "since"),
                   until=parse_time(args.get("until"), "until"))

    def apply(self, query: Select) -> Select:
        conditions = []
        for name, column in (("device", Event.device_id), ("label", Event.label), ("kind", Event.kind),
                             ("zone", Event.zone), ("line", Event.line), ("camera", Event.camera)):
            value = getattr(self, name)
            if value is not None:
                conditions.append(column == value)
        if self.since is not None:
            conditions.append(Event.ts >= self.since)
        if self.until is not None:
            conditions.append(Event.ts < self.until)
        return query.where(and_(*conditions)) if conditions else query

    def as_args(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


def events_page(db: Session, flt: EventFilter, limit: int = DEFAULT_PAGE,
                cursor: str | None = None) -> tuple[list[dict], str | None]:
    """Newest first; ``next_cursor`` continues after the last row (stable under concurrent inserts)."""
    query = flt.apply(select(Event, Snapshot.sha256)
                      .outerjoin(Snapshot, and_(Snapshot.device_id == Event.device_id,
                                                Snapshot.event_id == Event.event_id)))
    if cursor:
        ts, row_id = decode_cursor(cursor)
        query = query.where(tuple_(Event.ts, Event.id) < tuple_(ts, row_id))
    rows = db.execute(query.order_by(Event.ts.desc(), Event.id.desc()).limit(limit + 1)).all()
    items = [event_dict(event, sha) for event, sha in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1][0].ts, rows[limit - 1][0].id) if len(rows) > limit else None
    return items, next_cursor


def iter_events(db: Session, flt: EventFilter, max_rows: int):
    """Newest first, streamed in chunks (CSV export)."""
    query = flt.apply(select(Event)).order_by(Event.ts.desc(), Event.id.desc()).limit(max_rows)
    yield from db.execute(query.execution_options(yield_per=1000)).scalars()


EVENT_FIELDS = ("id", "device_id", "event_id", "seq", "ts", "camera", "kind", "phase", "label", "score",
                "bbox", "track_id", "zone", "line", "direction", "count", "value", "model", "has_snapshot",
                "attributes", "received_at")


def event_dict(event: Event, snapshot_sha: str | None = None) -> dict[str, Any]:
    data = {name: getattr(event, name) for name in EVENT_FIELDS}
    data["attributes"] = data["attributes"] or {}
    data["snapshot_url"] = (f"/api/v1/snapshots/{event.device_id}/{event.event_id}"
                            if snapshot_sha else None)
    return data


DEVICE_FIELDS = ("id", "name", "site", "state", "first_seen", "last_seen", "status_ts", "agent_version",
                 "model", "uptime_s", "cameras", "fps", "inference_ms_p50", "telemetry_ts")


def device_dict(device: Device) -> dict[str, Any]:
    data = {name: getattr(device, name) for name in DEVICE_FIELDS}
    data["cameras"] = data["cameras"] or []
    data["online"] = device.state == DeviceState.ONLINE.value
    return data


def devices(db: Session) -> list[dict]:
    return [device_dict(d) for d in db.scalars(select(Device).order_by(Device.id))]


def bucket_expression(dialect: str, size: int):
    """floor(ts / size) * size in both dialects (SQLite has no floor() by default; ts is positive)."""
    if dialect == "postgresql":
        return func.floor(Event.ts / size) * size
    return cast(Event.ts / size, SAInteger) * size


def counts(db: Session, flt: EventFilter, group: str, bucket_s: int) -> list[dict]:
    """Event counts per time bucket per key; for lines the key is split by direction."""
    if group not in COUNT_GROUPS:
        raise QueryError(f"group: one of {', '.join(COUNT_GROUPS)}")
    if flt.since is None:
        flt = EventFilter(**(flt.as_args() | {"since": time.time() - 86400}))
    if group == "occupancy":
        return _occupancy(db, flt, bucket_s)
    bucket = bucket_expression(db.get_bind().dialect.name, bucket_s).label("bucket")
    key = {"label": Event.label, "line": Event.line, "zone": Event.zone, "kind": Event.kind,
           "device": Event.device_id}[group].label("key")
    columns = [bucket, key, func.count().label("count")]
    group_by = [bucket, key]
    if group == "line":
        columns.insert(2, Event.direction.label("direction"))
        group_by.append(Event.direction)
    query = flt.apply(select(*columns))
    if group in ("label", "device"):
        query = query.where(Event.kind == "object", Event.phase == "start")
    elif group == "zone":
        query = query.where(Event.kind == "zone", Event.phase != "end")  # entries (and instant visits)
    elif group == "line":
        query = query.where(Event.kind == "line")
    if group in ("line", "zone"):
        query = query.where(key.isnot(None))
    rows = db.execute(query.group_by(*group_by).order_by(bucket, key)).all()
    out = []
    for row in rows:
        item = {"bucket": float(row.bucket), "key": row.key, "count": int(row.count)}
        if group == "line":
            item["direction"] = row.direction
        out.append(item)
    return out


OCCUPANCY_MAX_ROWS = 200_000


def _occupancy(db: Session, flt: EventFilter, bucket_s: int) -> list[dict]:
    """The most objects inside each zone at once during every bucket, replaying entries and exits in time
    order from the window's start (never below zero: an exit of someone who entered before the window
    is not a debt). Every bucket of the window gets a value, so the line is continuous."""
    query = (flt.apply(select(Event.ts, Event.zone, Event.phase))
             .where(Event.kind == "zone", Event.zone.isnot(None), Event.phase.in_(("start", "end")))
             .order_by(Event.ts, Event.id).limit(OCCUPANCY_MAX_ROWS))
    rows = db.execute(query).all()
    if not rows:
        return []
    since = flt.since if flt.since is not None else rows[0].ts
    until = flt.until if flt.until is not None else time.time()
    first = math.floor(since / bucket_s) * bucket_s
    inside: dict[str, int] = {}
    peak: dict[str, dict[float, int]] = {}
    after: dict[str, dict[float, int]] = {}  # inside at the end of each bucket with events
    for ts, zone, phase in rows:
        now = inside.get(zone, 0)
        inside[zone] = now + 1 if phase == "start" else max(0, now - 1)
        bucket = float(math.floor(ts / bucket_s) * bucket_s)
        per = peak.setdefault(zone, {})
        per[bucket] = max(per.get(bucket, 0), inside[zone])
        after.setdefault(zone, {})[bucket] = inside[zone]
    out = []
    for zone in sorted(peak):
        carried, ts = 0, first
        while ts <= until and len(out) < 20_000:
            key = float(ts)
            out.append({"bucket": key, "key": zone, "count": peak[zone].get(key, carried)})
            carried = after[zone].get(key, carried)
            ts += bucket_s
    return out


TELEMETRY_FIELDS = ("ts", "camera", "fps_in", "fps_processed", "inference_ms_p50", "inference_ms_p95",
                    "cnn_frame_share", "motion_ratio", "outbox_depth", "frames_dropped", "events_dropped",
                    "thread_restarts", "cpu_temp_c")


def telemetry(
    db: Session, device_id: str, since: float | None, until: float | None, limit: int
) -> list[dict]:
    query = select(Telemetry).where(Telemetry.device_id == device_id)
    if since is not None:
        query = query.where(Telemetry.ts >= since)
    if until is not None:
        query = query.where(Telemetry.ts < until)
    rows = db.scalars(query.order_by(Telemetry.ts.desc()).limit(limit)).all()
    return [{name: getattr(t, name) for name in TELEMETRY_FIELDS} for t in reversed(rows)]


def events_since(db: Session, received_after: float, limit: int = 200) -> list[dict]:
    """Recently committed events for the live stream (by hub clock, so late device clocks still show)."""
    query = (select(Event, Snapshot.sha256)
             .outerjoin(Snapshot, and_(Snapshot.device_id == Event.device_id,
                                       Snapshot.event_id == Event.event_id))
             .where(Event.received_at > received_after)
             .order_by(Event.received_at, Event.id).limit(limit))
    return [event_dict(event, sha) for event, sha in db.execute(query).all()]
