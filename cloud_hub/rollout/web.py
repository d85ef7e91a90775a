"""Dashboard pages and API for rollouts: campaigns with per-wave progress, device states, failures and
the operator's actions; the model registry with an upload form. Server-rendered, no scripts needed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.utils import secure_filename

from cloud_hub.rollout import campaigns as c
from cloud_hub.rollout import registry
from cloud_hub.rollout.keys import KeyError_, key_dir, load_signing_key
from cloud_hub.rollout.schemas import ModelList, ModelOut, RolloutList, RolloutOut
from cloud_hub.rollout.validate import ModelRejected
from cloud_hub.rollout.views import campaign_list, campaign_summary, model_summary
from cloud_hub.web import database, openapi
from cloud_hub.web.auth import require_role

bp = Blueprint(
    "rollout",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/rollouts/static",
)

# The hub's OpenAPI document lists other areas' operations from these registries.
openapi.OPERATIONS += [
    openapi.Operation("get", "/rollouts", "Rollout campaigns, newest first", RolloutList),
    openapi.Operation(
        "get",
        "/rollouts/{campaign_id}",
        "One campaign: waves, counts per state, failures, devices",
        RolloutOut,
        params=[openapi.Param("campaign_id", "path")],
    ),
    openapi.Operation("get", "/models", "Registered models: kind, device scope (null: any device), "
                      "whether the signed registry record verifies", ModelList),
    openapi.Operation("get", "/models/{ref}", "One registered model, NAME@VERSION (NAME: the newest version)",
                      ModelOut, params=[openapi.Param("ref", "path")]),
]
openapi.MODELS += [RolloutList, RolloutOut, ModelList, ModelOut]

STATE_ORDER = [
    "QUEUED",
    "SENT",
    "OFFERED",
    "DOWNLOADING",
    "VERIFIED",
    "INSTALLED",
    "SHADOW",
    "ACTIVE",
    "FAILED",
    "ROLLED_BACK",
    "TIMED_OUT",
    "CANCELLED",
]


def _key():
    try:
        return load_signing_key(key_dir(current_app.instance_path))
    except KeyError_ as exc:
        abort(409, description=str(exc))


def _public_key():
    """The hub key's public half to check registry records with; None on a hub without keys."""
    try:
        return load_signing_key(key_dir(current_app.instance_path)).public_key()
    except KeyError_:
        return None


@bp.get("/rollouts")
def index():
    db = database.session()
    return render_template("rollout/index.html", campaigns=campaign_list(db), models=registry.versions(db))


@bp.get("/rollouts/<campaign_id>")
def campaign(campaign_id: str):
    db = database.session()
    try:
        summary = campaign_summary(db, c.get(db, campaign_id))
    except c.CampaignError:
        abort(404)
    return render_template("rollout/campaign.html", c=summary, state_order=STATE_ORDER)


@bp.post("/rollouts/<campaign_id>/<action>")
@require_role("admin")
def act(campaign_id: str, action: str):
    db = database.session()
    try:
        if action == "pause":
            c.pause(db, campaign_id)
        elif action == "resume":
            c.resume(db, campaign_id)
        elif action == "abort":
            c.abort(db, campaign_id)
        elif action == "rollback":
            new = c.rollback(db, _key(), campaign_id, request.form.get("to") or None)
            flash(f"Rollback campaign {new.id} started.")
            return redirect(url_for("rollout.campaign", campaign_id=new.id))
        else:
            abort(404)
        flash(f"{campaign_id}: {action} done.")
    except c.CampaignError as exc:
        flash(str(exc))
    return redirect(url_for("rollout.campaign", campaign_id=campaign_id))


@bp.post("/rollouts")
@require_role("admin")
def create():
    db = database.session()
    form = request.form
    try:
        model = registry.find(db, form["model"])
        new = c.create(
            db,
            _key(),
            model,
            form["target"],
            canary=int(form.get("canary") or 1),
            waves=c.parse_percentages(form.get("waves") or "10%,50%,100%"),
            max_failure=c.parse_fraction(form.get("max_failure") or "10%"),
            max_concurrent=int(form.get("max_concurrent") or 50),
            shadow=bool(form.get("shadow")),
        )
    except (LookupError, KeyError, ValueError, c.CampaignError) as exc:
        flash(f"Campaign not created: {exc}")
        return redirect(url_for("rollout.index"))
    _, never_seen = c.by_readiness(db, [d.device_id for d in c.devices_of(db, new.id)])
    if never_seen:
        flash(f"Warning: {len(never_seen)} target device(s) never connected: {', '.join(never_seen)}. "
              "The campaign waits for them.")
    return redirect(url_for("rollout.campaign", campaign_id=new.id))


@bp.post("/rollouts/models")
@require_role("admin")
def upload():
    files = {k: request.files.get(k) for k in ("model", "manifest", "golden")}
    if not files["model"] or not files["manifest"]:
        flash("A model file and its manifest are required.")
        return redirect(url_for("rollout.index"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_path = folder / secure_filename(files["model"].filename or "model.onnx")
        files["model"].save(model_path)
        manifest_path = folder / "upload-manifest.json"
        files["manifest"].save(manifest_path)
        if files["golden"]:
            files["golden"].save(folder / secure_filename(files["golden"].filename or "golden.npz"))
        try:
            row, created = registry.register(
                database.session(),
                model_path,
                manifest_path,
                registry.blob_dir(current_app.instance_path),
                _key(),
            )
            flash(f"{'Registered' if created else 'Already registered'} {row.ref} (signed).")
        except ModelRejected as exc:
            flash(f"Model rejected: {exc}")
    return redirect(url_for("rollout.index"))


@bp.get("/api/v1/rollouts")
def api_list():
    return jsonify(items=campaign_list(database.session()))


@bp.get("/api/v1/rollouts/<campaign_id>")
def api_campaign(campaign_id: str):
    db = database.session()
    try:
        return jsonify(campaign_summary(db, c.get(db, campaign_id)))
    except c.CampaignError:
        return jsonify(error=f"no campaign {campaign_id}"), 404


@bp.get("/api/v1/models")
def api_models():
    public_key = _public_key()
    return jsonify(items=[model_summary(r, public_key) for r in registry.versions(database.session())])


@bp.get("/api/v1/models/<path:ref>")
def api_model(ref: str):
    try:
        row = registry.find(database.session(), ref)
    except LookupError as exc:
        return jsonify(error=str(exc)), 404
    return jsonify(model_summary(row, _public_key()))
