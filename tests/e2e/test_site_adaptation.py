"""Issue 24 done-when, end to end: a real Mosquitto, a real hub on SQLite (web app, ingest, rollout service,
adapt-worker), a real agent playing a real clip (../shared/data/video) with fomo-street, a real teacher
(YOLOX-nano) in the registry.

An admin asks the hub to adapt the camera's model to its view; the job captures frames from the agent,
labels them with the teacher, fine-tunes and quantizes the student (the real adapt(), small settings),
judges it on the later frames, registers it (signed), shadow-tests it on that one device, promotes it —
and the agent then runs the adapted model and its events come from it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub import auth, create_app
from cloud_hub.adapt.gate import ADAPT_GATE
from cloud_hub.adapt.models import AdaptJob
from cloud_hub.adapt.worker import AdaptWorker, WorkerOptions
from cloud_hub.db import upgrade
from cloud_hub.ingest.worker import IngestWorker
from cloud_hub.models import Device, Event
from cloud_hub.rollout.keys import key_dir
from cloud_hub.rollout.models import Campaign, ModelVersion
from cloud_hub.rollout.registry import blob_dir
from cloud_hub.rollout.service import RolloutService
from cloud_hub.web.database import ENGINE_KEY
from edge_agent.agent import Agent
from edge_agent.config import parse_config
from tests.e2e.conftest import ARTIFACTS, wait_until
from tests.support.adapt import FOMO, keys, real_teacher, register, site_agent_config


class AdaptHub:
    """Every hub process of the loop, in this test process: web app, ingest, rollout, adapt-worker."""

    def __init__(self, tmp_path: Path, mqtt_url: str, worker_options: WorkerOptions):
        url = f"sqlite:///{tmp_path / 'hub.db'}"
        upgrade(url)
        self.app = create_app(
            {
                "instance_path": str(tmp_path / "instance"),
                "database_url": url,
                "secret_key": "test-secret-key",
                "snapshot_dir": str(tmp_path / "snapshots"),
                "log_format": "text",
                "mqtt_url": mqtt_url,
            }
        )
        self.app.config["TESTING"] = True
        self.engine = self.app.extensions[ENGINE_KEY]
        keys(self.app)
        from cloud_hub.rollout.keys import load_signing_key

        self.ingest = IngestWorker(
            self.engine,
            mqtt_url,
            "edgesight/v1",
            client_id="adapt-e2e-ingest",
            snapshot_dir=str(tmp_path / "snapshots"),
        ).start()
        self.rollout = RolloutService(
            self.engine,
            mqtt_url,
            "edgesight/v1",
            blob_dir(self.app.instance_path),
            load_signing_key(key_dir(self.app.instance_path)),
            tick_s=0.2,
        ).start()
        self.worker = AdaptWorker(
            self.engine, self.app.instance_path, str(tmp_path / "snapshots"), worker_options
        )
        self.thread = threading.Thread(target=self.worker.run, name="adapt-worker", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.worker.stop_event.set()
        self.thread.join(60)
        self.rollout.stop()
        self.ingest.stop()
        self.engine.dispose()

    def db(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def admin(self):
        with self.db() as db:
            user = auth.create_user(db, "alice", "a password long enough", "admin")
            secret = auth.create_token(db, user, "adapt e2e").secret
        client = self.app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
        return client

    def job(self, job_id: str) -> AdaptJob:
        with self.db() as db:
            row = db.get(AdaptJob, job_id)
            assert row is not None
            return row


@pytest.fixture
def adapt_hub(tmp_path: Path, mosquitto) -> Iterator[AdaptHub]:
    gate = {**ADAPT_GATE, "min_frames": 10}  # 10 sampled frames: a few seconds at 10 fps, 1 in 2 sampled
    # adapt()'s own settings with 150 steps: on 24 frames of this clip ~20 s here, person F1 vs the
    # teacher on the 16 later frames 0.30 -> 0.91 (measured; smoke settings prove the stages, not a gain)
    hub = AdaptHub(tmp_path, mosquitto.url, WorkerOptions(poll_s=0.2, gate=gate, steps=150))
    yield hub
    hub.stop()


def test_capture_adapt_shadow_promote_and_the_agent_runs_the_adapted_model(
    adapt_hub: AdaptHub, mosquitto, tmp_path: Path
):
    hub = adapt_hub
    base = register(hub.app, FOMO)
    teacher = real_teacher(hub.app, tmp_path)
    public_key = key_dir(hub.app.instance_path) / "hub-ed25519.pub.pem"
    config = site_agent_config(tmp_path, mosquitto.url, public_key)
    agent = Agent(parse_config(yaml.safe_dump(config), source="site-cam.yaml")).start()
    try:

        def runs(ref: str) -> bool:
            with hub.db() as db:
                row = db.get(Device, "site-cam")
                return row is not None and row.model == ref and row.state == "online"

        wait_until(lambda: runs(base.ref), 30, "the agent online, running the base model")
        admin = hub.admin()
        answer = admin.post(
            "/api/v1/devices/site-cam/adaptations",
            json={"frames": 40, "interval_s": 0.15, "teacher": teacher.ref},
        )
        assert answer.status_code == 202, answer.get_json()
        job_id = answer.get_json()["id"]
        assert answer.get_json()["state"] == "capturing"

        seen: set[str] = set()

        def finished() -> bool:
            job = hub.job(job_id)
            seen.add(job.state)
            return job.state in ("done", "failed", "rejected", "cancelled")

        wait_until(finished, 170, "the adaptation job to end")
        job = hub.job(job_id)
        shown = admin.get(f"/api/v1/adaptations/{job_id}").get_json()
        assert job.state == "done", (job.state, job.reason, [line["line"] for line in shown["log"]])
        assert {"capturing", "shadow"} <= seen  # watched passing through (the fast stages may be missed)
        assert job.frames_train == 24 and job.frames_judge == 16  # 60/40 by time
        adapted = job.result_ref
        assert adapted is not None and adapted.startswith("fomo-street@2.1.2-site.")
        with hub.db() as db:
            model = db.scalar(
                select(ModelVersion).where(
                    ModelVersion.name == "fomo-street", ModelVersion.version == adapted.split("@")[1]
                )
            )
            campaign = db.get(Campaign, job.campaign_id)
        assert model is not None and model.kind == "student" and model.signature
        assert campaign.target == f"adapt:{job_id}" and campaign.shadow and campaign.state == "completed"
        assert campaign.shadow_thresholds["min_agreement"] == 0.0  # agreement is reported, not gated

        wait_until(lambda: runs(adapted), 20, "the device status naming the adapted model")
        assert agent.cameras[0].pipeline.model.ref == adapted
        promoted_at = time.time()

        def models_of_events_since() -> list[str]:
            with hub.db() as db:
                return list(
                    db.scalars(
                        select(Event.model).where(Event.device_id == "site-cam", Event.ts > promoted_at)
                    )
                )

        wait_until(lambda: len(models_of_events_since()) >= 1, 60, "events made after the promotion")
        assert set(models_of_events_since()) == {adapted}  # every event since comes from the adapted model
        assert shown["before_f1"] and shown["after_f1"]
        page = admin.get(f"/adaptations/{job_id}").get_data(as_text=True)
        assert "done" in page and adapted in page and 'data-refresh="0"' in page
        plots = re.findall(r'src="(/adaptations/[^"]+\.png)"', page)
        assert plots, "the card's plots on the job page"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for src in plots:  # kept for a person to look at: loss curve, before/after F1, judged frames
            answer = admin.get(src)
            assert answer.mimetype == "image/png" and answer.data.startswith(b"\x89PNG")
            (ARTIFACTS / f"adapt-{Path(src).name}").write_bytes(answer.data)
        assert admin.get(f"/adaptations/{job_id}/files/../../../hub.db").status_code == 404
    finally:
        agent.stop()
