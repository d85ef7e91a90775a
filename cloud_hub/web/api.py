"""REST API v1 (JSON): thin views over cloud_hub.queries. The contract is openapi.py."""

from __future__ import annotations

import csv
import io
import json
import time

from flask import Blueprint, Response, abort, g, jsonify, request, send_file, stream_with_context
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cloud_hub import auth, queries
from cloud_hub.models import ApiToken, Device, Event, Snapshot, Telemetry, User
from cloud_hub.queries import EventFilter, QueryError
from cloud_hub.web import database
from cloud_hub.web.auth import require_role
from shared.topics import DEVICE_ID_RE

bp = Blueprint("api", __name__, url_prefix="/api/v1")

CSV_MAX_ROWS = 1_000_000
STREAM_POLL_S = 1.0
STREAM_KEEPALIVE_S = 15.0


@bp.errorhandler(QueryError)
def bad_query(exc: QueryError):
    return jsonify(error=str(exc)), 400


@bp.get("/devices")
def list_devices():
    return jsonify(items=queries.devices(database.session()))


@bp.get("/devices/<device_id>")
def get_device(device_id: str):
    device = database.session().get(Device, device_id)
    if device is None:
        abort(404)
    return jsonify(queries.device_dict(device))


@bp.get("/devices/<device_id>/telemetry")
def device_telemetry(device_id: str):
    if database.session().get(Device, device_id) is None:
        abort(404)
    since = queries.parse_time(request.args.get("since"), "since")
    until = queries.parse_time(request.args.get("until"), "until")
    limit = queries.parse_int(request.args.get("limit"), "limit", 1000, 1, 10000)
    return jsonify(items=queries.telemetry(database.session(), device_id, since, until, limit))


@bp.get("/events")
def list_events():
    flt = EventFilter.from_args(request.args)
    if request.args.get("format") == "csv":
        return _events_csv(flt)
    limit = queries.parse_int(request.args.get("limit"), "limit", queries.DEFAULT_PAGE, 1, queries.MAX_PAGE)
    items, next_cursor = queries.events_page(database.session(), flt, limit, request.args.get("cursor"))
    return jsonify(items=items, next_cursor=next_cursor)


CSV_COLUMNS = [f for f in queries.EVENT_FIELDS if f not in ("bbox", "attributes")] + ["bbox", "attributes"]


def _events_csv(flt: EventFilter) -> Response:
    db = database.session()

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for event in queries.iter_events(db, flt, CSV_MAX_ROWS):
            data = queries.event_dict(event)
            data["bbox"] = json.dumps(data["bbox"]) if data["bbox"] is not None else ""
            data["attributes"] = json.dumps(data["attributes"]) if data["attributes"] else ""
            writer.writerow(["" if data[c] is None else data[c] for c in CSV_COLUMNS])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=events.csv"})


@bp.get("/counts")
def counts():
    flt = EventFilter.from_args(request.args)
    group = request.args.get("group", "label")
    bucket_s = queries.parse_int(request.args.get("bucket"), "bucket", 3600, 60, 31 * 86400)
    if flt.since is None:
        flt = EventFilter(**(flt.as_args() | {"since": time.time() - 86400}))
    until = flt.until if flt.until is not None else time.time()
    return jsonify(group=group, bucket_s=bucket_s, since=flt.since, until=until,
                   counts=queries.COUNT_MEANING.get(group),
                   items=queries.counts(database.session(), flt, group, bucket_s))


@bp.get("/snapshots/<device_id>/<event_id>")
def snapshot(device_id: str, event_id: str):
    """The JPEG of one event. The file is found through the database, never through the URL."""
    if not DEVICE_ID_RE.match(device_id):
        abort(404)
    row = database.session().scalar(
        select(Snapshot).where(Snapshot.device_id == device_id, Snapshot.event_id == event_id))
    path = database.snapshot_store().resolve(row.path) if row else None
    if path is None:
        abort(404)
    response = send_file(path, mimetype="image/jpeg", max_age=86400, etag=row.sha256)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/stream")
