"""Liveness, readiness and Prometheus metrics (no login: orchestrators and scrapers call these)."""

from __future__ import annotations

import socket
import time

from flask import Blueprint, Response, jsonify
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from cloud_hub.config import parse_mqtt_url
from cloud_hub.models import DeadLetter, Device, Event
from cloud_hub.web import database

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process answers; says nothing about its dependencies (that is /readyz)."""
    return jsonify(status="ok")


def _database_ok() -> tuple[bool, str, float]:
    started = time.perf_counter()
    try:
        with database.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
            conn.execute(select(func.count()).select_from(Device.__table__))
    except Exception as exc:  # readiness reports any failure, it does not raise
        return False, f"{type(exc).__name__}: {exc}".splitlines()[0], time.perf_counter() - started
    return True, "ok", time.perf_counter() - started


def _broker_ok() -> tuple[bool, str]:
    address = parse_mqtt_url(database.settings().mqtt_url)
    try:
        with socket.create_connection((address.host, address.port), timeout=1.0):
            return True, "ok"
    except OSError as exc:
        return False, f"{address.host}:{address.port}: {exc}"


@bp.get("/readyz")
def readyz():
    db_ok, db_detail, _ = _database_ok()
    broker_ok, broker_detail = _broker_ok()
    ok = db_ok and broker_ok
    body = {"status": "ok" if ok else "unavailable",
            "checks": {"database": db_detail, "broker": broker_detail}}
    return jsonify(body), 200 if ok else 503


class DatabaseCollector:
    """Gauges read from the database at scrape time, so every web worker reports the same truth."""

    def collect(self):
        ok, _, latency = _database_ok()
        yield GaugeMetricFamily("edgesight_database_up", "1 if the database answered", value=int(ok))
        yield GaugeMetricFamily("edgesight_database_latency_seconds", "round trip of a trivial query",
                                value=latency)
        if not ok:
            return
        with database.engine().connect() as conn:
            last_id, last_received = conn.execute(
                select(func.max(Event.id), func.max(Event.received_at))).one()
            dead = conn.execute(select(func.count()).select_from(DeadLetter.__table__)).scalar_one()
            online = conn.execute(select(func.count()).select_from(Device.__table__)
                                  .where(Device.state == "online")).scalar_one()
            devices = conn.execute(select(func.count()).select_from(Device.__table__)).scalar_one()
        yield GaugeMetricFamily("edgesight_events_last_id", "highest event row id (grows with ingest)",
                                value=last_id or 0)
        yield GaugeMetricFamily("edgesight_ingest_idle_seconds", "seconds since the last stored event",
                                value=(time.time() - last_received) if last_received else float("nan"))
        yield GaugeMetricFamily("edgesight_dead_letters", "messages refused by ingest", value=dead)
        yield GaugeMetricFamily("edgesight_devices", "devices in the registry", value=devices)
        yield GaugeMetricFamily("edgesight_devices_online", "devices whose status is online", value=online)


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry()
    registry.register(DatabaseCollector())
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")
