"""Hub fixtures (flaskr style: app, client, runner) on a real database, plus a running ingest worker."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from cloud_hub.ingest.worker import IngestWorker
from cloud_hub.web.database import ENGINE_KEY
from tests.support.hub import hub_app

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "hub"


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The hub web app on a migrated database (SQLite and PostgreSQL, via ``database_url``)."""
    with hub_app(database_url, tmp_path) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def ingest_factory(app: Flask) -> Iterator[Callable[..., IngestWorker]]:
    """Start in-process ingest workers on the app's database; all are stopped at teardown."""
    workers: list[IngestWorker] = []
    settings = app.config["HUB_SETTINGS"]

    def start(mqtt_url: str, **kwargs) -> IngestWorker:
        kwargs.setdefault("client_id", f"test-ingest-{len(workers)}")
        kwargs.setdefault("snapshot_dir", settings.snapshot_dir)
        worker = IngestWorker(app.extensions[ENGINE_KEY], mqtt_url, settings.mqtt_prefix, **kwargs).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class LiveServer:
    """The app on a real HTTP port (threaded werkzeug server) for the browser and SSE."""

    def __init__(self, app: Flask):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    server = LiveServer(app)
    yield server
    server.stop()


PASSWORD = "correct horse battery staple"


class AuthActions:
    """flaskr's AuthActions: make users, log in and out through the real form (with its CSRF token)."""

    def __init__(self, app: Flask, client: FlaskClient):
        self.app = app
        self.client = client

    def create(self, username: str = "admin", role: str = "admin", password: str = PASSWORD):
        from sqlalchemy.orm import Session

        from cloud_hub import auth

        with Session(self.app.extensions[ENGINE_KEY]) as db:
            return auth.create_user(db, username, password, role)

    def token(self, username: str, name: str = "test") -> str:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from cloud_hub import auth
        from cloud_hub.models import User

        with Session(self.app.extensions[ENGINE_KEY]) as db:
            user = db.scalar(select(User).where(User.username == username))
            return auth.create_token(db, user, name).secret

    def csrf(self) -> str:
        with self.client.session_transaction() as session:
            if "csrf" not in session:
                self.client.get("/login")
        with self.client.session_transaction() as session:
            return session["csrf"]

    def login(self, username: str = "admin", password: str = PASSWORD):
        self.client.get("/login")
        return self.client.post("/login", data={"username": username, "password": password,
                                                "csrf_token": self.csrf()})

    def logout(self):
        return self.client.post("/logout", data={"csrf_token": self.csrf()})


@pytest.fixture
def auth(app: Flask, client: FlaskClient) -> AuthActions:
    return AuthActions(app, client)


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    """A client that calls the API with a viewer's bearer token (what scripts do)."""
    actions = AuthActions(app, app.test_client())
    actions.create("api-viewer", "viewer")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {actions.token('api-viewer')}"
    return client