def stream():
    """Server-sent events: ``event: events`` with newly stored events, ``event: devices`` on changes."""
    app_db = database.engine()
    start = time.time() - 2.0

    def generate():
        watermark = start
        sent: dict[int, float] = {}
        devices_digest = None
        last_write = 0.0
        yield "retry: 2000\n\n"
        while True:
            with Session(app_db) as db:
                # Re-read a short window: rows from parallel writers can commit slightly out of order.
                fresh = [e for e in queries.events_since(db, watermark - 5.0) if e["id"] not in sent]
                devices = queries.devices(db)
            now = time.time()
            if fresh:
                for e in fresh:
                    sent[e["id"]] = e["received_at"]
                watermark = max(watermark, max(e["received_at"] for e in fresh))
                sent = {k: v for k, v in sent.items() if v > watermark - 10.0}
                yield f"event: events\ndata: {json.dumps(fresh)}\n\n"
                last_write = now
            digest = json.dumps(devices, sort_keys=True)
            if digest != devices_digest:
                devices_digest = digest
                yield f"event: devices\ndata: {digest}\n\n"
                last_write = now
            if now - last_write > STREAM_KEEPALIVE_S:
                yield ": keepalive\n\n"
                last_write = now
            time.sleep(STREAM_POLL_S)

    return Response(stream_with_context(generate()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# -- accounts ---------------------------------------------------------------------------------------
def _user_dict(user: User) -> dict:
    return {"id": user.id, "username": user.username, "role": user.role, "created_at": user.created_at,
            "disabled": user.disabled}


def _token_dict(token: ApiToken) -> dict:
    return {"id": token.id, "name": token.name, "created_at": token.created_at,
            "last_used_at": token.last_used_at, "revoked_at": token.revoked_at}


@bp.errorhandler(auth.AuthError)
def refused(exc: auth.AuthError):
    return jsonify(error=str(exc)), 400


@bp.get("/me")
def me():
    return jsonify(_user_dict(g.user) | {"auth": g.auth})


@bp.get("/tokens")
def list_tokens():
    return jsonify(items=[_token_dict(t) for t in auth.tokens_of(database.session(), g.user)])


@bp.post("/tokens")
def create_token():
    body = request.get_json(silent=True) or {}
    token = auth.create_token(database.session(), g.user, str(body.get("name", "")))
    return jsonify(id=token.id, name=token.name, token=token.secret), 201


@bp.delete("/tokens/<int:token_id>")
def revoke_token(token_id: int):
    try:
        token = auth.revoke_token(database.session(), token_id, g.user)
    except auth.AuthError:
        abort(404)
    return jsonify(_token_dict(token))


@bp.get("/users")
@require_role("admin")
def list_users():
    users = database.session().scalars(select(User).order_by(User.username))
    return jsonify(items=[_user_dict(u) for u in users])


@bp.post("/users")
@require_role("admin")
def create_user():
    body = request.get_json(silent=True) or {}
    user = auth.create_user(database.session(), str(body.get("username", "")), str(body.get("password", "")),
                            str(body.get("role", "viewer")))
    return jsonify(_user_dict(user)), 201


@bp.patch("/devices/<device_id>")
@require_role("admin")
def update_device(device_id: str):
    """Operator labels for the registry: a display name and a site."""
    db = database.session()
    device = db.get(Device, device_id)
    if device is None:
        abort(404)
    body = request.get_json(silent=True) or {}
    unknown = set(body) - {"name", "site"}
    if unknown:
        raise QueryError(f"{sorted(unknown)[0]}: not an editable field (name, site)")
    for field in ("name", "site"):
        if field in body:
            value = body[field]
            if value is not None and (not isinstance(value, str) or len(value) > 128):
                raise QueryError(f"{field}: a string of at most 128 characters, or null")
            setattr(device, field, value or None)
    db.commit()
    return jsonify(queries.device_dict(device))


@bp.delete("/devices/<device_id>")
@require_role("admin")
def delete_device(device_id: str):
    """Forget a device and everything it sent (its snapshots' files go with retention's orphan sweep)."""
    db = database.session()
    device = db.get(Device, device_id)
    if device is None:
        abort(404)
    db.execute(delete(Event).where(Event.device_id == device_id))
    db.execute(delete(Snapshot).where(Snapshot.device_id == device_id))
    db.execute(delete(Telemetry).where(Telemetry.device_id == device_id))
    db.delete(device)
    db.commit()
    return "", 204
