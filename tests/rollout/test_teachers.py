"""Issue 24, teachers in the registry: ``cloud-hub models add --teacher DIR`` registers a model that no
campaign may offer, on SQLite and PostgreSQL, and that stays so across a restart of the hub's processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from flask import Flask
from sqlalchemy.orm import Session

from cloud_hub import create_app
from cloud_hub.rollout import campaigns, registry
from cloud_hub.rollout.controller import Controller
from cloud_hub.rollout.models import TEACHER
from tests.rollout.support import REPO, reference, repackage, wait_for


def teacher_package(tmp_path: Path) -> Path:
    """A real int8 model packaged under a teacher's name (what the toolchain's import/quantize writes)."""
    return repackage(reference(), tmp_path / "teacher", "1.0.0", {"name": "site-teacher"})


def test_teacher_is_registered_and_never_offered(tmp_path: Path, database_url: str) -> None:
    app: Flask = create_app({"instance_path": str(tmp_path / "instance"), "database_url": database_url})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["keys", "init"]).exit_code == 0
    added = runner.invoke(args=["models", "add", "--teacher", str(teacher_package(tmp_path))])
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("registered site-teacher@1.0.0:") and "kind teacher" in added.output

    again = runner.invoke(args=["models", "add", "--teacher", str(teacher_package(tmp_path))])
    assert again.exit_code == 0 and again.stdout.startswith("already registered"), again.output
    as_student = runner.invoke(args=["models", "add", str(tmp_path / "teacher" / "model.onnx"),
                                     "--manifest", str(tmp_path / "teacher" / "manifest.json")])
    assert as_student.exit_code != 0 and "already registered as a teacher" in as_student.output

    listed = runner.invoke(args=["models", "list"]).output
    assert "site-teacher@1.0.0" in listed and TEACHER in listed

    refused = runner.invoke(args=["rollout", "create", "--model", "site-teacher@1.0.0", "--target", "all"])
    assert refused.exit_code != 0
    assert "site-teacher@1.0.0 is a teacher model" in refused.output
    assert "never offered to a device" in refused.output

    both = runner.invoke(args=["models", "add", "--teacher", str(tmp_path / "teacher"),
                               "--manifest", str(tmp_path / "teacher" / "manifest.json")])
    assert both.exit_code != 0 and "--teacher DIR takes the whole package folder" in both.output
    empty = tmp_path / "empty"
    empty.mkdir()
    no_manifest = runner.invoke(args=["models", "add", "--teacher", str(empty)])
    assert no_manifest.exit_code != 0 and "no manifest.json" in no_manifest.output

    with Session(app.extensions["edgesight.engine"]) as db:
        from cloud_hub import auth

        ops = auth.create_user(db, "ops", "a password long enough", "admin")
        token = auth.create_token(db, ops, "t").secret
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    page = client.get("/rollouts").get_data(as_text=True)
    assert '<td class="model-kind">teacher' in page and "never offered" in page
    assert "<option>site-teacher@1.0.0</option>" not in page  # the campaign form offers students only

    with Session(app.extensions["edgesight.engine"]) as db:
        teacher = registry.find(db, "site-teacher@1.0.0")
        assert teacher.kind == TEACHER
        key = registry_key(app)
        try:
            campaigns.create(db, key, teacher, "cam-1", devices=["cam-1"])
        except campaigns.CampaignError as exc:
            assert "never offered" in str(exc)
        else:
            raise AssertionError("a campaign for a teacher was created")
        assert Controller(lambda *_: None, key).grants(db) == {}


def registry_key(app: Flask):
    from cloud_hub.rollout.keys import key_dir, load_signing_key

    return load_signing_key(key_dir(Path(app.instance_path)))


def test_teacher_survives_a_hub_restart_and_is_never_offered(mosquitto, tmp_path: Path) -> None:
    """The hub's processes stop and start again: the teacher is still registered, still refused, and
    the rollout service (its own process, started twice) never puts an offer on the broker."""
    env = dict(os.environ, EDGESIGHT_INSTANCE_PATH=str(tmp_path / "instance"),
               EDGESIGHT_MQTT_URL=mosquitto.url,
               EDGESIGHT_DATABASE_URL=f"sqlite:///{tmp_path / 'instance' / 'hub.db'}",
               EDGESIGHT_LOG_FORMAT="text")

    def hub(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "cloud_hub", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert (done.returncode == 0) == ok, done.stdout + done.stderr
        return done

    offers: list[str] = []
    subscribed = threading.Event()
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="offer-watcher")
    watcher.on_connect = lambda c, *_: c.subscribe("edgesight/v1/devices/+/model/offer", 1)
    watcher.on_subscribe = lambda *_: subscribed.set()
    watcher.on_message = lambda _c, _u, msg: offers.append(msg.topic) if msg.payload else None
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.loop_start()
    try:
        assert subscribed.wait(10)
        hub("keys", "init")
        assert "kind teacher" in hub("models", "add", "--teacher", str(teacher_package(tmp_path))).stdout
        for run in range(2):  # the rollout service: start, stop, start again (a hub restart)
            log = tmp_path / f"serve-{run}.log"
            with open(log, "w") as sink:
                serve = subprocess.Popen([sys.executable, "-m", "cloud_hub", "rollout", "serve"], cwd=REPO,
                                         env=env, stdout=sink, stderr=subprocess.STDOUT)
            try:
                wait_for(lambda log=log: "rollout service running" in log.read_text(), timeout=30,
                         what="rollout service up")
                assert "site-teacher@1.0.0" in hub("models", "list").stdout
                refused = hub("rollout", "create", "--model", "site-teacher@1.0.0", "--target", "all",
                              ok=False)
                assert "is a teacher model" in refused.stderr
            finally:
                serve.send_signal(signal.SIGTERM)
                assert serve.wait(20) == 0
        listed = hub("models", "list").stdout
        assert "site-teacher@1.0.0" in listed and "teacher" in listed
        assert offers == []
    finally:
        watcher.loop_stop()
        watcher.disconnect()


def test_a_teacher_as_imported_registers_without_a_golden_file(tmp_path: Path) -> None:
    """The documented path: `python -m firmware_models import` on a teacher, then `models add --teacher`.
    A teacher never reaches a device, so the device self-test (golden file) a student needs is not asked
    of it; the same folder as a student is still refused for lacking one."""
    from firmware_models.teachers import import_teacher

    out = tmp_path / "yolox-nano"
    import_teacher("yolox-nano", out)
    assert not (out / "golden.npz").exists()
    app = create_app({"instance_path": str(tmp_path / "instance"),
                      "database_url": f"sqlite:///{tmp_path / 'hub.db'}"})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert runner.invoke(args=["keys", "init"]).exit_code == 0
    as_student = runner.invoke(args=["models", "add", str(out / "model.onnx"),
                                     "--manifest", str(out / "manifest.json")])
    assert as_student.exit_code != 0 and "no golden spec" in as_student.output
    added = runner.invoke(args=["models", "add", "--teacher", str(out)])
    assert added.exit_code == 0, added.output
    assert "yolox-nano@" in added.stdout and "kind teacher" in added.stdout
