"""Start a capture and read captures back: one code path for the CLI, the API and the dashboard.

Starting records who asked, for which device and when (the ``captures`` row, state ``requested``) and
then publishes the retained request; a request the broker does not take leaves the row ``failed`` with
the broker's answer. One capture at a time per device.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub.camera.publish import PublishError, publish_retained
from cloud_hub.capture.ingest import expire
from cloud_hub.capture.models import CAPTURING, FAILED, REQUESTED, Capture, CaptureFrame
from cloud_hub.config import HubSettings
from cloud_hub.models import Device
from shared.capture import CaptureMode, CaptureRequest
from shared.topics import Topics

DEFAULT_TIMEOUT_S = 3600.0


class CaptureError(ValueError):
    """A capture that cannot start; the message is what the operator reads."""


def start(db: Session, settings: HubSettings, device_id: str, *, requested_by: str, count: int,
          interval_s: float, max_bytes: int = 256 * 1024, max_width: int = 1280, mode: str = "uniform",
          camera: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Capture:
    if db.get(Device, device_id) is None:
        raise CaptureError(f"unknown device {device_id!r} (a device appears after its first message)")
    if not 1 <= timeout_s <= 30 * 86400:
        raise CaptureError(f"timeout: {timeout_s:g} s, expected 1 s .. 30 days")
    expire(db.connection())
    active = db.scalar(select(Capture).where(Capture.device_id == device_id,
                                             Capture.state.in_([REQUESTED, CAPTURING])))
    if active is not None:
        raise CaptureError(f"device {device_id} already has capture {active.id} in progress ({active.state}, "
                           f"{active.frames_received}/{active.count} frames)")
    now = time.time()
    try:
        request = CaptureRequest(capture_id=f"cap-{secrets.token_hex(6)}", ts=now, count=count,
                                 interval_s=interval_s, max_bytes=max_bytes, max_width=max_width,
                                 mode=CaptureMode(mode), camera=camera)
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors(include_url=False)[0]
            raise CaptureError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
        modes = ", ".join(m.value for m in CaptureMode)
        raise CaptureError(f"mode: {mode!r} is not one of {modes}") from None
    row = Capture(id=request.capture_id, device_id=device_id, requested_by=requested_by[:64],
                  requested_at=now, count=count, interval_s=interval_s, max_bytes=max_bytes,
                  mode=request.mode.value, camera=camera, timeout_s=timeout_s, state=REQUESTED,
                  rejected_frames=[], frames_received=0, device_captured=0, last_progress_at=now)
    db.add(row)
    db.commit()  # before the request goes out: the device's first chunks must find the capture
    topic = Topics(settings.mqtt_prefix).capture_request(device_id)
    try:
        publish_retained(settings.mqtt_url, topic, request.to_bytes(), ca_file=settings.mqtt_ca_file)
    except PublishError as exc:
        row.state, row.reason, row.finished_at = FAILED, f"request not delivered: {exc}", time.time()
        db.commit()
        raise CaptureError(f"capture {row.id} failed: {exc}") from None
    return row


def cancel(db: Session, settings: HubSettings, capture_id: str, *, by: str) -> Capture:
    """Withdraw the retained request (the agent stops and deletes its copy) and end the capture
    ``failed`` with who cancelled it. Frames already stored stay."""
    row = db.get(Capture, capture_id)
    if row is None:
        raise CaptureError(f"no capture {capture_id!r}")
    if row.state not in (REQUESTED, CAPTURING):
        raise CaptureError(f"capture {capture_id} is already {row.state}")
    topic = Topics(settings.mqtt_prefix).capture_request(row.device_id)
    try:
        publish_retained(settings.mqtt_url, topic, b"", ca_file=settings.mqtt_ca_file)
    except PublishError as exc:
        raise CaptureError(f"capture {capture_id} not cancelled: {exc}") from None
    row.state, row.reason, row.finished_at = FAILED, f"cancelled by {by}"[:500], time.time()
    db.commit()
    return row


def as_dict(row: Capture, frames: list[CaptureFrame] | None = None) -> dict[str, Any]:
    out = {"id": row.id, "device_id": row.device_id, "requested_by": row.requested_by,
           "requested_at": row.requested_at, "count": row.count, "interval_s": row.interval_s,
           "max_bytes": row.max_bytes, "mode": row.mode, "camera": row.camera, "timeout_s": row.timeout_s,
           "state": row.state, "reason": row.reason, "frames_received": row.frames_received,
           "frames_rejected": len(row.rejected_frames or []), "device_captured": row.device_captured,
           "progress": round(row.frames_received / row.count, 4) if row.count else 0.0,
           "last_progress_at": row.last_progress_at, "finished_at": row.finished_at}
    if frames is not None:
        out["frames"] = [{"frame": f.frame, "ts": f.ts, "width": f.width, "height": f.height,
                          "size_bytes": f.size_bytes, "sha256": f.sha256,
                          "url": f"/api/v1/captures/{row.id}/frames/{f.frame}.jpg"} for f in frames]
    return out


def listing(db: Session, device_id: str | None = None, limit: int = 50) -> list[Capture]:
    expire(db.connection())
    db.commit()
    query = select(Capture).order_by(Capture.requested_at.desc()).limit(limit)
    if device_id:
        query = query.where(Capture.device_id == device_id)
    return list(db.scalars(query))


def detail(db: Session, capture_id: str) -> tuple[Capture, list[CaptureFrame]] | None:
    expire(db.connection())
    db.commit()
    row = db.get(Capture, capture_id)
    if row is None:
        return None
    db.refresh(row)
    frames = list(db.scalars(select(CaptureFrame).where(CaptureFrame.capture_id == capture_id)
                             .order_by(CaptureFrame.frame)))
    return row, frames
