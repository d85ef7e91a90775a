"""The OpenAPI 3.1 document of /api/v1, built from pydantic models of every response.

tests/hub/test_openapi.py holds the implementation to it both ways: every route is documented (and every
documented operation exists), and real responses validate against these models with extra="forbid".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from shared.payloads import EventKind


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(Out):
    error: str


class EventOut(Out):
    id: int
    device_id: str
    event_id: str
    seq: int
    ts: float
    camera: str
    kind: EventKind
    phase: str
    label: str
    score: float
    bbox: list[float] | None
    track_id: int | None
    zone: str | None
    line: str | None
    direction: str | None
    count: int | None
    value: float | None
    model: str | None
    has_snapshot: bool
    attributes: dict[str, str | int | float | bool]
    received_at: float
    snapshot_url: str | None


class EventPage(Out):
    items: list[EventOut]
    next_cursor: str | None


class DeviceOut(Out):
    id: str
    name: str | None
    site: str | None
    state: str
    online: bool
    first_seen: float
    last_seen: float
    status_ts: float | None
    agent_version: str | None
    model: str | None
    uptime_s: float | None
    cameras: list[str]
    fps: float | None
    inference_ms_p50: float | None
    telemetry_ts: float | None


class DevicePatch(Out):
    name: str | None = None
    site: str | None = None


class DeviceList(Out):
    items: list[DeviceOut]


class CountOut(Out):
    bucket: float
    key: str
    count: int
    direction: str | None = None


class Counts(Out):
    group: str
    bucket_s: int
    since: float | None = None
    until: float | None = None
    counts: str | None = None  # what is counted: objects per label/zone/line, or events per kind
    items: list[CountOut]


class TelemetryOut(Out):
    ts: float
    camera: str
    fps_in: float
    fps_processed: float
    inference_ms_p50: float | None
    inference_ms_p95: float | None
    cnn_frame_share: float | None
    motion_ratio: float | None
    outbox_depth: int
    frames_dropped: int
    events_dropped: int
    thread_restarts: int = 0
    cpu_temp_c: float | None


class TelemetryList(Out):
    items: list[TelemetryOut]


class UserOut(Out):
    id: int
    username: str
    role: str
    created_at: float
    disabled: bool


class Me(UserOut):
    auth: str


class UserList(Out):
    items: list[UserOut]


class NewUser(Out):
    username: str
    password: str
    role: str = "viewer"


class TokenOut(Out):
    id: int
    name: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


class TokenList(Out):
    items: list[TokenOut]


class NewTokenRequest(Out):
    name: str


class NewToken(Out):
    id: int
    name: str
    token: str


@dataclass
class Param:
    name: str
    where: str = "query"
    type: str = "string"
    description: str = ""
    required: bool = False

    def spec(self) -> dict:
        return {"name": self.name, "in": self.where, "required": self.required or self.where == "path",
                "description": self.description, "schema": {"type": self.type}}


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    response: type[BaseModel] | None
    status: int = 200
    params: list[Param] = field(default_factory=list)
    body: type[BaseModel] | None = None
    media: str = "application/json"
    admin: bool = False


TIME = "UNIX seconds or ISO 8601 (naive = UTC)"
FILTERS = [
    Param("device", description="device id"), Param("label"), Param("kind", description="rule kind"),
    Param("zone"), Param("line"), Param("camera"),
    Param("since", description=f"inclusive start, {TIME}"),
    Param("until", description=f"exclusive end, {TIME}"),
]
DEVICE = Param("device_id", "path")

COUNTS_SUMMARY = ("Object counts per time bucket: tracks per label or device, crossings per line and "
                  "direction, zone entries, zone occupancy; events per kind")
OPERATIONS = [
    Operation("get", "/devices", "The device registry", DeviceList),
    Operation("get", "/devices/{device_id}", "One device", DeviceOut, params=[DEVICE]),
    Operation("patch", "/devices/{device_id}", "Set a device's display name and site (admin)", DeviceOut,
              params=[DEVICE], body=DevicePatch, admin=True),
    Operation("delete", "/devices/{device_id}", "Forget a device and its data (admin)", None, 204,
              params=[DEVICE], admin=True),
    Operation("get", "/devices/{device_id}/telemetry", "Telemetry of one device, oldest first", TelemetryList,
              params=[DEVICE, Param("since"), Param("until"), Param("limit", type="integer")]),
    Operation("get", "/events", "Events, newest first, keyset-paginated (format=csv streams CSV)", EventPage,
              params=[*FILTERS, Param("limit", type="integer", description="1-500, default 50"),
                      Param("cursor", description="next_cursor of the previous page"),
                      Param("format", description="json (default) or csv")]),
    Operation("get", "/counts", COUNTS_SUMMARY, Counts,
              params=[*FILTERS, Param("group", description="label|line|zone|occupancy|kind|device"),
                      Param("bucket", type="integer", description="bucket size in seconds (60..2678400)")]),
    Operation("get", "/snapshots/{device_id}/{event_id}", "The JPEG snapshot of an event", None,
              params=[DEVICE, Param("event_id", "path")], media="image/jpeg"),
    Operation("get", "/stream", "Server-sent events: `events` (new events) and `devices` (registry)", None,
              media="text/event-stream"),
    Operation("get", "/me", "The caller", Me),
    Operation("get", "/tokens", "The caller's API tokens", TokenList),
    Operation("post", "/tokens", "Create an API token (the secret is returned once)", NewToken, 201,
              body=NewTokenRequest),
    Operation("delete", "/tokens/{token_id}", "Revoke a token", TokenOut,
              params=[Param("token_id", "path", "integer")]),
    Operation("get", "/users", "Users (admin)", UserList, admin=True),
    Operation("post", "/users", "Create a user (admin)", UserOut, 201, body=NewUser, admin=True),
    Operation("get", "/openapi.json", "This document", None),
    Operation("get", "/docs", "This document as a page (linked from the dashboard's nav)", None,
              media="text/html"),
]

MODELS = [Error, EventPage, DeviceList, DeviceOut, DevicePatch, Counts, TelemetryList, Me, UserList, UserOut,
          NewUser, TokenList, TokenOut, NewTokenRequest, NewToken]


def document() -> dict[str, Any]:
    _, schemas = models_json_schema([(m, "serialization") for m in MODELS],
                                    ref_template="#/components/schemas/{model}")
    ref = "#/components/schemas/{}".format
    error = {"content": {"application/json": {"schema": {"$ref": ref("Error")}}}}
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        responses: dict[str, Any] = {"400": {"description": "bad parameter", **error},
                                     "401": {"description": "no valid session or token", **error}}
        if op.admin:
            responses["403"] = {"description": "admin role required", **error}
        if op.response is not None:
            content = {op.media: {"schema": {"$ref": ref(op.response.__name__)}}}
            responses[str(op.status)] = {"description": op.summary, "content": content}
        elif op.status == 204:
            responses["204"] = {"description": "done"}
        else:
            responses[str(op.status)] = {"description": op.summary, "content": {op.media: {}}}
        spec: dict[str, Any] = {"summary": op.summary, "parameters": [p.spec() for p in op.params],
                                "responses": responses}
        if op.body is not None:
            body = {"application/json": {"schema": {"$ref": ref(op.body.__name__)}}}
            spec["requestBody"] = {"required": True, "content": body}
        if op.path == "/openapi.json":
            spec["security"] = []
        paths.setdefault(op.path, {})[op.method] = spec
    return {
        "openapi": "3.1.0",
        "info": {"title": "edgesight hub API", "version": "1",
                 "description": "Session cookie (browser; state-changing requests need X-CSRF-Token) or "
                                "`Authorization: Bearer <token>` (scripts)."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }


bp = Blueprint("openapi", __name__, url_prefix="/api/v1")


@bp.get("/docs")
def docs_page():
    """The same document rendered as a page (server-side, no third-party viewer), linked from the nav."""
    from flask import render_template

    return render_template("api_docs.html", doc=document())


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())
