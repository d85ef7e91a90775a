"""Login, logout, CSRF, the access guard and the account/user pages.

Every request passes ``load_user_and_guard``: a bearer token or the session cookie decides the user;
anything but health checks, the login page and static files needs one. Requests authenticated by the
session cookie must carry the session's CSRF token on every state-changing method.
"""

from __future__ import annotations

import hmac
import secrets
import time
from functools import wraps

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from cloud_hub import auth
from cloud_hub.models import User
from cloud_hub.web import database

bp = Blueprint("auth", __name__)

PUBLIC_ENDPOINTS = {"health.healthz", "health.readyz", "health.metrics", "auth.login", "static",
                    "openapi.openapi_json"}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SESSION_LIFETIME_S = 12 * 3600


class HubSessionInterface(SecureCookieSessionInterface):
    """Session cookie marked Secure whenever the request came over TLS (directly or via a trusted proxy)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _refuse(status: int, message: str):
    if _is_api():
        return jsonify(error=message), status
    if status == 401:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    abort(status, description=message)


@bp.before_app_request
def load_user_and_guard():
    g.user = None
    g.auth = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        user = auth.user_for_token(database.session(), header[7:].strip())
        if user is None:
            return jsonify(error="invalid or revoked API token"), 401
        g.user, g.auth = user, "token"
        return None
    user_id = session.get("user_id")
    if user_id is not None:
        db = database.session()
        user = db.get(User, user_id)
        fresh = session.get("login_at", 0) > time.time() - SESSION_LIFETIME_S
        # The cookie alone proves nothing: its session row must still exist (logout, a password
        # change or an admin removes it server-side).
        if user is not None and not user.disabled and fresh and auth.session_valid(db, session.get("sid"),
                                                                                    user.id):
            g.user, g.auth = user, "session"
        else:
            session.clear()
    if request.method in UNSAFE_METHODS:
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
        expected = session.get("csrf") or ""
        if not expected or not hmac.compare_digest(sent, expected):
            return _refuse(400, "missing or wrong CSRF token")
    if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        return _refuse(401, "login required")
    return None


def require_role(role: str):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if g.user is None or (role == "admin" and g.user.role != "admin"):
                if _is_api():
                    return jsonify(error=f"{role} role required"), 403
                abort(403, description=f"{role} role required")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def _client_address() -> str:
    return request.remote_addr or "unknown"


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("dashboard.fleet")


@bp.route("/login", methods=["GET", "POST"])
def login():
    db = database.session()
    if request.method == "GET":
        return render_template("login.html", no_users=auth.user_count(db) == 0)
    limiter = auth.LoginRateLimit(database.settings().login_attempts_per_minute)
    client = _client_address()
    reservation = limiter.reserve(db, client)
    if reservation is None:
        return render_template("login.html", error="Too many failed logins; wait a minute."), 429
    user = auth.authenticate(db, request.form.get("username", ""), request.form.get("password", ""))
    if user is None:
        return render_template("login.html", error="Wrong username or password."), 401
    limiter.release(db, reservation)
    _start_session(user)
    return redirect(_safe_next(request.args.get("next")))


def _start_session(user: User) -> None:
    # Rotate: nothing from the anonymous session (including its CSRF token) survives the login.
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session["login_at"] = time.time()
    session["sid"] = auth.open_session(database.session(), user)
    session["csrf"] = secrets.token_urlsafe(32)


@bp.post("/logout")
def logout():
    auth.close_session(database.session(), session.get("sid"))
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def password():
    if request.method == "POST":
        db = database.session()
        try:
            auth.change_password(db, g.user, request.form.get("current", ""), request.form.get("new", ""))
        except auth.AuthError as exc:
            flash(str(exc))
            return render_template("password.html"), 400
        _start_session(g.user)  # every other session of this user is gone
        flash("Password changed; every other session is signed out.")
        return redirect(url_for("auth.password"))
    return render_template("password.html")


@bp.route("/account/tokens", methods=["GET", "POST"])
def tokens():
    db = database.session()
    created = None
    if request.method == "POST":
        try:
            created = auth.create_token(db, g.user, request.form.get("name", ""))
        except auth.AuthError as exc:
            flash(str(exc))
    return render_template("tokens.html", tokens=auth.tokens_of(db, g.user), created=created)


@bp.post("/account/tokens/<int:token_id>/revoke")
def revoke(token_id: int):
    try:
        auth.revoke_token(database.session(), token_id, g.user)
    except auth.AuthError:
        abort(404)
    flash("Token revoked.")
    return redirect(url_for("auth.tokens"))


@bp.route("/admin/users", methods=["GET", "POST"])
@require_role("admin")
def users():
    db = database.session()
    if request.method == "POST":
        try:
            user = auth.create_user(db, request.form.get("username", ""), request.form.get("password", ""),
                                    request.form.get("role", "viewer"))
            flash(f"User {user.username} created.")
        except auth.AuthError as exc:
            flash(str(exc))
        return redirect(url_for("auth.users"))
    return render_template("users.html", users=db.scalars(select(User).order_by(User.username)).all())


def init_app(app: Flask) -> None:
    app.session_interface = HubSessionInterface()
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", SESSION_LIFETIME_S)
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.context_processor
    def current_user():
        return {"current_user": g.get("user")}

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'")
        return response
