"""Server-rendered dashboard pages. Data comes from cloud_hub.queries; live updates from /api/v1/stream."""

from __future__ import annotations

from flask import Blueprint, render_template

from cloud_hub import queries
from cloud_hub.queries import EventFilter
from cloud_hub.web import database

bp = Blueprint("dashboard", __name__)

LATEST_EVENTS = 30


@bp.get("/")
def fleet():
    db = database.session()
    events, _ = queries.events_page(db, EventFilter(), LATEST_EVENTS)
    return render_template("fleet.html", devices=queries.devices(db), events=events)


@bp.app_template_filter("timestamp")
def timestamp_filter(ts: float | None) -> str:
    """UTC on the server; app.js rewrites it in the viewer's local time."""
    from datetime import UTC, datetime

    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
