"""Reads for the camera views: latest previews, remote-config state, one event with its track."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from cloud_hub.camera.models import CameraPreview, DeviceConfig
from cloud_hub.models import Event, Snapshot
from cloud_hub.queries import event_dict

TRACK_WINDOW_S = 6 * 3600  # a track id is unique per agent run; this window keeps the lookup indexed


def preview_dict(p: CameraPreview) -> dict[str, Any]:
    return {"device_id": p.device_id, "camera": p.camera, "ts": p.ts, "width": p.width, "height": p.height,
            "boxes": p.boxes or [], "zones": p.zones or [], "lines": p.lines or [],
            "received_at": p.received_at,
            "image_url": f"/api/v1/previews/{p.device_id}/{p.camera}.jpg?ts={p.ts!r}"}


def previews(db: Session, device_id: str | None = None) -> list[dict[str, Any]]:
    query = select(CameraPreview).order_by(CameraPreview.device_id, CameraPreview.camera)
    if device_id is not None:
        query = query.where(CameraPreview.device_id == device_id)
    return [preview_dict(p) for p in db.scalars(query)]


def config_dict(row: DeviceConfig | None) -> dict[str, Any]:
    if row is None:
        return {"desired_id": None, "desired": None, "reported_id": None, "state": None, "reason": None,
                "cameras": {}}
    return {"desired_id": row.desired_id, "desired": row.desired, "desired_at": row.desired_at,
            "desired_by": row.desired_by, "reported_id": row.reported_id, "state": row.reported_state,
            "reason": row.reported_reason, "cameras": row.reported_cameras or {},
            "reported_at": row.reported_at,
            "pending": row.desired_id is not None and row.desired_id != row.reported_id}


def geometry_for(db: Session, device_id: str, camera: str) -> dict[str, list]:
    """The zones and lines a camera runs: its latest preview, else its last config answer."""
    preview = db.get(CameraPreview, (device_id, camera))
    if preview is not None:
        return {"zones": preview.zones or [], "lines": preview.lines or []}
    config = db.get(DeviceConfig, device_id)
    cams = (config.reported_cameras or {}) if config else {}
    return {"zones": cams.get(camera, {}).get("zones", []), "lines": cams.get(camera, {}).get("lines", [])}


def _with_snapshot(db: Session, device_id: str):
    return (select(Event, Snapshot.sha256)
            .outerjoin(Snapshot, and_(Snapshot.device_id == Event.device_id,
                                      Snapshot.event_id == Event.event_id))
            .where(Event.device_id == device_id))


def event_detail(db: Session, device_id: str, event_id: str) -> dict[str, Any] | None:
    """The event, its track's other events, and a snapshot: its own, else its object's (zone and line
    events carry none of their own: they show the picture taken when the object was first seen)."""
    row = db.execute(_with_snapshot(db, device_id).where(Event.event_id == event_id)).first()
    if row is None:
        return None
    event = event_dict(*row)
    track: list[dict] = []
    if event["track_id"] is not None:
        query = (_with_snapshot(db, device_id)
                 .where(Event.ts >= event["ts"] - TRACK_WINDOW_S, Event.ts <= event["ts"] + TRACK_WINDOW_S,
                        Event.camera == event["camera"], Event.track_id == event["track_id"])
                 .order_by(Event.ts, Event.id).limit(200))
        track = [event_dict(*r) for r in db.execute(query).all()]
    snapshot = {"url": event["snapshot_url"], "bbox": event["bbox"], "own": True}
    if snapshot["url"] is None:
        pictured = [e for e in track if e["snapshot_url"]]
        if pictured:
            snapshot = {"url": pictured[0]["snapshot_url"], "bbox": pictured[0]["bbox"], "own": False,
                        "event_id": pictured[0]["event_id"]}
    return {"event": event, "track": track, "snapshot": snapshot,
            "geometry": geometry_for(db, device_id, event["camera"])}


def snapshot_links(db: Session, events: list[dict]) -> None:
    """Give zone and line events without a picture their object's snapshot (one query per page)."""
    wanted = {(e["device_id"], e["camera"], e["track_id"]) for e in events
              if not e["snapshot_url"] and e["track_id"] is not None}
    if not wanted:
        return
    lo = min(e["ts"] for e in events) - TRACK_WINDOW_S
    hi = max(e["ts"] for e in events) + TRACK_WINDOW_S
    devices = sorted({w[0] for w in wanted})
    query = (select(Event.device_id, Event.camera, Event.track_id, Event.event_id)
             .join(Snapshot, and_(Snapshot.device_id == Event.device_id, Snapshot.event_id == Event.event_id))
             .where(Event.device_id.in_(devices), Event.ts >= lo, Event.ts <= hi,
                    Event.track_id.in_(sorted({w[2] for w in wanted}))))
    found: dict[tuple, str] = {}
    for device_id, camera, track_id, ev in db.execute(query).all():
        found.setdefault((device_id, camera, track_id), ev)
    for e in events:
        key = (e["device_id"], e["camera"], e["track_id"])
        if not e["snapshot_url"] and key in found:
            e["snapshot_url"] = f"/api/v1/snapshots/{key[0]}/{found[key]}"
            e["snapshot_of"] = found[key]
