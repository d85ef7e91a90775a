"""Server-rendered dashboard pages. Data comes from cloud_hub.queries; live updates from /api/v1/stream;
charts are drawn in the browser by static/app.js from the JSON API."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, render_template, request

from cloud_hub import queries
from cloud_hub.camera import queries as camera_queries
from cloud_hub.models import Device
from cloud_hub.queries import EventFilter, QueryError
from cloud_hub.web import database

bp = Blueprint("dashboard", __name__)

LATEST_EVENTS = 30
BUCKETS = {"15 min": 900, "1 hour": 3600, "1 day": 86400}
RANGES = {"1 hour": 3600, "6 hours": 6 * 3600, "24 hours": 86400, "7 days": 7 * 86400, "30 days": 30 * 86400}
WINDOWS = {"6 hours": 6 * 3600, "24 hours": 86400, "48 hours": 2 * 86400, "7 days": 7 * 86400,
           "30 days": 30 * 86400}


@bp.app_template_filter("timestamp")
def timestamp_filter(ts: float | None) -> str:
    """UTC on the server; app.js rewrites it in the viewer's local time."""
    if ts is None:
        return "—"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):  # a row from before the ts window: show, never fail
        return f"{ts!r} (out of range)"


@bp.errorhandler(QueryError)
def bad_query(exc: QueryError):
    return render_template("error.html", message=str(exc)), 400


@bp.get("/")
def fleet():
    db = database.session()
    events, _ = queries.events_page(db, EventFilter(), LATEST_EVENTS)
    camera_queries.snapshot_links(db, events)
    return render_template("fleet.html", devices=queries.devices(db), events=events)


@bp.get("/events")
def events():
    db = database.session()
    flt = EventFilter.from_args(request.args)
    limit = queries.parse_int(request.args.get("limit"), "limit", queries.DEFAULT_PAGE, 1, queries.MAX_PAGE)
    items, next_cursor = queries.events_page(db, flt, limit, request.args.get("cursor"))
    camera_queries.snapshot_links(db, items)
    args = {k: v for k, v in request.args.items() if v and k != "cursor"}
    return render_template("events.html", events=items, next_cursor=next_cursor, args=args,
                           devices=[d["id"] for d in queries.devices(db)], filters=flt)


@bp.get("/devices/<device_id>")
def device(device_id: str):
    db = database.session()
    row = db.get(Device, device_id)
    if row is None:
        abort(404)
    items, _ = queries.events_page(db, EventFilter(device=device_id), LATEST_EVENTS)
    camera_queries.snapshot_links(db, items)
    return render_template("device.html", d=queries.device_dict(row), events=items, ranges=RANGES)


def _counts_args() -> tuple[str, int, int, EventFilter]:
    group = request.args.get("group", "line")
    bucket = queries.parse_int(request.args.get("bucket"), "bucket", 3600, 60, 31 * 86400)
    window = queries.parse_int(request.args.get("window"), "window", 86400, 60, 366 * 86400)
    flt = EventFilter.from_args(request.args)
    if flt.since is None:
        flt = EventFilter(**(flt.as_args() | {"since": time.time() - window}))
    return group, bucket, window, flt


@bp.get("/counts.csv")
def counts_csv():
    """The counts table as a file to hand to a shop or a city: one row per bucket and key."""
    group, bucket, _window, flt = _counts_args()
    items = queries.counts(database.session(), flt, group, bucket)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["bucket_start_utc", "bucket_s", group, "direction", "count", "counts"])
    meaning = queries.COUNT_MEANING.get(group, "")
    for item in items:
        start = datetime.fromtimestamp(item["bucket"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        writer.writerow([start, bucket, item["key"], item.get("direction") or "", item["count"], meaning])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=counts-{group}.csv"})


@bp.get("/counts")
def counts():
    db = database.session()
    group, bucket, window, flt = _counts_args()
    items = queries.counts(db, flt, group, bucket)
    keys = sorted({(i["key"], i.get("direction")) for i in items}, key=lambda k: (str(k[0]), str(k[1])))
    table: dict[float, dict] = {}
    for item in items:
        table.setdefault(item["bucket"], {})[(item["key"], item.get("direction"))] = item["count"]
    totals = {k: sum(row.get(k, 0) for row in table.values()) for k in keys}
    return render_template("counts.html", group=group, meaning=queries.COUNT_MEANING.get(group, group),
                           bucket=bucket, window=window, keys=keys,
                           table=sorted(table.items(), reverse=True), totals=totals, buckets=BUCKETS,
                           windows=WINDOWS, groups=queries.COUNT_GROUPS, filters=flt,
                           bucket_name={v: k for k, v in BUCKETS.items()}.get(bucket, f"{bucket} s"))
