"""Adaptation jobs in the API and on the dashboard: admins start and cancel, everyone signed in watches."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from cloud_hub.adapt import service
from cloud_hub.web import database, openapi
from cloud_hub.web.auth import require_role

bp = Blueprint("adapt", __name__, template_folder="templates")


class AdaptationOut(openapi.Out):
    id: str
    device_id: str
    state: str
    progress: float
    progress_text: str
    message: str | None = None
    reason: str | None = None
    capture_id: str | None = None
    teacher: str
    base: str
    created_by: str
    created_at: float
    before_f1: dict[str, float]
    after_f1: dict[str, float]
    model: str | None = None
    campaign_id: str | None = None


class AdaptationList(openapi.Out):
    items: list[AdaptationOut]


class AdaptationIn(openapi.Out):
    capture_id: str | None = None
    frames: int | None = None
    interval_s: float | None = None
    teacher: str | None = None
    capture_timeout_s: float | None = None


JOB = openapi.Param("job_id", "path")
openapi.OPERATIONS += [
    openapi.Operation(
        "post",
        "/devices/{device_id}/adaptations",
        "Adapt the device's current model to its view "
        "(admin; logged with who and when): with an existing capture, or a new one of N frames",
        AdaptationOut,
        202,
        params=[openapi.DEVICE],
        body=AdaptationIn,
        admin=True,
    ),
    openapi.Operation(
        "get",
        "/adaptations",
        "Adaptation jobs, newest first",
        AdaptationList,
        params=[openapi.Param("device", description="only this device's jobs")],
    ),
    openapi.Operation(
        "get",
        "/adaptations/{job_id}",
        "One job: state, progress, reason, before/after F1, log",
        AdaptationOut,
        params=[JOB],
    ),
    openapi.Operation(
        "post",
        "/adaptations/{job_id}/cancel",
        "Stop a job; its capture and campaign stop (admin)",
        AdaptationOut,
        params=[JOB],
        admin=True,
    ),
]
openapi.MODELS += [AdaptationOut, AdaptationList, AdaptationIn]


def _who() -> str:
    return g.user.username if g.user is not None else "unknown"


def _start(device_id: str, values: dict) -> dict:
    def number(name: str, kind: type):
        raw = values.get(name)
        if raw in (None, ""):
            return None
        try:
            return kind(raw)
        except (TypeError, ValueError):
            raise service.AdaptStartError(f"{name}: {raw!r} is not a number") from None

    timeout = number("capture_timeout_s", float)
    db = database.session()
    job = service.start(
        db,
        database.settings(),
        device_id,
        created_by=_who(),
        capture_id=values.get("capture_id") or None,
        frames=number("frames", int),
        interval_s=number("interval_s", float),
        teacher=values.get("teacher") or None,
        **({"capture_timeout_s": timeout} if timeout else {}),
    )
    current_app.logger.info(
        "adaptation started", extra={"adaptation": job.id, "device": device_id, "by": _who()}
    )
    return service.as_dict(db, job)


@bp.post("/api/v1/devices/<device_id>/adaptations")
@require_role("admin")
def start_adaptation(device_id: str):
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="a JSON object: {capture_id} or {frames, interval_s}, optional teacher"), 400
    try:
        return jsonify(_start(device_id, body)), 202
    except service.AdaptStartError as exc:
        return jsonify(error=str(exc)), 404 if str(exc).startswith("unknown device") else 400


@bp.post("/devices/<device_id>/adaptations")
@require_role("admin")
def start_adaptation_form(device_id: str):
    try:
        job = _start(device_id, request.form.to_dict())
    except service.AdaptStartError as exc:
        flash(f"adaptation not started: {exc}")
        return redirect(url_for("dashboard.device", device_id=device_id) + "#adaptations")
    flash(f"adaptation {job['id']} started")
    return redirect(url_for("adapt.job_page", job_id=job["id"]))


@bp.get("/api/v1/adaptations")
def list_adaptations():
    db = database.session()
    return jsonify(
        items=[service.as_dict(db, j) for j in service.listing(db, request.args.get("device") or None)]
    )


@bp.get("/api/v1/adaptations/<job_id>")
def get_adaptation(job_id: str):
    db = database.session()
    found = service.detail(db, job_id)
    if found is None:
        abort(404)
    return jsonify(service.as_dict(db, *found))


@bp.post("/api/v1/adaptations/<job_id>/cancel")
@require_role("admin")
def cancel_adaptation(job_id: str):
    db = database.session()
    try:
        job = service.cancel(db, database.settings(), job_id, by=_who())
    except service.AdaptStartError as exc:
        return jsonify(error=str(exc)), 404 if str(exc).startswith("no adaptation") else 409
    current_app.logger.info("adaptation cancelled", extra={"adaptation": job_id, "by": _who()})
    return jsonify(service.as_dict(db, job))


@bp.post("/adaptations/<job_id>/cancel")
@require_role("admin")
def cancel_adaptation_form(job_id: str):
    try:
        service.cancel(database.session(), database.settings(), job_id, by=_who())
        flash(f"adaptation {job_id} cancelled")
    except service.AdaptStartError as exc:
        flash(f"not cancelled: {exc}")
    return redirect(url_for("adapt.job_page", job_id=job_id))


CARD_FILES = {".png": "image/png", ".md": "text/markdown; charset=utf-8", ".json": "application/json"}


def _run_dir(job_id: str) -> Path:
    """Where the adapt-worker keeps adapt()'s finished output (the instance folder both processes share)."""
    return Path(current_app.instance_path) / "adapt" / job_id / "run"


def card_files(job_id: str) -> list[str]:
    """The card's files (plots, the card, the report) under the job's output, relative names."""
    run = _run_dir(job_id)
    if not run.is_dir():
        return []
    found = [p for p in run.rglob("*") if p.is_file() and p.suffix in CARD_FILES]
    return sorted(str(p.relative_to(run)) for p in found)[:50]


@bp.get("/adaptations/<job_id>")
def job_page(job_id: str):
    db = database.session()
    found = service.detail(db, job_id)
    if found is None:
        abort(404)
    files = card_files(job_id)
    return render_template(
        "adapt/job.html",
        job=service.as_dict(db, *found),
        plots=[f for f in files if f.endswith(".png")],
        documents=[f for f in files if not f.endswith(".png")],
    )


@bp.get("/adaptations/<job_id>/files/<path:name>")
def job_file(job_id: str, name: str):
    """A file of the job's card; only names the listing offers (no path outside the job's output)."""
    if name not in card_files(job_id):
        abort(404)
    response = send_file(_run_dir(job_id) / name, mimetype=CARD_FILES[Path(name).suffix], max_age=60)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.app_context_processor
def _template_helpers() -> dict[str, object]:
    return {
        "device_adaptations": lambda device_id: [
            service.as_dict(database.session(), j) for j in service.listing(database.session(), device_id, 10)
        ]
    }
