"""Start, cancel and read adaptation jobs: one code path for the CLI, the API and the dashboard.

Starting checks what can be known at once (the device, the model it runs is in the registry, a teacher
is registered, the capture belongs to the device) and refuses with the reason, so a job that exists has
a chance to run. With no capture given the job asks the device for frames itself (a capture logged under
the same admin); the adapt-worker takes the job once its capture is over.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cloud_hub.adapt.models import (
    CANCELLED,
    CAPTURING,
    FINAL,
    LOG_LINES,
    PROMOTING,
    QUEUED,
    SHADOW,
    AdaptJob,
    AdaptLogLine,
)
from cloud_hub.capture import service as capture_service
from cloud_hub.capture.ingest import expire
from cloud_hub.capture.models import CAPTURING as CAPTURE_CAPTURING
from cloud_hub.capture.models import FINAL as CAPTURE_FINAL
from cloud_hub.capture.models import REQUESTED, Capture
from cloud_hub.config import HubSettings
from cloud_hub.models import Device
from cloud_hub.rollout import campaigns, registry
from cloud_hub.rollout.models import STUDENT, TEACHER, ModelVersion
from shared.rollout import site_version

DEFAULT_FRAMES = 300
DEFAULT_INTERVAL_S = 2.0


class AdaptStartError(ValueError):
    """A job that cannot start (or be cancelled); the message is what the operator reads."""


def add_log(db: Session, job_id: str, line: str, now: float | None = None) -> None:
    """Append a line to the job's log and keep only the newest LOG_LINES."""
    db.add(AdaptLogLine(job_id=job_id, at=time.time() if now is None else now, line=line[:2000]))
    db.flush()
    cutoff = db.scalar(
        select(AdaptLogLine.id)
        .where(AdaptLogLine.job_id == job_id)
        .order_by(AdaptLogLine.id.desc())
        .offset(LOG_LINES)
        .limit(1)
    )
    if cutoff is not None:
        db.execute(delete(AdaptLogLine).where(AdaptLogLine.job_id == job_id, AdaptLogLine.id <= cutoff))


def teacher_for(db: Session, ref: str | None) -> ModelVersion:
    """The teacher named (NAME or NAME@VERSION), else the newest teacher registered."""
    if ref:
        try:
            row = registry.find(db, ref)
        except LookupError:
            raise AdaptStartError(
                f"no registered teacher {ref!r} (cloud-hub models add --teacher DIR)"
            ) from None
        if row.kind != TEACHER:
            raise AdaptStartError(f"{row.ref} is a {row.kind} model, not a teacher")
        return row
    rows = list(
        db.scalars(
            select(ModelVersion).where(ModelVersion.kind == TEACHER).order_by(ModelVersion.created_at.desc())
        )
    )
    if not rows:
        raise AdaptStartError(
            "no teacher model is registered: register one with "
            "`cloud-hub models add --teacher DIR` (docs/hub/README.md#site-adaptation)"
        )
    return rows[0]


def base_for(db: Session, device: Device) -> ModelVersion:
    """The registered student the device runs now (its retained status names it)."""
    if not device.model:
        raise AdaptStartError(f"device {device.id} has not reported which model it runs yet")
    name, _, version = device.model.partition("@")
    row = db.scalar(select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version))
    if row is None or row.kind != STUDENT:
        raise AdaptStartError(
            f"device {device.id} runs {device.model}, which is not a student in the registry: "
            "register it (cloud-hub models add) so the job can fine-tune it"
        )
    return row


def adapted_version(base_version: str, job_id: str) -> str:
    """The job's model version names the job: 2.1.1 -> 2.1.2-site.<job id>."""
    return site_version(base_version, job_id)


def start(
    db: Session,
    settings: HubSettings,
    device_id: str,
    *,
    created_by: str,
    capture_id: str | None = None,
    frames: int | None = None,
    interval_s: float | None = None,
    teacher: str | None = None,
    capture_timeout_s: float = capture_service.DEFAULT_TIMEOUT_S,
) -> AdaptJob:
    device = db.get(Device, device_id)
    if device is None:
        raise AdaptStartError(f"unknown device {device_id!r} (a device appears after its first message)")
    if capture_id and (frames is not None or interval_s is not None):
        raise AdaptStartError("give either a capture id or frames and interval, not both")
    active = db.scalar(select(AdaptJob).where(AdaptJob.device_id == device_id, AdaptJob.state.notin_(FINAL)))
    if active is not None:
        raise AdaptStartError(
            f"device {device_id} already has adaptation {active.id} in progress ({active.state})"
        )
    teacher_row = teacher_for(db, teacher)
    base_row = base_for(db, device)
    now = time.time()
    job = AdaptJob(
        id=f"adp-{secrets.token_hex(6)}",
        device_id=device_id,
        teacher_ref=teacher_row.ref,
        base_ref=base_row.ref,
        created_by=created_by[:64],
        created_at=now,
        updated_at=now,
        state=QUEUED,
        progress=0.0,
        attempts=0,
        capture_started=False,
    )
    if capture_id:
        capture = db.get(Capture, capture_id)
        if capture is None or capture.device_id != device_id:
            raise AdaptStartError(f"no capture {capture_id!r} of device {device_id}")
        job.capture_id = capture_id
        if capture.state not in CAPTURE_FINAL:
            job.state = CAPTURING
    else:
        try:
            capture = capture_service.start(
                db,
                settings,
                device_id,
                requested_by=created_by,
                count=frames or DEFAULT_FRAMES,
                interval_s=interval_s or DEFAULT_INTERVAL_S,
                timeout_s=capture_timeout_s,
            )
        except capture_service.CaptureError as exc:
            raise AdaptStartError(f"capture not started: {exc}") from None
        job.capture_id, job.capture_started, job.state = capture.id, True, CAPTURING
    db.add(job)
    db.flush()
    add_log(
        db,
        job.id,
        f"started by {job.created_by}: teacher {job.teacher_ref}, base {job.base_ref}, "
        f"capture {job.capture_id}" + (" (asked for by this job)" if job.capture_started else ""),
    )
    db.commit()
    return job


