"""Camera views: preview images, the remote zone/line config, and the event detail page."""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import Blueprint, abort, current_app, g, jsonify, render_template, request
from pydantic import Field, ValidationError

from cloud_hub.camera import queries as cq
from cloud_hub.camera.models import CameraPreview, DeviceConfig
from cloud_hub.camera.publish import PublishError, publish_retained
from cloud_hub.models import Device
from cloud_hub.web import database, openapi
from cloud_hub.web.auth import require_role
from shared.camera import CameraGeometry, RemoteConfig
from shared.topics import DEVICE_ID_RE, Topics

bp = Blueprint("camera", __name__, template_folder="templates")


class PreviewOut(openapi.Out):
    device_id: str
    camera: str
    ts: float
    width: int
    height: int
    boxes: list[dict[str, Any]]
    zones: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    received_at: float
    image_url: str


class PreviewList(openapi.Out):
    items: list[PreviewOut]


class DeviceConfigOut(openapi.Out):
    desired_id: str | None
    desired: dict[str, Any] | None
    desired_at: float | None = None
    desired_by: str | None = None
    reported_id: str | None
    state: str | None = Field(description="applied | refused | null (the camera's own file)")
    reason: str | None
    cameras: dict[str, Any]
    reported_at: float | None = None
    pending: bool = False


class DeviceConfigIn(openapi.Out):
    cameras: dict[str, CameraGeometry]


openapi.OPERATIONS += [
    openapi.Operation("get", "/cameras", "Latest preview frame per camera: boxes, zones, lines, image URL",
                      PreviewList, params=[openapi.Param("device", description="device id")]),
    openapi.Operation("get", "/previews/{device_id}/{camera}.jpg", "A camera's latest preview JPEG", None,
                      params=[openapi.DEVICE, openapi.Param("camera", "path")], media="image/jpeg"),
    openapi.Operation("get", "/devices/{device_id}/config", "The device's remote zone/line config and the "
                      "camera's answer", DeviceConfigOut, params=[openapi.DEVICE]),
    openapi.Operation("put", "/devices/{device_id}/config", "Send zones and lines per camera (retained); "
                      "the agent applies or refuses it (admin)", DeviceConfigOut, 202,
                      params=[openapi.DEVICE], body=DeviceConfigIn, admin=True),
]
openapi.MODELS += [PreviewList, PreviewOut, DeviceConfigOut, DeviceConfigIn]


@bp.get("/api/v1/cameras")
def list_previews():
    """Latest preview (metadata, boxes, geometry) per camera; ``?device=`` narrows to one device."""
    return jsonify(items=cq.previews(database.session(), request.args.get("device") or None))


@bp.get("/api/v1/previews/<device_id>/<camera>.jpg")
def preview_image(device_id: str, camera: str):
    if not DEVICE_ID_RE.match(device_id):
        abort(404)
    row = database.session().get(CameraPreview, (device_id, camera))
    if row is None:
        abort(404)
    response = current_app.response_class(row.jpeg, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


@bp.get("/api/v1/devices/<device_id>/config")
def get_config(device_id: str):
    db = database.session()
    if db.get(Device, device_id) is None:
        abort(404)
    return jsonify(cq.config_dict(db.get(DeviceConfig, device_id)))


@bp.put("/api/v1/devices/<device_id>/config")
@require_role("admin")
def put_config(device_id: str):
    """Send zones and lines per camera as the device's retained remote config. The agent validates and
    answers on config/state; this only checks the wire contract (the agent gives the real reasons)."""
    db = database.session()
    if db.get(Device, device_id) is None:
        abort(404)
    body = request.get_json(silent=True) or {}
    cameras = body.get("cameras")
    if not isinstance(cameras, dict) or not cameras:
        return jsonify(error="cameras: a mapping of camera name to {zones, lines}"), 400
    try:
        config = RemoteConfig(config_id=f"{int(time.time())}-{secrets.token_hex(4)}", ts=time.time(),
                              cameras={k: CameraGeometry.model_validate(v) for k, v in cameras.items()})
    except ValidationError as exc:
        first = exc.errors()[0]
        return jsonify(error=f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"), 400
    settings = current_app.config["HUB_SETTINGS"]
    topic = Topics(settings.mqtt_prefix).config(device_id)
    try:
        publish_retained(settings.mqtt_url, topic, config.to_bytes(), ca_file=settings.mqtt_ca_file)
    except PublishError as exc:
        return jsonify(error=str(exc)), 503
    row = db.get(DeviceConfig, device_id) or DeviceConfig(device_id=device_id)
    row.desired_id = config.config_id
    row.desired = {k: v.model_dump() for k, v in config.cameras.items()}
    row.desired_at = config.ts
    row.desired_by = g.user.username if g.user is not None else None
    db.add(row)
    db.commit()
    return jsonify(cq.config_dict(row)), 202


@bp.get("/events/<device_id>/<event_id>")
def event_page(device_id: str, event_id: str):
    detail = cq.event_detail(database.session(), device_id, event_id)
    if detail is None:
        abort(404)
    return render_template("camera/event.html", **detail)
