"""Dashboard pages for device credentials: enrol, rotate, revoke (admins only, CSRF-checked forms).

A new secret is shown exactly once, on the response to the form that created it, with ``no-store`` so
neither the browser nor a proxy keeps a copy; afterwards the hub only has its hash.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from cloud_hub.web import database
from cloud_hub.web.auth import require_role

from .dynsec import DynsecError
from .models import DeviceCredential
from .registry import Provisioned, ProvisioningError
from .wiring import UNMANAGED_WARNING, broker_managed, open_registry

bp = Blueprint("identity", __name__, template_folder="templates")

FAILURES = (ProvisioningError, DynsecError, ValueError, OSError)


@bp.app_context_processor
def _template_helpers() -> dict[str, object]:
    return {"device_credential": lambda device_id: database.session().get(DeviceCredential, device_id)}


def _issued(issued: Provisioned, action: str) -> Response:
    response = make_response(render_template("identity/issued.html", issued=issued, action=action))
    response.headers["Cache-Control"] = "no-store"
    return response


def _registry():
    return open_registry(database.settings(), database.engine())


@bp.get("/devices/credentials")
@require_role("admin")
def credentials():
    creds = database.session().scalars(select(DeviceCredential).order_by(DeviceCredential.device_id)).all()
    managed = broker_managed(database.settings())
    return render_template(
        "identity/credentials.html", creds=creds, warning=None if managed else UNMANAGED_WARNING
    )


@bp.post("/devices/credentials")
@require_role("admin")
def add():
    name = request.form.get("name", "").strip()
    group = request.form.get("group", "").strip() or None
    tags = [t.strip() for t in request.form.get("tags", "").split(",") if t.strip()]
    try:
        with _registry() as registry:
            issued = registry.add(name, group, tags)
    except FAILURES as exc:
        flash(f"could not add {name!r}: {exc}")
        return redirect(url_for("identity.credentials"))
    current_app.logger.info("device enrolled", extra={"device": name, "by": _who()})
    return _issued(issued, "added")


@bp.post("/devices/<device_id>/credentials/rotate")
@require_role("admin")
def rotate(device_id: str):
    try:
        with _registry() as registry:
            issued = registry.rotate(device_id)
    except FAILURES as exc:
        flash(f"could not rotate {device_id!r}: {exc}")
        return redirect(url_for("identity.credentials"))
    current_app.logger.info("device secret rotated", extra={"device": device_id, "by": _who()})
    return _issued(issued, "rotated")


@bp.post("/devices/<device_id>/credentials/revoke")
@require_role("admin")
def revoke(device_id: str):
    back = redirect(request.form.get("next") or url_for("identity.credentials"))
    if request.form.get("confirm") != "yes":
        flash(f"{device_id} not revoked: tick the confirmation box")
        return back
    try:
        with _registry() as registry:
            registry.revoke(device_id)
    except FAILURES as exc:
        flash(f"could not revoke {device_id!r}: {exc}")
    else:
        current_app.logger.info("device revoked", extra={"device": device_id, "by": _who()})
        flash(f"{device_id} revoked: the broker refuses it and has dropped its connection")
    return back


def _who() -> str:
    return g.user.username if g.get("user") else "?"