def cancel(db: Session, settings: HubSettings, job_id: str, *, by: str) -> AdaptJob:
    """End the job ``cancelled``: its capture (if it asked for one and it is running) and its campaign
    (if one is running) stop too. A model already registered stays in the registry."""
    job = db.get(AdaptJob, job_id)
    if job is None:
        raise AdaptStartError(f"no adaptation {job_id!r}")
    if job.state in FINAL:
        raise AdaptStartError(f"adaptation {job_id} is already {job.state}")
    if job.capture_started and job.capture_id:
        capture = db.get(Capture, job.capture_id)
        if capture is not None and capture.state in (REQUESTED, CAPTURE_CAPTURING):
            try:
                capture_service.cancel(db, settings, capture.id, by=by)
            except capture_service.CaptureError as exc:
                raise AdaptStartError(f"adaptation {job_id} not cancelled: {exc}") from None
    if job.campaign_id and job.state in (SHADOW, PROMOTING):
        with contextlib.suppress(campaigns.CampaignError):  # already over
            campaigns.abort(db, job.campaign_id, f"adaptation {job_id} cancelled by {by}")
    now = time.time()
    job.state, job.reason, job.finished_at, job.updated_at = CANCELLED, f"cancelled by {by}"[:500], now, now
    job.message = None
    add_log(db, job.id, f"cancelled by {by}")
    db.commit()
    return job


def progress_bar(job: AdaptJob, width: int = 20) -> str:
    """``[#########-----------]  45% training`` — the same text in the CLI and the dashboard."""
    filled = round(max(0.0, min(1.0, job.progress or 0.0)) * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {round((job.progress or 0) * 100):3d}% {job.state}"


def waiting_message(db: Session, job: AdaptJob) -> str | None:
    """While capturing: how far the capture is and whether the device is online (read live)."""
    if job.state != CAPTURING or not job.capture_id:
        return job.message
    capture = db.get(Capture, job.capture_id)
    device = db.get(Device, job.device_id)
    if capture is None:
        return "its capture was deleted"
    online = device is not None and device.state == "online"
    text = f"capture {capture.id} {capture.state}: {capture.frames_received}/{capture.count} frames"
    if capture.state in CAPTURE_FINAL:
        return text + (
            "; waiting for the adapt-worker" if capture.state == "complete" else f" ({capture.reason})"
        )
    if not online:
        waited = time.time() - capture.last_progress_at
        return (
            text + f"; waiting for device {job.device_id} (offline; {waited:.0f} s without progress, "
            f"times out after {capture.timeout_s:g} s)"
        )
    return text


def f1_summary(metrics: dict[str, Any] | None) -> dict[str, float]:
    """``{"macro": F1, <class>: F1, ...}`` out of a report's ``before``/``after`` (F1 against the teacher)."""
    if not metrics:
        return {}
    out = {"macro": float(metrics["f1"])} if isinstance(metrics.get("f1"), int | float) else {}
    for label, value in (metrics.get("per_class") or {}).items():
        if isinstance(value, dict) and isinstance(value.get("f1"), int | float):
            out[label] = float(value["f1"])
    return out


def as_dict(db: Session, job: AdaptJob, log: list[AdaptLogLine] | None = None) -> dict[str, Any]:
    out = {
        "id": job.id,
        "device_id": job.device_id,
        "state": job.state,
        "progress": round(job.progress or 0, 4),
        "progress_text": progress_bar(job),
        "message": waiting_message(db, job),
        "reason": job.reason,
        "capture_id": job.capture_id,
        "teacher": job.teacher_ref,
        "base": job.base_ref,
        "created_by": job.created_by,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "finished_at": job.finished_at,
        "before": job.before,
        "after": job.after,
        "before_f1": f1_summary(job.before),
        "after_f1": f1_summary(job.after),
        "frames_train": job.frames_train,
        "frames_judge": job.frames_judge,
        "model": job.result_ref,
        "campaign_id": job.campaign_id,
        "attempts": job.attempts,
    }
    if log is not None:
        out["log"] = [{"at": line.at, "line": line.line} for line in log]
    return out


def listing(db: Session, device_id: str | None = None, limit: int = 50) -> list[AdaptJob]:
    expire(db.connection())
    db.commit()
    query = select(AdaptJob).order_by(AdaptJob.created_at.desc()).limit(limit)
    if device_id:
        query = query.where(AdaptJob.device_id == device_id)
    return list(db.scalars(query))


def detail(db: Session, job_id: str) -> tuple[AdaptJob, list[AdaptLogLine]] | None:
    expire(db.connection())
    db.commit()
    job = db.get(AdaptJob, job_id)
    if job is None:
        return None
    db.refresh(job)
    log = list(
        db.scalars(select(AdaptLogLine).where(AdaptLogLine.job_id == job_id).order_by(AdaptLogLine.id))
    )
    return job, log


def count_by_state(db: Session) -> dict[str, int]:
    return dict(db.execute(select(AdaptJob.state, func.count()).group_by(AdaptJob.state)).all())
