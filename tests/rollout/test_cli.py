"""``cloud-hub keys``, ``models`` and ``rollout`` commands through Flask's CLI runner (real SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask

from cloud_hub import create_app
from tests.rollout.support import broken_export, reference, repackage


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Flask:
    """The hub app on SQLite and (second parametrisation) PostgreSQL."""
    return create_app({"instance_path": str(tmp_path / "instance"), "database_url": database_url})


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


def test_keys_models_and_campaign_commands(runner, app: Flask, tmp_path: Path) -> None:
    result = runner.invoke(args=["keys", "init"])
    assert result.exit_code == 0, result.output
    public = Path(app.instance_path) / "keys" / "hub-ed25519.pub.pem"
    assert "BEGIN PUBLIC KEY" in result.output and public.exists()
    assert oct((Path(app.instance_path) / "keys" / "hub-ed25519.pem").stat().st_mode & 0o777) == "0o600"
    again = runner.invoke(args=["keys", "init"])
    assert again.exit_code != 0 and "--force" in again.output

    good = repackage(reference(), tmp_path / "v120", "2.2.0")
    added = runner.invoke(
        args=["models", "add", str(good / "model.onnx"), "--manifest", str(good / "manifest.json")]
    )
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("registered fomo-street@2.2.0: bundle sha256 ")
    same = runner.invoke(
        args=["models", "add", str(good / "model.onnx"), "--manifest", str(good / "manifest.json")]
    )
    assert same.stdout.startswith("already registered fomo-street@2.2.0")
    blobs = list((Path(app.instance_path) / "models" / "blobs").iterdir())
    assert len(blobs) == 1, "content-addressed: one blob for the same bytes"

    conflict = repackage(reference(), tmp_path / "conflict", "2.2.0", {"input": {"color": "BGR"}})
    clash = runner.invoke(
        args=["models", "add", str(conflict / "model.onnx"), "--manifest", str(conflict / "manifest.json")]
    )
    assert clash.exit_code != 0 and "already registered with different content" in clash.output

    bad = broken_export(reference(), tmp_path / "broken", "2.3.0")
    refused = runner.invoke(
        args=["models", "add", str(bad / "model.onnx"), "--manifest", str(bad / "manifest.json")]
    )
    assert refused.exit_code != 0 and "model rejected: golden output_0 differs" in refused.output

    classifier = reference("crop-classifier")
    other = runner.invoke(
        args=[
            "models",
            "add",
            str(classifier / "model.onnx"),
            "--manifest",
            str(classifier / "manifest.json"),
        ]
    )
    assert other.exit_code == 0 and other.stdout.startswith("registered crop-classifier@"), other.output

    listed = runner.invoke(args=["models", "list"])
    assert "fomo-street@2.2.0" in listed.output and "crop-classifier@" in listed.output

    created = runner.invoke(
        args=[
            "rollout",
            "create",
            "--model",
            "fomo-street@2.2.0",
            "--target",
            "a,b,c,d,e,f,g,h,i,j",
            "--canary",
            "1",
            "--waves",
            "10%,50%,100%",
            "--max-failure",
            "10%",
        ]
    )
    assert created.exit_code == 0, created.output
    campaign_id = created.stdout.split()[1].rstrip(":")
    assert "wave 0: 1 device(s)" in created.output and "wave 2: 5 device(s)" in created.output
    shown = json.loads(runner.invoke(args=["rollout", "show", campaign_id]).stdout)
    assert shown["state"] == "running" and shown["counts"] == {"QUEUED": 10}
    assert [w["total"] for w in shown["waves"]] == [1, 4, 5]
    assert runner.invoke(args=["rollout", "pause", campaign_id]).stdout.startswith(f"{campaign_id}: paused")
    assert runner.invoke(args=["rollout", "resume", campaign_id]).stdout.startswith(f"{campaign_id}: running")
    assert runner.invoke(args=["rollout", "abort", campaign_id]).stdout.startswith(f"{campaign_id}: aborting")
    rollback = runner.invoke(args=["rollout", "rollback", campaign_id])
    assert rollback.exit_code != 0 and "no earlier version" in rollback.output
    missing = runner.invoke(args=["rollout", "create", "--model", "nope@2.1.0", "--target", "a"])
    assert missing.exit_code != 0 and "no registered model" in missing.output


def test_commands_need_keys(runner, tmp_path: Path) -> None:
    good = repackage(reference(), tmp_path / "v120", "2.2.0")
    result = runner.invoke(
        args=["models", "add", str(good / "model.onnx"), "--manifest", str(good / "manifest.json")]
    )
    assert result.exit_code != 0 and "cloud-hub keys init" in result.output


def test_cli_only_rollout_reaches_a_device(mosquitto, tmp_path: Path, frames) -> None:
    """keys init → models add → rollout create → `cloud-hub rollout serve` (its own process) → ACTIVE."""
    import os
    import signal
    import subprocess
    import sys

    from benchmarks.fleet_sim import SimulatedDevice
    from edge_agent.updater.config import HealthConfig
    from tests.rollout.support import REPO, wait_for

    env = dict(
        os.environ,
        EDGESIGHT_INSTANCE_PATH=str(tmp_path / "instance"),
        EDGESIGHT_MQTT_URL=mosquitto.url,
        EDGESIGHT_DATABASE_URL=f"sqlite:///{tmp_path / 'instance' / 'hub.db'}",
        EDGESIGHT_LOG_FORMAT="text",
    )

    def hub(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cloud_hub", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    hub("keys", "init")
    good = repackage(reference(), tmp_path / "v120", "2.2.0")
    hub("models", "add", str(good / "model.onnx"), "--manifest", str(good / "manifest.json"))
    device = SimulatedDevice(
        "cli-cam",
        mosquitto.host,
        mosquitto.port,
        tmp_path / "store",
        tmp_path / "instance" / "keys" / "hub-ed25519.pub.pem",
        reference(),
        frames,
        fps=20,
        health=HealthConfig(min_inferences=5, max_latency_ratio=None),
    ).start()
    serve = subprocess.Popen(
        [sys.executable, "-m", "cloud_hub", "rollout", "serve"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        campaign_id = (
            hub(
                "rollout",
                "create",
                "--model",
                "fomo-street@2.2.0",
                "--target",
                "cli-cam",
                "--canary",
                "0",
                "--waves",
                "100%",
            )
            .split()[1]
            .rstrip(":")
        )
        wait_for(
            lambda: json.loads(hub("rollout", "show", campaign_id))["state"] == "completed",
            timeout=90,
            what="campaign completed through the CLI",
        )
        assert device.camera.active_ref == "fomo-street@2.2.0"
        assert f"{campaign_id}  fomo-street@2.2.0" in hub("rollout", "list")
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(20)
        device.stop()


def test_targets_by_group_and_tag(app: Flask) -> None:
    import time

    from sqlalchemy.orm import Session

    from cloud_hub import db as hub_db
    from cloud_hub.identity.models import DeviceCredential
    from cloud_hub.models import Device
    from cloud_hub.rollout.campaigns import Target, resolve_target

    settings = app.config["HUB_SETTINGS"]
    hub_db.upgrade(settings.database_url)
    now = time.time()
    with Session(app.extensions["edgesight.engine"]) as db:
        for device_id, group, tags, revoked in [
            ("a", "lobby", ["night"], None),
            ("b", "lobby", [], None),
            ("c", "gate", ["night"], None),
            ("d", "lobby", ["night"], now),
        ]:
            db.add(Device(id=device_id, first_seen=now, last_seen=now, state="online"))
            db.flush()
            db.add(
                DeviceCredential(
                    device_id=device_id,
                    secret_hash="x",
                    group=group,
                    tags=tags,
                    created_at=now,
                    revoked_at=revoked,
                )
            )
        db.commit()
        assert resolve_target(db, Target.parse("group:lobby")) == ["a", "b"], "revoked devices get nothing"
        assert resolve_target(db, Target.parse("tag:night")) == ["a", "c"]
        assert resolve_target(db, Target.parse("all")) == ["a", "b", "c"]


def test_controller_offers_canary_first_and_times_out_silent_devices(app: Flask, tmp_path: Path) -> None:
    import time

    from sqlalchemy.orm import Session

    from cloud_hub import db as hub_db
    from cloud_hub.rollout import campaigns
    from cloud_hub.rollout.controller import Controller
    from cloud_hub.rollout.keys import init_keys, load_signing_key
    from cloud_hub.rollout.registry import register
    from shared.payloads import ModelOffer

    hub_db.upgrade(app.config["HUB_SETTINGS"].database_url)
    init_keys(tmp_path / "keys")
    key = load_signing_key(tmp_path / "keys")
    good = repackage(reference(), tmp_path / "v120", "2.2.0")
    sent: list[tuple[str, bytes]] = []
    controller = Controller(lambda device, payload: sent.append((device, payload)), key, device_timeout_s=60)
    with Session(app.extensions["edgesight.engine"], expire_on_commit=False) as db:
        model, _ = register(db, good / "model.onnx", good / "manifest.json", tmp_path / "blobs", key)
        campaign = campaigns.create(db, key, model, "a,b,c", canary=1, waves=[1.0], max_failure=0.1)
        controller.tick(db)
        assert [device for device, _ in sent] == ["a"], "only the canary is offered first"
        offer = ModelOffer.model_validate_json(sent[0][1])
        assert offer.campaign_id == campaign.id and offer.signature and not offer.rollback
        controller.tick(db)
        assert len(sent) == 1, "an offer is sent once"
        row = next(r for r in campaigns.devices_of(db, campaign.id) if r.device_id == "a")
        row.updated_at = time.time() - 120  # the canary went silent two minutes ago
        db.commit()
        controller.tick(db)
        row = next(r for r in campaigns.devices_of(db, campaign.id) if r.device_id == "a")
        assert row.state == "TIMED_OUT" and row.reason == "no report for 60 s (last state SENT)"
        assert campaigns.get(db, campaign.id).state == "paused"
        assert len(sent) == 1, "no wave after a silent canary"
        campaigns.resume(db, campaign.id)  # the operator accepts the silent canary: that failure is acked
        controller.tick(db)
        assert campaigns.get(db, campaign.id).state == "running"
        assert sorted(device for device, _ in sent[1:]) == ["b", "c"], "the next wave is offered"
