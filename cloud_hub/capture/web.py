"""Capture in the API and on the device page: admins start one, everyone signed in sees its progress."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, request, send_file, url_for
from sqlalchemy import select

from cloud_hub.capture import service
from cloud_hub.capture.models import CaptureFrame
from cloud_hub.web import database, openapi
from cloud_hub.web.auth import require_role

bp = Blueprint("capture", __name__, template_folder="templates")


class CaptureOut(openapi.Out):
    id: str
    device_id: str
    requested_by: str
    requested_at: float
    count: int
    interval_s: float
    mode: str
    state: str
    reason: str | None = None
    frames_received: int
    frames_rejected: int
    progress: float


class CaptureList(openapi.Out):
    items: list[CaptureOut]


class CaptureIn(openapi.Out):
    count: int
    interval_s: float
    max_bytes: int | None = None
    max_width: int | None = None
    mode: str | None = None
    camera: str | None = None
    timeout_s: float | None = None


openapi.OPERATIONS += [
    openapi.Operation("get", "/devices/{device_id}/captures", "The device's captures, newest first",
                      CaptureList, params=[openapi.DEVICE]),
    openapi.Operation("post", "/devices/{device_id}/captures", "Ask the device for N frames over a time "
                      "window (admin; logged with who and when)", CaptureOut, 202, params=[openapi.DEVICE],
                      body=CaptureIn, admin=True),
    openapi.Operation("post", "/captures/{capture_id}/cancel", "Stop a capture: the request is withdrawn, "
                      "the device deletes its copy; frames stored stay (admin)", CaptureOut,
                      params=[openapi.Param("capture_id", "path")], admin=True),
    openapi.Operation("get", "/captures/{capture_id}", "One capture: state, progress, its frames", CaptureOut,
                      params=[openapi.Param("capture_id", "path")]),
    openapi.Operation("get", "/captures/{capture_id}/frames/{frame}.jpg", "One captured frame", None,
                      params=[openapi.Param("capture_id", "path"), openapi.Param("frame", "path")],
                      media="image/jpeg"),
]
openapi.MODELS += [CaptureOut, CaptureList, CaptureIn]


@bp.app_context_processor
def _template_helpers() -> dict[str, object]:
    return {"device_captures": lambda device_id: [service.as_dict(c) for c in
                                                  service.listing(database.session(), device_id, 10)]}


def _who() -> str:
    return g.user.username if g.user is not None else "unknown"


def _start(device_id: str, values: dict) -> dict:
    def number(name: str, kind: type, default=None):
        raw = values.get(name)
        if raw in (None, ""):
            if default is None:
                raise service.CaptureError(f"{name}: required")
            return default
        try:
            return kind(raw)
        except (TypeError, ValueError):
            raise service.CaptureError(f"{name}: {raw!r} is not a number") from None

    row = service.start(
        database.session(), database.settings(), device_id, requested_by=_who(),
        count=number("count", int), interval_s=number("interval_s", float),
        max_bytes=number("max_bytes", int, 256 * 1024), max_width=number("max_width", int, 1280),
        mode=str(values.get("mode") or "uniform"), camera=(values.get("camera") or None),
        timeout_s=number("timeout_s", float, service.DEFAULT_TIMEOUT_S))
    current_app.logger.info("capture started", extra={"capture": row.id, "device": device_id, "by": _who()})
    return service.as_dict(row)


@bp.get("/api/v1/devices/<device_id>/captures")
def list_captures(device_id: str):
    return jsonify(items=[service.as_dict(c) for c in service.listing(database.session(), device_id)])


@bp.post("/api/v1/devices/<device_id>/captures")
@require_role("admin")
def start_capture(device_id: str):
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="a JSON object: {count, interval_s, ...}"), 400
    try:
        return jsonify(_start(device_id, body)), 202
    except service.CaptureError as exc:
        return jsonify(error=str(exc)), 404 if str(exc).startswith("unknown device") else 400


@bp.post("/devices/<device_id>/captures")
@require_role("admin")
def start_capture_form(device_id: str):
    form = request.form.to_dict()
    if form.get("max_kib"):
        try:
            form["max_bytes"] = str(int(form.pop("max_kib")) * 1024)
        except ValueError:
            flash("capture not started: max KiB per frame is not a number")
            return redirect(url_for("dashboard.device", device_id=device_id) + "#captures")
    try:
        started = _start(device_id, form)
        flash(f"capture {started['id']} requested: {started['count']} frames")
    except service.CaptureError as exc:
        flash(f"capture not started: {exc}")
    return redirect(url_for("dashboard.device", device_id=device_id) + "#captures")


@bp.post("/api/v1/captures/<capture_id>/cancel")
@require_role("admin")
def cancel_capture(capture_id: str):
    try:
        row = service.cancel(database.session(), database.settings(), capture_id, by=_who())
    except service.CaptureError as exc:
        return jsonify(error=str(exc)), 404 if str(exc).startswith("no capture") else 409
    current_app.logger.info("capture cancelled", extra={"capture": capture_id, "by": _who()})
    return jsonify(service.as_dict(row))


@bp.get("/api/v1/captures/<capture_id>")
def get_capture(capture_id: str):
    found = service.detail(database.session(), capture_id)
    if found is None:
        abort(404)
    return jsonify(service.as_dict(*found))


@bp.get("/api/v1/captures/<capture_id>/frames/<int:frame>.jpg")
def frame_image(capture_id: str, frame: int):
    row = database.session().scalar(select(CaptureFrame).where(CaptureFrame.capture_id == capture_id,
                                                               CaptureFrame.frame == frame))
    path = database.snapshot_store().resolve(row.path) if row else None
    if row is None or path is None:
        abort(404)
    response = send_file(path, mimetype="image/jpeg", max_age=86400, etag=row.sha256)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
