"""Issue 24 done-when "capture, job and registry states survive a hub restart", for an adaptation job.

The hub runs as an operator runs it: four processes started by the CLI (`cloud-hub serve`, `cloud-hub
ingest`, `cloud-hub rollout serve`, `cloud-hub adapt-worker`) on one database (SQLite, PostgreSQL), a
real Mosquitto, a real agent (in this process) playing a real clip. All four are killed with SIGKILL
together twice — while the job labels or trains, and while its shadow campaign runs on the device — and
started again.
The job goes on from where it was (training is redone only when it was cut; a registered model is not
registered again, its campaign is not created again) and ends ``done``: one adapted model in the
registry beside the teacher and the base, all three signed, one campaign, and the agent runs the
adapted model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud_hub import auth, create_app
from cloud_hub.adapt.models import RUNNING, SHADOW, AdaptJob, AdaptLogLine
from cloud_hub.db import upgrade
from cloud_hub.models import Device
from cloud_hub.rollout.keys import key_dir
from cloud_hub.rollout.models import Campaign, CampaignDevice, ModelVersion
from cloud_hub.rollout.registry import verify_record
from cloud_hub.web.database import ENGINE_KEY
from edge_agent.agent import Agent
from edge_agent.config import parse_config
from shared.signing import load_public_key
from tests.e2e.conftest import wait_until
from tests.support.adapt import FOMO, keys, real_teacher, register, site_agent_config
from tests.support.mosquitto import free_port

REPO = Path(__file__).resolve().parents[2]
SHADOW_FRAMES = 30  # sampled frames the shadow gate needs: ~6 s on the device, room to kill inside it
LEASE_S = 3  # a killed worker's job is claimed again this long after its last heartbeat


class HubProcesses:
    """The hub's four long-running processes, each its own `cloud-hub` process, killable and restartable."""

    def __init__(self, tmp_path: Path, mqtt_url: str, database_url: str):
        self.tmp_path = tmp_path
        self.port = free_port()
        self.env = dict(
            os.environ,
            PYTHONPATH=str(REPO),
            EDGESIGHT_INSTANCE_PATH=str(tmp_path / "instance"),
            EDGESIGHT_DATABASE_URL=database_url,
            EDGESIGHT_MQTT_URL=mqtt_url,
            EDGESIGHT_SNAPSHOT_DIR=str(tmp_path / "snapshots"),
            EDGESIGHT_SECRET_KEY="restart-test-secret-key",
            EDGESIGHT_LOG_FORMAT="text",
        )
        self.commands = {
            "web": ["serve", "--port", str(self.port)],
            "ingest": ["ingest", "--client-id", "hub-ingest"],
            "rollout": ["rollout", "serve"],
            "adapt-worker": [
                "adapt-worker",
                "--lease",
                str(LEASE_S),
                "--poll",
                "0.2",
                "--steps",
                "150",
                "--shadow-min-frames",
                str(SHADOW_FRAMES),
            ],
        }
        self.ready_lines = {
            "ingest": "ingest subscribed",
            "rollout": "rollout service running",
            "adapt-worker": "adapt-worker running",
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.generation = 0
        self.token = ""

    def log_path(self, name: str, generation: int | None = None) -> Path:
        return self.tmp_path / f"{name}-{self.generation if generation is None else generation}.log"

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cloud_hub", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self) -> None:
        self.generation += 1
        for name, args in self.commands.items():
            log = open(self.log_path(name), "w")  # noqa: SIM115 (the child holds it; closed on exit)
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "cloud_hub", *args],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
        for name, line in self.ready_lines.items():
            wait_until(lambda n=name, s=line: s in self.log_path(n).read_text(), 60, f"{name} ready")
        wait_until(self.web_up, 60, "the web app answering")

    def web_up(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL every process at once: no handler runs, no lease is released, no session is closed."""
        for proc in self.procs.values():
            proc.send_signal(signal.SIGKILL)
        for proc in self.procs.values():
            assert proc.wait(10) == -signal.SIGKILL
        self.procs = {}

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.procs = {}

    def api(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method="GET" if body is None else "POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture
def hub_processes(tmp_path: Path, mosquitto, database_url: str) -> Iterator[HubProcesses]:
    hub = HubProcesses(tmp_path, mosquitto.url, database_url)
    yield hub
    hub.stop()
    for path in sorted(tmp_path.glob("*-[0-9].log")):  # shown by pytest when the test failed
        print(f"--- {path.name}\n{path.read_text()[-4000:]}")


def test_an_adaptation_job_survives_sigkill_of_every_hub_process(
    hub_processes: HubProcesses, mosquitto, tmp_path: Path
):
    hub = hub_processes
    # The operator's setup: schema, signing keys, the base student and the teacher in the registry, an
    # admin with an API token (done here with the same code the CLI runs, to keep the test short).
    upgrade(hub.env["EDGESIGHT_DATABASE_URL"])
    app = create_app(
        {
            "instance_path": hub.env["EDGESIGHT_INSTANCE_PATH"],
            "database_url": hub.env["EDGESIGHT_DATABASE_URL"],
            "secret_key": "test-secret-key",
            "snapshot_dir": hub.env["EDGESIGHT_SNAPSHOT_DIR"],
            "mqtt_url": mosquitto.url,
        }
    )
    engine = app.extensions[ENGINE_KEY]
    keys(app)
    base = register(app, FOMO)
    teacher = real_teacher(app, tmp_path)
    with Session(engine) as db:
        user = auth.create_user(db, "alice", "a password long enough", "admin")
        hub.token = auth.create_token(db, user, "restart e2e").secret

    def db() -> Session:
        return Session(engine, expire_on_commit=False)

    def job() -> AdaptJob:
        with db() as s:
            row = s.get(AdaptJob, job_id)
            assert row is not None
            return row

    def runs(ref: str) -> bool:
        with db() as s:
            row = s.get(Device, "site-cam")
            return row is not None and row.model == ref and row.state == "online"

    hub.start()
    public_key = key_dir(app.instance_path) / "hub-ed25519.pub.pem"
    config = site_agent_config(tmp_path, mosquitto.url, public_key)
    agent = Agent(parse_config(yaml.safe_dump(config), source="site-cam.yaml")).start()
    try:
        wait_until(lambda: runs(base.ref), 30, "the agent online, running the base model")
        status, started = hub.api(
            "/api/v1/devices/site-cam/adaptations",
            {"frames": 40, "interval_s": 0.15, "teacher": teacher.ref},
        )
        assert status == 202, started
        job_id = started["id"]

        # Kill 1: while the worker labels or trains (adapt() is cut; its partial output is not trusted).
        wait_until(lambda: job().state in RUNNING, 60, "the job labelling or training")
        hub.kill()
        cut = job()
        assert cut.state in RUNNING and cut.attempts == 1 and cut.worker is not None  # as the kill left it
        hub.start()

        # Kill 2: while the shadow campaign runs on the device (the device has reported shadow frames).
        def shadowing() -> bool:
            with db() as s:
                row = s.scalar(select(CampaignDevice).where(CampaignDevice.device_id == "site-cam"))
                return (
                    job().state == SHADOW
                    and row is not None
                    and row.state == "SHADOW"
                    and 0 < (row.shadow or {}).get("frames", 0) < SHADOW_FRAMES
                )

        wait_until(shadowing, 90, "the device reporting its shadow test")
        hub.kill()
        midway = job()
        with db() as s:
            campaign = s.get(Campaign, midway.campaign_id)
        assert midway.state == SHADOW and midway.attempts == 2 and midway.result_ref
        assert campaign is not None and campaign.state == "running" and campaign.phase == "shadow"
        time.sleep(1.0)  # the device goes on with its shadow test while the hub is down
        hub.start()

        wait_until(lambda: job().state in ("done", "failed", "rejected", "cancelled"), 90, "the job to end")
        final = job()
        with db() as s:
            lines = list(
                s.scalars(
                    select(AdaptLogLine.line).where(AdaptLogLine.job_id == job_id).order_by(AdaptLogLine.id)
                )
            )
        assert final.state == "done", (final.state, final.reason, lines)
        adapted = final.result_ref
        assert adapted == midway.result_ref and adapted.startswith("fomo-street@2.1.2-site.")

        # Taken up again after each kill; after the second, not trained nor registered again.
        assert final.attempts == 3
        assert sum("taken up again" in line for line in lines) == 2
        after_second = lines[next(i for i, line in enumerate(lines) if "(attempt 3)" in line) :]
        assert not any("training finished before a restart" in line for line in after_second)
        assert sum(line.startswith(f"registered {adapted}") for line in lines) == 1
        assert not any("already registered" in line for line in lines)

        # One adapted model, one campaign for it, completed; the registry holds the three, all signed.
        with db() as s:
            models = list(s.scalars(select(ModelVersion).order_by(ModelVersion.id)))
            campaigns = list(s.scalars(select(Campaign)))
            members = s.scalar(select(func.count()).select_from(CampaignDevice))
        assert [(m.ref, m.kind, m.device_scope) for m in models] == [
            (base.ref, "student", None),
            (teacher.ref, "teacher", None),
            (adapted, "student", "site-cam"),  # an adapted model is for its own camera only
        ]
        assert len(campaigns) == 1 and campaigns[0].id == final.campaign_id and members == 1
        assert campaigns[0].target == f"adapt:{job_id}" and campaigns[0].state == "completed"
        key = load_public_key(public_key)  # the key the agent trusts
        for m in models:
            verify_record(m, key)  # raises when a record (content, scope) does not match its signature
        listed = hub.cli("models", "list")
        for ref in (base.ref, teacher.ref, adapted):
            assert ref in listed, listed
        assert json.loads(hub.cli("models", "show", adapted))["signature_ok"] is True
        status, shown = hub.api(f"/api/v1/adaptations/{job_id}")
        assert status == 200 and shown["state"] == "done" and shown["model"] == adapted, shown

        # The agent, never restarted, runs the adapted model; the restarted ingest knows it.
        wait_until(lambda: runs(adapted), 30, "the device status naming the adapted model")
        assert agent.cameras[0].pipeline.model.ref == adapted
    finally:
        agent.stop()
        engine.dispose()
