"""WSGI entry for gunicorn: ``gunicorn 'cloud_hub.wsgi:app'`` (web only; ingest is its own process)."""

from cloud_hub import create_app, logs

app = create_app()
logs.configure(app.config["HUB_SETTINGS"].log_format)
