"""WSGI entry for gunicorn: ``gunicorn 'cloud_hub.wsgi:app'`` (web only; ingest is its own process)."""

import sys

from cloud_hub import create_app, logs
from cloud_hub.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:  # one line naming the field and its source, not a traceback per worker
    print(f"cloud-hub web: configuration error: {exc}", file=sys.stderr)
    sys.exit(2)
logs.configure(app.config["HUB_SETTINGS"].log_format)
