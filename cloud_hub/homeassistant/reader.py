"""The fleet as Home Assistant shows it, read from the hub's database (what ingest committed).

Reading the database instead of the device topics means the publisher sees each event exactly once
(ingest already de-duplicated, validated and dead-lettered), needs no read access to device topics,
and cannot be hurt by a malformed message: the worst a device can do is name a zone oddly, and names
are slugged before they touch a topic.

Counts are incremental: at start one aggregate (line crossings per direction since the first stored
event; zone occupancy replayed since each device last came online), then each poll reads only the rows
after an id cursor. Ids can commit out of order on PostgreSQL (and insert-or-ignore burns sequence
values), so ids skipped by the cursor are re-read for ``GAP_TTL_S`` before they are given up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, and_, func, select, tuple_
from sqlalchemy.orm import Session

from cloud_hub.camera.models import CameraPreview, DeviceConfig
from cloud_hub.homeassistant.entities import CameraView, DeviceView, LineView, SnapshotRef
from cloud_hub.models import Device, Event, Snapshot

log = logging.getLogger(__name__)

GAP_TTL_S = 30.0
MAX_GAPS = 5000
BATCH = 5000
REPLAY_MAX_ROWS = 20_000
DEFAULT_DIRECTIONS = ("in", "out")


class IdCursor:
    """Rows after ``last`` plus the ids it skipped recently (they may still commit)."""

    def __init__(self, last: int = 0):
        self.last = last
        self.gaps: dict[int, float] = {}

    def pending_gaps(self) -> list[int]:
        return sorted(self.gaps)

    def advance(self, ids: Iterable[int], now: float) -> None:
        for row_id in sorted(ids):
            if row_id in self.gaps:
                del self.gaps[row_id]
                continue
            if row_id <= self.last:
                continue
            for missing in range(self.last + 1, min(row_id, self.last + 1 + MAX_GAPS)):
                self.gaps[missing] = now
            self.last = row_id
        for row_id, seen in list(self.gaps.items()):
            if now - seen > GAP_TTL_S:
                del self.gaps[row_id]
        while len(self.gaps) > MAX_GAPS:
            del self.gaps[min(self.gaps)]


def _new_rows(db: Session, query, id_col, cursor: IdCursor) -> list[Any]:
    rows = list(db.execute(query.where(id_col > cursor.last).order_by(id_col).limit(BATCH)).all())
    gaps = cursor.pending_gaps()
    for i in range(0, len(gaps), 500):
        rows += db.execute(query.where(id_col.in_(gaps[i:i + 500]))).all()
    return rows


def _geometry(cameras: Any) -> dict[str, CameraView]:
    """``{camera: {zones: [...], lines: [...]}}`` as stored (preview or config answer) → views."""
    out: dict[str, CameraView] = {}
    if not isinstance(cameras, dict):
        return out
    for camera, geo in cameras.items():
        if not isinstance(camera, str) or not isinstance(geo, dict):
            continue
        view = out.setdefault(camera, CameraView())
        for zone in geo.get("zones") or []:
            if isinstance(zone, dict) and isinstance(zone.get("name"), str) and zone["name"]:
                view.zones.add(zone["name"])
        for line in geo.get("lines") or []:
            if isinstance(line, dict) and isinstance(line.get("name"), str) and line["name"]:
                directions = tuple(str(line.get(key) or default)
                                   for key, default in (("positive", "in"), ("negative", "out")))
                view.lines[line["name"]] = LineView(line["name"], directions)
    return out


class FleetReader:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.events = IdCursor()
        self.snapshots = IdCursor()
        self.inside: dict[tuple[str, str, str], set[object]] = {}  # (device, camera, zone) -> tracks
        self.crossings: dict[tuple[str, str, str, str], int] = {}  # (device, camera, line, dir) -> n
        self.seen_zones: dict[tuple[str, str], set[str]] = {}  # names seen in events, per device camera
        self.seen_lines: dict[tuple[str, str], dict[str, set[str]]] = {}
        self.latest: dict[tuple[str, str], SnapshotRef] = {}  # (device, camera) -> picture
        self._unresolved: dict[int, tuple[str, str, str, float]] = {}  # snapshot id -> its event, waiting
        self._online: dict[str, bool] = {}
        self._started = False

    # ------------------------------------------------------------------------------------ start
    def start(self, db: Session) -> None:
        """The totals so far; afterwards ``poll`` only reads what is new."""
        self.events.last = db.scalar(select(func.max(Event.id))) or 0
        self.snapshots.last = db.scalar(select(func.max(Snapshot.id))) or 0
        rows = db.execute(
            select(Event.device_id, Event.camera, Event.line, Event.direction, func.count())
            .where(Event.kind == "line", Event.line.isnot(None), Event.direction.isnot(None),
                   Event.id <= self.events.last)
            .group_by(Event.device_id, Event.camera, Event.line, Event.direction)).all()
        for device_id, camera, line, direction, n in rows:
            self.crossings[(device_id, camera, line, direction)] = int(n)
            self._seen_line(device_id, camera, line, direction)
        for device in db.scalars(select(Device)):
            self._online[device.id] = device.state == "online"
            if device.state != "online" or device.status_ts is None:
                continue
            replay = db.execute(
                select(Event.device_id, Event.camera, Event.kind, Event.phase, Event.zone, Event.line,
                       Event.direction, Event.track_id, Event.event_id)
                .where(Event.device_id == device.id, Event.kind == "zone", Event.ts >= device.status_ts,
                       Event.id <= self.events.last)
                .order_by(Event.ts, Event.id).limit(REPLAY_MAX_ROWS)).all()
            for row in replay:
                self._apply(row, count_lines=False)
        latest = db.execute(
            select(Snapshot.device_id, Event.camera, func.max(Snapshot.id))
            .join(Event, and_(Event.device_id == Snapshot.device_id, Event.event_id == Snapshot.event_id))
            .group_by(Snapshot.device_id, Event.camera)).all()
        paths = dict(db.execute(select(Snapshot.id, Snapshot.path)
                                .where(Snapshot.id.in_([r[2] for r in latest] or [-1]))).all())
        for device_id, camera, snapshot_id in latest:
            self.latest[(device_id, camera)] = SnapshotRef(snapshot_id, paths[snapshot_id])
        self._started = True

    # ------------------------------------------------------------------------------------- poll
    def poll(self, db: Session) -> list[DeviceView]:
        if not self._started:
            self.start(db)
        now = time.time()
        devices = list(db.scalars(select(Device).order_by(Device.id)))
        for device in devices:
            online = device.state == "online"
            if self._online.get(device.id) and not online:  # a restarted agent forgets its tracks
                for key in [k for k in self.inside if k[0] == device.id]:
                    self.inside[key].clear()
            self._online[device.id] = online
        self._read_events(db, now)
        self._read_snapshots(db, now)
        previews = db.execute(select(CameraPreview.device_id, CameraPreview.camera, CameraPreview.zones,
                                     CameraPreview.lines)).all()
        reported = dict(db.execute(select(DeviceConfig.device_id, DeviceConfig.reported_cameras)).all())
        by_preview: dict[str, dict[str, Any]] = {}
        for device_id, camera, zones, lines in previews:
            by_preview.setdefault(device_id, {})[camera] = {"zones": zones, "lines": lines}
        return [self._view(d, by_preview.get(d.id, {}), reported.get(d.id)) for d in devices]

    def _read_events(self, db: Session, now: float) -> None:
        query = select(Event.id, Event.device_id, Event.camera, Event.kind, Event.phase, Event.zone,
                       Event.line, Event.direction, Event.track_id, Event.event_id)
        rows = _new_rows(db, query, Event.id, self.events)
        for row in sorted(rows, key=lambda r: r[0]):
            self._apply(row[1:], count_lines=True)
        self.events.advance((r[0] for r in rows), now)

    def _read_snapshots(self, db: Session, now: float) -> None:
        rows = _new_rows(db, select(Snapshot.id, Snapshot.device_id, Snapshot.event_id, Snapshot.path),
                         Snapshot.id, self.snapshots)
        self.snapshots.advance((r[0] for r in rows), now)
        for snapshot_id, device_id, event_id, path in rows:
            self._unresolved[snapshot_id] = (device_id, event_id, path, now)
        if not self._unresolved:
            return
        # The picture and its event travel separately: wait (a while) for the event to name the camera.
        keys = [(d, e) for d, e, _, _ in self._unresolved.values()]
        cameras = {}
        for i in range(0, len(keys), 500):
            cameras.update({(d, e): c for d, e, c in db.execute(
                select(Event.device_id, Event.event_id, Event.camera)
                .where(tuple_(Event.device_id, Event.event_id).in_(keys[i:i + 500]))).all()})
        for snapshot_id in sorted(self._unresolved):
            device_id, event_id, path, since = self._unresolved[snapshot_id]
            camera = cameras.get((device_id, event_id))
            if camera is not None:
                current = self.latest.get((device_id, camera))
                if current is None or snapshot_id > current.snapshot_id:
                    self.latest[(device_id, camera)] = SnapshotRef(snapshot_id, path)
                del self._unresolved[snapshot_id]
            elif now - since > GAP_TTL_S:
                del self._unresolved[snapshot_id]

    def _apply(self, row: Any, *, count_lines: bool) -> None:
        device_id, camera, kind, phase, zone, line, direction, track_id, event_id = row
        if kind == "zone" and zone:
            self.seen_zones.setdefault((device_id, camera), set()).add(zone)
            tracks = self.inside.setdefault((device_id, camera, zone), set())
            key = track_id if track_id is not None else event_id
            if phase == "start":
                tracks.add(key)
            elif phase == "end":
                tracks.discard(key)
        elif kind == "line" and line and direction and count_lines:
            key4 = (device_id, camera, line, direction)
            self.crossings[key4] = self.crossings.get(key4, 0) + 1
            self._seen_line(device_id, camera, line, direction)

    def _seen_line(self, device_id: str, camera: str, line: str, direction: str) -> None:
        self.seen_lines.setdefault((device_id, camera), {}).setdefault(line, set()).add(direction)

    # ------------------------------------------------------------------------------------- view
    def _view(self, device: Device, previews: dict[str, Any], reported: Any) -> DeviceView:
        """Geometry the hub knows (latest preview, else the agent's config answer) decides which zones
        and lines exist, so a removed one disappears; a camera with neither shows what its events name."""
        known = _geometry(reported)
        known.update(_geometry(previews))
        names = set(device.cameras or []) | set(known)
        names |= {c for d, c in self.seen_zones if d == device.id}
        names |= {c for d, c in self.seen_lines if d == device.id}
        names |= {c for d, c in self.latest if d == device.id}
        cameras: dict[str, CameraView] = {}
        for camera in names:
            if camera in known:
                cameras[camera] = known[camera]
                continue
            view = CameraView(zones=set(self.seen_zones.get((device.id, camera), set())))
            for line, directions in self.seen_lines.get((device.id, camera), {}).items():
                ordered = tuple(d for d in DEFAULT_DIRECTIONS if d in directions)
                view.lines[line] = LineView(line, ordered + tuple(sorted(directions - set(ordered))))
            cameras[camera] = view
        return DeviceView(
            device_id=device.id, online=device.state == "online", name=device.name,
            agent_version=device.agent_version, model=device.model, cameras=cameras,
            occupancy={(c, z): len(t) for (d, c, z), t in self.inside.items() if d == device.id},
            crossings={(c, ln, dr): n for (d, c, ln, dr), n in self.crossings.items() if d == device.id},
            snapshots={c: ref for (d, c), ref in self.latest.items() if d == device.id},
        )
