"""cloud_hub: the fleet hub (web app + ingest worker). ``create_app`` is the Flask app factory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from cloud_hub.config import default_database_url, load_settings


def _secret_key(instance_path: Path, configured: str | None) -> str:
    """A configured key, else one generated once and kept in the instance folder (never a default)."""
    if configured:
        return configured
    path = instance_path / "secret_key"
    if not path.exists():
        # Several gunicorn workers may race here: write aside, then link (fails if another won).
        tmp = path.with_name(f".secret_key.{os.getpid()}")
        tmp.write_text(secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Settings come from EDGESIGHT_CONFIG (YAML), the environment, then ``test_config``.

    ``instance_path`` (or EDGESIGHT_INSTANCE_PATH) moves the folder holding the default SQLite
    database, the generated secret key and the snapshots.
    """
    overrides = dict(test_config or {})
    instance_path = overrides.pop("instance_path", None) or os.environ.get("EDGESIGHT_INSTANCE_PATH")
    app = Flask(__name__, instance_relative_config=True,
                instance_path=str(Path(instance_path).resolve()) if instance_path else None)
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    settings = load_settings(overrides)
    if settings.database_url is None:
        settings = settings.model_copy(update={"database_url": default_database_url(instance)})
    if settings.snapshot_dir is None:
        settings = settings.model_copy(update={"snapshot_dir": str(instance / "snapshots")})

    app.config.from_mapping(
        SECRET_KEY=_secret_key(instance, settings.secret_key),
        HUB_SETTINGS=settings,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
    )

    from cloud_hub.web import database

    database.init_app(app)

    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    from cloud_hub.web import api, auth, dashboard, health, openapi

    auth.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(dashboard.bp)

    from cloud_hub.rollout import commands as rollout_commands
    from cloud_hub.rollout import web as rollout_web

    app.register_blueprint(rollout_web.bp)

    from cloud_hub.camera import web as camera_web
    from cloud_hub.identity import web as identity_web

    app.register_blueprint(camera_web.bp)

    from cloud_hub.capture import commands as capture_commands
    from cloud_hub.capture import web as capture_web

    app.register_blueprint(capture_web.bp)
    capture_commands.init_app(app)

    from cloud_hub.adapt import commands as adapt_commands
    from cloud_hub.adapt import web as adapt_web

    app.register_blueprint(adapt_web.bp)
    adapt_commands.init_app(app)

    app.register_blueprint(identity_web.bp)

    from cloud_hub import commands

    commands.init_app(app)
    rollout_commands.init_app(app)

    from cloud_hub.homeassistant import commands as homeassistant_commands

    homeassistant_commands.init_app(app)
    return app
