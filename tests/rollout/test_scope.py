"""Issue 24: a site-adapted version is scoped to the device it was adapted for. The registry signs the
scope with the record, every path that offers a model (campaigns under every target form, rollbacks, the
controller, the chunk server's grants) refuses another device, and the CLI, the dashboard and the API
show it. Real SQLite and PostgreSQL, real registry (onnxruntime validates each model)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from flask import Flask
from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session

from cloud_hub import create_app
from cloud_hub import db as hub_db
from cloud_hub.identity.models import DeviceCredential
from cloud_hub.models import Device
from cloud_hub.rollout import campaigns, registry
from cloud_hub.rollout.controller import Controller
from cloud_hub.rollout.keys import init_keys, key_dir, load_signing_key
from cloud_hub.rollout.models import Campaign, CampaignDevice, ModelVersion
from cloud_hub.rollout.schemas import ModelList, ModelOut
from cloud_hub.rollout.views import model_summary
from shared.manifest import load_manifest
from shared.payloads import ModelOffer
from shared.signing import SignatureError, sign, verify
from tests.rollout.support import reference, repackage

ADAPTED = "fomo-street@2.1.2-site.7"
REFUSED = f"{ADAPTED} is scoped to cam-1 (adapted to its view); it cannot be offered to cam-2"


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Flask:
    app = create_app({"instance_path": str(tmp_path / "instance"), "database_url": database_url})
    hub_db.upgrade(database_url)
    init_keys(key_dir(app.instance_path))
    now = time.time()
    with Session(app.extensions["edgesight.engine"]) as db:  # enrolled: group street, tag night
        for device_id in ("cam-1", "cam-2"):
            db.add(Device(id=device_id, first_seen=now, last_seen=now, state="online"))
            db.flush()
            db.add(
                DeviceCredential(
                    device_id=device_id, secret_hash="x", group="street", tags=["night"], created_at=now
                )
            )
        db.commit()
    return app


def session(app: Flask) -> Session:
    return Session(app.extensions["edgesight.engine"], expire_on_commit=False)


def key(app: Flask):
    return load_signing_key(key_dir(app.instance_path))


def add(app: Flask, folder: Path, device_scope: str | None = None) -> ModelVersion:
    with session(app) as db:
        row, created = registry.register_package(
            db, folder, registry.blob_dir(app.instance_path), key(app), device_scope=device_scope
        )
        assert created
        return row


def adapted(tmp_path: Path) -> Path:
    return repackage(reference(), tmp_path / "adapted", "2.1.2-site.7")


def test_scoped_version_reaches_its_device_only_from_the_cli_dashboard_and_api(app, tmp_path) -> None:
    runner = app.test_cli_runner()
    folder = adapted(tmp_path)
    args = ["models", "add", str(folder / "model.onnx"), "--manifest", str(folder / "manifest.json")]
    added = runner.invoke(args=[*args, "--device-scope", "cam-1"])
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith(f"registered {ADAPTED}:") and "scoped to cam-1" in added.stdout
    for scope, said in ((["--device-scope", "cam-2"], "scoped to cam-2"), ([], "for every device")):
        again = runner.invoke(args=[*args, *scope])
        assert again.exit_code != 0
        assert (
            f"{ADAPTED} is already registered scoped to cam-1; registering it {said} needs a new "
            "version" in again.output
        )
    assert runner.invoke(args=[*args, "--device-scope", "cam-1"]).stdout.startswith("already registered")
    bad = runner.invoke(args=[*args, "--device-scope", "../cam"])
    assert bad.exit_code != 0 and "device scope '../cam' is not a device id" in bad.output

    listed = [line for line in runner.invoke(args=["models", "list"]).stdout.splitlines() if ADAPTED in line]
    assert len(listed) == 1 and "cam-1 only" in listed[0]
    shown = json.loads(runner.invoke(args=["models", "show", ADAPTED]).stdout)
    assert shown["device_scope"] == "cam-1" and shown["signature_ok"] is True and shown["kind"] == "student"

    for target in ("all", "group:street", "tag:night", "cam-1,cam-2", "devices:cam-2", "cam-2"):
        refused = runner.invoke(args=["rollout", "create", "--model", ADAPTED, "--target", target])
        assert refused.exit_code != 0, target
        assert REFUSED in refused.output, (target, refused.output)
    with session(app) as db:
        assert list(db.scalars(select(Campaign.id))) == []

    created = runner.invoke(args=["rollout", "create", "--model", ADAPTED, "--target", "cam-1"])
    assert created.exit_code == 0, created.output
    with session(app) as db:
        campaign = db.scalars(select(Campaign)).one()
        assert [r.device_id for r in campaigns.devices_of(db, campaign.id)] == ["cam-1"]
    offer = ModelOffer.model_validate(campaign.offer)
    public = key(app).public_key()
    assert offer.device_scope == "cam-1"
    verify(public, offer.signed_bytes(), offer.signature)  # the scope is under the offer's signature
    for forged in ("cam-2", None):
        with pytest.raises(SignatureError):
            verify(public, offer.model_copy(update={"device_scope": forged}).signed_bytes(), offer.signature)

    with session(app) as db:
        from cloud_hub import auth

        token = auth.create_token(db, auth.create_user(db, "ops", "a password long enough", "admin"), "t")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token.secret}"
    form = client.post(
        "/rollouts", data={"model": ADAPTED, "target": "cam-2", "canary": "0"}, follow_redirects=True
    ).get_data(as_text=True)
    assert f"Campaign not created: {REFUSED}" in form
    page = client.get("/rollouts").get_data(as_text=True)
    assert '<td class="model-scope">cam-1 only' in page
    assert f'<option value="{ADAPTED}">{ADAPTED} (cam-1 only)</option>' in page
    items = ModelList.model_validate(client.get("/api/v1/models").get_json()).items
    assert [(m.ref, m.device_scope, m.signature_ok) for m in items] == [(ADAPTED, "cam-1", True)]
    one = ModelOut.model_validate(client.get(f"/api/v1/models/{ADAPTED}").get_json())
    assert one.device_scope == "cam-1" and one.kind == "student"
    missing = client.get("/api/v1/models/fomo-street@9.9.9")
    assert missing.status_code == 404 and "no registered model" in missing.get_json()["error"]
    with session(app) as db:
        assert db.scalar(select(Campaign.id).where(Campaign.target == "cam-2")) is None


def test_a_scope_changed_in_the_database_breaks_the_record_signature(app, tmp_path) -> None:
    fleet = add(app, repackage(reference(), tmp_path / "v220", "2.2.0"))
    scoped = add(app, adapted(tmp_path), device_scope="cam-1")
    public = key(app).public_key()
    # An unscoped record is signed over exactly the fields it was signed over before scopes existed.
    legacy = {
        "name": fleet.name,
        "version": fleet.version,
        "sha256": fleet.sha256,
        "size_bytes": fleet.size_bytes,
        "manifest": fleet.manifest,
    }
    verify(public, json.dumps(legacy, sort_keys=True, separators=(",", ":")).encode(), fleet.signature)
    for row in (fleet, scoped):
        registry.verify_record(row, public)

    def set_scope(row: ModelVersion, scope: str | None) -> ModelVersion:
        with session(app) as db:
            db.execute(update(ModelVersion).where(ModelVersion.id == row.id).values(device_scope=scope))
            db.commit()
            return db.get(ModelVersion, row.id)

    for row, scope in ((scoped, None), (scoped, "cam-2"), (fleet, "cam-1")):
        tampered = set_scope(row, scope)
        with pytest.raises(registry.RecordTampered, match="does not match its signature"):
            registry.verify_record(tampered, public)
        assert model_summary(tampered, public)["signature_ok"] is False
        with session(app) as db, pytest.raises(campaigns.CampaignError) as refused:
            campaigns.create(db, key(app), tampered, "cam-2")
        assert f"{row.ref}: the registry record does not match its signature" in str(refused.value)
        shown = json.loads(app.test_cli_runner().invoke(args=["models", "show", row.ref]).stdout)
        assert shown["signature_ok"] is False and shown["device_scope"] == scope
    restored = set_scope(scoped, "cam-1")
    registry.verify_record(restored, public)
    with session(app) as db:
        assert campaigns.create(db, key(app), restored, "cam-1").offer["device_scope"] == "cam-1"
        assert db.scalar(select(Campaign.target)) == "cam-1"


def test_a_key_rotation_carries_verified_records_over_but_not_a_tampered_one(app, tmp_path) -> None:
    fleet = add(app, repackage(reference(), tmp_path / "v220", "2.2.0"))
    scoped = add(app, adapted(tmp_path), device_scope="cam-1")
    with session(app) as db:  # widened in the database before the rotation
        db.execute(update(ModelVersion).where(ModelVersion.id == scoped.id).values(device_scope=None))
        db.commit()
    rotated = app.test_cli_runner().invoke(args=["keys", "init", "--force"])
    assert rotated.exit_code == 0, rotated.output
    assert "re-signed 1 registry record(s) with the new key" in rotated.stdout
    assert (
        f"did not verify with the old key and stay unsigned by the new one (never offered): {ADAPTED}"
        in rotated.stderr
    )
    public = key(app).public_key()
    with session(app) as db:
        registry.verify_record(db.get(ModelVersion, fleet.id), public)
        widened = db.get(ModelVersion, scoped.id)
        with pytest.raises(registry.RecordTampered):
            registry.verify_record(widened, public)
        with pytest.raises(campaigns.CampaignError, match="does not match its signature"):
            campaigns.create(db, key(app), widened, "cam-2")
        assert campaigns.create(db, key(app), db.get(ModelVersion, fleet.id), "all").offer["name"]


def test_rollback_and_the_controller_never_bring_a_scoped_version_to_another_device(app, tmp_path) -> None:
    add(app, repackage(reference(), tmp_path / "v211", "2.1.1"))
    scoped = add(app, adapted(tmp_path), device_scope="cam-1")
    newer = add(app, repackage(reference(), tmp_path / "v220", "2.2.0"))
    with session(app) as db:
        both = campaigns.create(db, key(app), newer, "cam-1,cam-2", canary=0)
        alone = campaigns.create(db, key(app), newer, "cam-1", canary=0)
        for row in db.scalars(select(CampaignDevice)):
            row.state = "ACTIVE"
        db.commit()
        with pytest.raises(campaigns.CampaignError) as refused:
            campaigns.rollback(db, key(app), both.id, "2.1.2-site.7")
        assert str(refused.value) == REFUSED
        assert campaigns.get(db, both.id).state == "running", "a refused rollback supersedes nothing"
        fleet_back = campaigns.rollback(db, key(app), both.id)  # the newest older version both may run
        assert db.get(ModelVersion, fleet_back.model_id).version == "2.1.1"
        own_back = campaigns.rollback(db, key(app), alone.id)  # cam-1 may have its own model back
        assert db.get(ModelVersion, own_back.model_id).version == "2.1.2-site.7"
        assert own_back.offer["device_scope"] == "cam-1" and own_back.offer["rollback"] is True

        # A row for another device slipped into the scoped campaign behind create()'s back: the chunk
        # server is not granted the bundle for it and the controller does not send it the offer.
        db.add(
            CampaignDevice(
                campaign_id=own_back.id,
                device_id="cam-2",
                wave=0,
                state=campaigns.QUEUED,
                updated_at=time.time(),
            )
        )
        db.commit()
        sent: list[tuple[str, str]] = []
        controller = Controller(
            lambda device, payload: sent.append((device, json.loads(payload)["campaign_id"])), key(app)
        )
        grant = controller.grants(db)[own_back.id]
        assert grant.devices == frozenset({"cam-1"}) and grant.sha256 == scoped.sha256
        controller.tick(db)
        assert [device for device, campaign_id in sent if campaign_id == own_back.id] == ["cam-1"]
        stray = db.scalar(
            select(CampaignDevice).where(
                CampaignDevice.campaign_id == own_back.id, CampaignDevice.device_id == "cam-2"
            )
        )
        assert stray.state == "FAILED" and stray.reason == "not offered: the model is scoped to cam-1"


def test_a_teacher_cannot_be_scoped(app, tmp_path) -> None:
    folder = repackage(reference(), tmp_path / "teacher", "1.0.0", {"name": "site-teacher"})
    with session(app) as db, pytest.raises(registry.ModelRejected, match="cannot be scoped"):
        registry.register_package(
            db, folder, registry.blob_dir(app.instance_path), key(app), "teacher", device_scope="cam-1"
        )


def test_migration_adds_a_nullable_scope_and_old_records_still_verify(tmp_path, database_url) -> None:
    """From the revision before scopes, with a model registered then, up to head and down again."""
    hub_db.upgrade(database_url, "0320_adapt_jobs")
    folder = repackage(reference(), tmp_path / "v220", "2.2.0")
    init_keys(tmp_path / "keys")
    signing = load_signing_key(tmp_path / "keys")
    manifest, _ = load_manifest(folder)
    data = registry.build_bundle(folder, manifest)
    record = {
        "name": "fomo-street",
        "version": "2.2.0",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "manifest": manifest.model_dump(mode="json", exclude_none=True),
    }
    legacy = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    table = sa.table(
        "model_versions",
        *[
            sa.column(c)
            for c in (
                "name",
                "version",
                "sha256",
                "size_bytes",
                "model_sha256",
                "signature",
                "created_at",
                "kind",
            )
        ],
        sa.column("manifest", sa.JSON),
    )
    engine = hub_db.make_engine(database_url)

    def columns() -> dict[str, dict]:
        return {c["name"]: c for c in inspect(engine).get_columns("model_versions")}

    try:
        with engine.begin() as conn:  # the row as the registry wrote it before this revision
            conn.execute(
                table.insert().values(
                    **record,
                    model_sha256=manifest.sha256,
                    kind="student",
                    signature=sign(signing, legacy),
                    created_at=time.time(),
                )
            )
        assert "device_scope" not in columns()
        hub_db.upgrade(database_url)
        assert columns()["device_scope"]["nullable"]
        with Session(engine) as db:
            row = db.scalars(select(ModelVersion)).one()
            assert row.device_scope is None
            registry.verify_record(row, signing.public_key())  # its signature still verifies
        command.downgrade(hub_db.alembic_config(database_url), "0320_adapt_jobs")
        assert "device_scope" not in columns()
        hub_db.upgrade(database_url)
        assert "device_scope" in columns()
        with Session(engine) as db:
            registry.verify_record(db.scalars(select(ModelVersion)).one(), signing.public_key())
    finally:
        engine.dispose()
