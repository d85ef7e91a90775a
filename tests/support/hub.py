"""The hub web app on a migrated database, as the hub and end-to-end tests both need it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask


@contextmanager
def hub_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    from cloud_hub import create_app
    from cloud_hub.db import upgrade
    from cloud_hub.web.database import ENGINE_KEY

    upgrade(database_url)
    app = create_app({
        "instance_path": str(tmp_path / "instance"),
        "database_url": database_url,
        "secret_key": "test-secret-key",
        "snapshot_dir": str(tmp_path / "snapshots"),
        "log_format": "text",
    })
    app.config["TESTING"] = True
    try:
        yield app
    finally:
        app.extensions[ENGINE_KEY].dispose()
