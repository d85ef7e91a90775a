"""End-to-end fixtures: the real agent, a real broker, the real ingest worker and hub, one database."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud_hub import auth
from cloud_hub.ingest.worker import IngestWorker
from cloud_hub.models import Event
from cloud_hub.web.database import ENGINE_KEY
from edge_agent.agent import Agent
from edge_agent.config import parse_config
from synthetic_world import SyntheticVideo, write_video
from tests.support.hub import hub_app
from tests.support.recording_agent import RecordingAgent

REPO = Path(__file__).resolve().parents[2]
FOMO = REPO / "firmware_models" / "reference" / "fomo-street"
ARTIFACTS = REPO / "test-artifacts" / "e2e"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    assert predicate(), f"timed out after {timeout}s waiting for {what}"


@pytest.fixture(scope="session")
def street_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rendered street video (people and cars crossing) written as a real mp4 file."""
    path = tmp_path_factory.mktemp("clips") / "street.mp4"
    video = SyntheticVideo(seed=4242, width=320, height=192, fps=10.0, duration_s=10.0, scene="street")
    write_video(video, path)
    return path


@pytest.fixture
def hub(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    with hub_app(database_url, tmp_path) as app:
        yield app


def stored_event_ids(app: Flask, device_id: str) -> list[str]:
    with Session(app.extensions[ENGINE_KEY]) as db:
        return list(db.scalars(select(Event.event_id).where(Event.device_id == device_id)))


def stored_count(app: Flask) -> int:
    with Session(app.extensions[ENGINE_KEY]) as db:
        return db.scalar(select(func.count()).select_from(Event)) or 0


def api_token(app: Flask, username: str = "e2e-viewer") -> str:
    with Session(app.extensions[ENGINE_KEY]) as db:
        user = auth.create_user(db, username, "e2e password long enough", "viewer")
        return auth.create_token(db, user, "e2e").secret


@pytest.fixture
def ingest(hub: Flask) -> Iterator[Callable[[str], IngestWorker]]:
    workers: list[IngestWorker] = []
    settings = hub.config["HUB_SETTINGS"]

    def start(mqtt_url: str) -> IngestWorker:
        worker = IngestWorker(
            hub.extensions[ENGINE_KEY], mqtt_url, settings.mqtt_prefix,
            client_id=f"e2e-ingest-{len(workers)}", snapshot_dir=settings.snapshot_dir,
        ).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    agents: list[Agent] = []

    def make(broker_url: str, source: dict, device_id: str = "cam-e2e-1", start: bool = True) -> Agent:
        config = {
            "device": {"id": device_id},
            "mqtt": {"url": broker_url, "reconnect_min_s": 1, "reconnect_max_s": 1},
            "outbox": {"path": str(tmp_path / f"{device_id}-outbox.db")},
            "telemetry": {"interval_s": 1},
            "cameras": [{
                "name": "street",
                "source": source,
                "detect_fps": 10,
                "model": {"path": str(FOMO)},
                "lines": [{"name": "crosswalk", "a": [0.5, 0.0], "b": [0.5, 1.0]}],
            }],
        }
        agent = RecordingAgent(parse_config(yaml.safe_dump(config), source=f"{device_id}.yaml"))
        agents.append(agent)
        return agent.start() if start else agent

    yield make
    for agent in agents:
        agent.stop()

