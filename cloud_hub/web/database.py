"""One engine per app, one ORM session per request (closed at teardown)."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cloud_hub.config import HubSettings
from cloud_hub.db import make_engine
from cloud_hub.snapshots import SnapshotStore

ENGINE_KEY = "edgesight.engine"


def init_app(app: Flask) -> None:
    settings: HubSettings = app.config["HUB_SETTINGS"]
    app.extensions[ENGINE_KEY] = make_engine(settings.database_url or "")
    app.teardown_appcontext(close_session)


def settings() -> HubSettings:
    return current_app.config["HUB_SETTINGS"]


def engine() -> Engine:
    return current_app.extensions[ENGINE_KEY]


def session() -> Session:
    if "db" not in g:
        g.db = Session(engine(), expire_on_commit=False)
    return g.db


def snapshot_store() -> SnapshotStore:
    return SnapshotStore(settings().snapshot_dir or "")


def close_session(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()
