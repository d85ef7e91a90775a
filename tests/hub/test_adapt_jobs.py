"""Site adaptation jobs on the hub (issue 24 items 3-4): starting (admins only, each logged), the state
machine, the API's access rules, claiming with a lease on SQLite and PostgreSQL, and honest outcomes with
the real adapt() — a missing teacher, too few frames, a model that is not better: nothing registered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud_hub.adapt import service
from cloud_hub.adapt.models import AdaptJob, AdaptLogLine
from cloud_hub.adapt.worker import AdaptWorker, WorkerOptions
from cloud_hub.capture.models import Capture
from cloud_hub.rollout.models import TEACHER, Campaign, ModelVersion
from cloud_hub.rollout.registry import blob_dir
from cloud_hub.web.database import ENGINE_KEY
from tests.rollout.support import reference, repackage
from tests.support.adapt import FOMO, REPO, clip_frames, device, finished_capture, real_teacher, register


def registry_setup(app, tmp_path: Path) -> None:
    """The device's student and a (small, quick) teacher in the registry."""
    register(app, FOMO)
    teacher = repackage(reference(), tmp_path / "site-teacher", "1.0.0", {"name": "site-teacher"})
    register(app, teacher, TEACHER)


def jobs(app) -> list[AdaptJob]:
    with Session(app.extensions[ENGINE_KEY]) as db:
        return list(db.scalars(select(AdaptJob)))


def test_cli_start_refusals_list_show_and_cancel(app, runner, auth, tmp_path: Path):
    auth.create("alice", "admin")
    auth.create("victor", "viewer")
    device(app)
    finished_capture(app, "cap-adaptcli01", clip_frames(4))

    none = runner.invoke(args=["adapt", "start", "cam-1", "--capture", "cap-adaptcli01", "--by", "alice"])
    assert none.exit_code != 0 and "no teacher model is registered" in none.output
    registry_setup(app, tmp_path)
    viewer = runner.invoke(args=["adapt", "start", "cam-1", "--capture", "cap-adaptcli01", "--by", "victor"])
    assert viewer.exit_code != 0 and "'victor' is not an admin user" in viewer.output
    unknown = runner.invoke(args=["adapt", "start", "cam-9", "--by", "alice"])
    assert unknown.exit_code != 0 and "unknown device 'cam-9'" in unknown.output
    device(app, "cam-2", model="someone-else@1.0.0")
    unregistered = runner.invoke(args=["adapt", "start", "cam-2", "--by", "alice"])
    assert unregistered.exit_code != 0
    assert "runs someone-else@1.0.0, which is not a student" in unregistered.output
    student_as_teacher = runner.invoke(
        args=[
            "adapt",
            "start",
            "cam-1",
            "--capture",
            "cap-adaptcli01",
            "--teacher",
            "fomo-street@2.1.1",
            "--by",
            "alice",
        ]
    )
    assert student_as_teacher.exit_code != 0 and "not a teacher" in student_as_teacher.output
    assert jobs(app) == []  # nothing refused left a job behind

    started = runner.invoke(args=["adapt", "start", "cam-1", "--capture", "cap-adaptcli01", "--by", "alice"])
    assert started.exit_code == 0, started.output
    job_id = started.stdout.split(":")[0]
    assert "adapting fomo-street@2.1.1 on cam-1 with teacher site-teacher@1.0.0" in started.stdout
    busy = runner.invoke(args=["adapt", "start", "cam-1", "--capture", "cap-adaptcli01"])
    assert busy.exit_code != 0 and f"already has adaptation {job_id} in progress" in busy.output

    listed = runner.invoke(args=["adapt", "list"]).stdout
    assert job_id in listed and "queued" in listed and "by alice" in listed
    shown = runner.invoke(args=["adapt", "show", job_id]).stdout
    assert "queued" in shown and "base fomo-street@2.1.1" in shown and "started by alice" in shown
    assert "[--------------------]   0% queued" in shown

    cancelled = runner.invoke(args=["adapt", "cancel", job_id, "--by", "alice"])
    assert cancelled.exit_code == 0 and "cancelled by alice" in cancelled.stdout
    again = runner.invoke(args=["adapt", "cancel", job_id])
    assert again.exit_code != 0 and "already cancelled" in again.output
    shown = runner.invoke(args=["adapt", "show", job_id, "--json"]).stdout
    assert '"state": "cancelled"' in shown and '"reason": "cancelled by alice"' in shown


def test_a_job_asks_for_its_own_capture_and_waits_for_an_offline_device(
    app, runner, auth, tmp_path, mosquitto
):
    app.config["HUB_SETTINGS"] = app.config["HUB_SETTINGS"].model_copy(update={"mqtt_url": mosquitto.url})
    auth.create("alice", "admin")
    device(app, state="offline")
    registry_setup(app, tmp_path)
    started = runner.invoke(
        args=[
            "adapt",
            "start",
            "cam-1",
            "--frames",
            "20",
            "--interval",
            "0.5",
            "--capture-timeout",
            "1",
            "--by",
            "alice",
        ]
    )
    assert started.exit_code == 0, started.output
    job_id = started.stdout.split(":")[0]
    with Session(app.extensions[ENGINE_KEY]) as db:
        job = db.get(AdaptJob, job_id)
        capture = db.get(Capture, job.capture_id)
        assert job.state == "capturing" and job.capture_started
        assert capture.requested_by == "alice" and capture.count == 20  # the capture is logged like any
        shown = service.as_dict(db, job)
    assert "waiting for device cam-1 (offline" in shown["message"] and "0/20 frames" in shown["message"]

    time.sleep(1.2)  # the capture times out: the worker ends the job with the capture's reason
    snapshots = app.config["HUB_SETTINGS"].snapshot_dir
    worker = AdaptWorker(app.extensions[ENGINE_KEY], app.instance_path, snapshots, WorkerOptions(poll_s=0.1))
    assert worker.claim() == job_id
    worker.process(job_id)
    shown = runner.invoke(args=["adapt", "show", job_id, "--json"]).stdout
    assert '"state": "failed"' in shown and "timed_out: device offline for more than 1 s" in shown
    with Session(app.extensions[ENGINE_KEY]) as db:
        assert db.scalar(select(func.count()).select_from(ModelVersion)) == 2  # nothing registered


def test_api_admins_start_and_cancel_everyone_signed_in_watches(app, auth, tmp_path: Path):
    device(app)
    registry_setup(app, tmp_path)
    finished_capture(app, "cap-adaptapi01", clip_frames(4))
    auth.create("alice", "admin")
    auth.create("victor", "viewer")
    admin, viewer = app.test_client(), app.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {auth.token('alice')}"
    viewer.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {auth.token('victor')}"

    refused = viewer.post("/api/v1/devices/cam-1/adaptations", json={"capture_id": "cap-adaptapi01"})
    assert refused.status_code == 403 and jobs(app) == []
    assert app.test_client().get("/api/v1/adaptations").status_code == 401
    assert admin.post("/api/v1/devices/cam-9/adaptations", json={}).status_code == 404
    bad = admin.post("/api/v1/devices/cam-1/adaptations", json={"capture_id": "cap-nope"})
    assert bad.status_code == 400 and "no capture 'cap-nope'" in bad.get_json()["error"]
    answer = admin.post("/api/v1/devices/cam-1/adaptations", json={"capture_id": "cap-adaptapi01"})
    assert answer.status_code == 202, answer.get_json()
    job = answer.get_json()
    assert job["state"] == "queued" and job["created_by"] == "alice" and job["base"] == "fomo-street@2.1.1"

    listed = viewer.get("/api/v1/adaptations?device=cam-1").get_json()["items"]
    assert [j["id"] for j in listed] == [job["id"]]
    one = viewer.get(f"/api/v1/adaptations/{job['id']}").get_json()
    assert one["log"][0]["line"].startswith("started by alice")
    assert viewer.get("/api/v1/adaptations/adp-nope").status_code == 404
    page = viewer.get(f"/adaptations/{job['id']}").get_data(as_text=True)
    assert job["id"] in page and "queued" in page and "adapt-cancel" not in page
    device_page = viewer.get("/devices/cam-1").get_data(as_text=True)
    assert job["id"] in device_page and "Adapt to this view" not in device_page

    assert viewer.post(f"/api/v1/adaptations/{job['id']}/cancel").status_code == 403
    done = admin.post(f"/api/v1/adaptations/{job['id']}/cancel")
    assert done.status_code == 200 and done.get_json()["state"] == "cancelled"
    assert admin.post(f"/api/v1/adaptations/{job['id']}/cancel").status_code == 409


def test_one_worker_claims_a_job_and_a_dead_workers_lease_runs_out(app, tmp_path: Path):
    device(app)
    registry_setup(app, tmp_path)
    finished_capture(app, "cap-adaptlease1", clip_frames(4))
    with Session(app.extensions[ENGINE_KEY], expire_on_commit=False) as db:
        job = service.start(
            db, app.config["HUB_SETTINGS"], "cam-1", created_by="alice", capture_id="cap-adaptlease1"
        )
    engine, snapshots = app.extensions[ENGINE_KEY], app.config["HUB_SETTINGS"].snapshot_dir
    workers = [
        AdaptWorker(engine, app.instance_path, snapshots, WorkerOptions(lease_s=2), worker_id=f"w{i}")
        for i in range(4)
    ]
    claimed: list[str | None] = [None] * len(workers)
    go = threading.Barrier(len(workers))

    def claim(i: int) -> None:
        go.wait()
        claimed[i] = workers[i].claim()

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert claimed.count(job.id) == 1, claimed  # one winner, on SQLite and PostgreSQL
    winner = claimed.index(job.id)
    others = [w for i, w in enumerate(workers) if i != winner]
    assert others[0].claim() is None  # the lease holds
    time.sleep(2.2)  # the winner "died": no heartbeat, the lease runs out
    assert others[0].claim() == job.id
    with Session(engine) as db:
        row = db.get(AdaptJob, job.id)
        assert row.attempts == 2 and row.worker == others[0].id


def test_the_log_is_bounded(app, tmp_path: Path):
    device(app)
    registry_setup(app, tmp_path)
    finished_capture(app, "cap-adaptlog001", clip_frames(2))
    with Session(app.extensions[ENGINE_KEY], expire_on_commit=False) as db:
        job = service.start(
            db, app.config["HUB_SETTINGS"], "cam-1", created_by="alice", capture_id="cap-adaptlog001"
        )
        for n in range(260):
            service.add_log(db, job.id, f"line {n}")
        db.commit()
        lines = list(
            db.scalars(
                select(AdaptLogLine.line).where(AdaptLogLine.job_id == job.id).order_by(AdaptLogLine.id)
            )
        )
    assert len(lines) == 200 and lines[-1] == "line 259" and lines[0] == "line 60"


def test_adapted_version_is_above_the_base_and_names_the_job():
    from shared.rollout import semver_key

    version = service.adapted_version("2.1.1", "adp-0123456789ab")
    assert version == "2.1.2-site.adp-0123456789ab"
    assert semver_key(version) > semver_key("2.1.1")
    again = service.adapted_version(version, "adp-ffffffffffff")
    assert semver_key(again) > semver_key(version)


def test_the_adapt_gate_ignores_agreement_but_not_latency_or_errors():
    """An adapted model is meant to disagree with the old one; it must still keep up and never fail."""
    from cloud_hub.adapt.gate import ADAPT_GATE
    from cloud_hub.rollout.controller import shadow_verdict
    from cloud_hub.rollout.models import CampaignDevice

    def row(**stats) -> CampaignDevice:
        base = {
            "frames": 60.0,
            "agreement": 0.95,
            "active_ms_p50": 2.0,
            "candidate_ms_p50": 2.2,
            "candidate_errors": 0.0,
        }
        return CampaignDevice(device_id="cam", shadow={**base, **stats})

    assert shadow_verdict(row(agreement=0.1), ADAPT_GATE) is None
    assert (
        shadow_verdict(row(candidate_ms_p50=3.2), ADAPT_GATE)
        == "cam: candidate latency 3.20 ms > 1.5x active 2.00 ms"
    )
    assert (
        shadow_verdict(row(candidate_errors=1.0), ADAPT_GATE)
        == "cam: the candidate failed on 1 frames (at most 0)"
    )
    fleet = {
        "min_agreement": 0.9,
        "max_latency_ratio": 1.5,
        "min_frames": 20,
    }  # no error threshold: as before
    assert shadow_verdict(row(candidate_errors=3.0), fleet) is None


# ------------------------------------------------------------------------- the real adapt(), real processes
def worker_process(tmp_path: Path, env: dict, n: int, *args: str) -> subprocess.Popen:
    log = open(tmp_path / f"adapt-worker-{n}.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [sys.executable, "-m", "cloud_hub", "adapt-worker", "--poll", "0.2", *args],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def hub_env(app, tmp_path: Path, database_url: str) -> dict:
    return dict(
        os.environ,
        EDGESIGHT_INSTANCE_PATH=app.instance_path,
        EDGESIGHT_DATABASE_URL=database_url,
        EDGESIGHT_SNAPSHOT_DIR=app.config["HUB_SETTINGS"].snapshot_dir,
        EDGESIGHT_LOG_FORMAT="text",
        PYTHONPATH=str(REPO),
        OMP_NUM_THREADS="1",
    )


def wait_job(app, job_id: str, predicate, timeout: float, what: str) -> AdaptJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(app.extensions[ENGINE_KEY], expire_on_commit=False) as db:
            job = db.get(AdaptJob, job_id)
        if predicate(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: {job.state} {job.reason}")


def test_a_worker_killed_mid_training_is_taken_up_again_and_the_job_finishes_once(
    app, tmp_path: Path, database_url: str
):
    device(app)
    register(app, FOMO)
    teacher = real_teacher(app, tmp_path)
    finished_capture(app, "cap-adaptkill01", clip_frames(40))
    with Session(app.extensions[ENGINE_KEY], expire_on_commit=False) as db:
        job = service.start(
            db,
            app.config["HUB_SETTINGS"],
            "cam-1",
            created_by="alice",
            capture_id="cap-adaptkill01",
            teacher=teacher.ref,
        )
    env = hub_env(app, tmp_path, database_url)
    first = worker_process(tmp_path, env, 0, "--lease", "3", "--steps", "150")
    try:
        wait_job(app, job.id, lambda j: j.state == "training" and j.progress >= 0.1, 120, "training")
        first.kill()  # SIGKILL: no clean-up, the lease stays taken until it runs out
        first.wait(10)
    finally:
        first.kill()
    midway = wait_job(app, job.id, lambda j: True, 1, "the job")
    assert midway.state == "training" and midway.worker is not None and midway.attempts == 1
    second = worker_process(tmp_path, env, 1, "--lease", "3", "--steps", "150")
    try:
        final = wait_job(
            app, job.id, lambda j: j.state in ("shadow", "rejected", "failed"), 300, "the job past training"
        )
        second.send_signal(signal.SIGTERM)  # a clean stop releases the lease at once
        assert second.wait(60) == 0
    finally:
        second.kill()
    assert final.attempts == 2, final.reason
    assert final.state == "shadow", final.reason  # 150 steps on this clip: better (0.30 -> 0.9 measured)
    with Session(app.extensions[ENGINE_KEY]) as db:
        lines = list(db.scalars(select(AdaptLogLine.line).where(AdaptLogLine.job_id == job.id)))
        adapted = list(db.scalars(select(ModelVersion).where(ModelVersion.version.like("%-site.%"))))
        campaigns = list(db.scalars(select(Campaign).where(Campaign.target == f"adapt:{job.id}")))
        after = db.get(AdaptJob, job.id)
    assert any("taken up again" in line and "attempt 2" in line for line in lines)
    assert [m.ref for m in adapted] == [final.result_ref] and len(campaigns) == 1  # registered once
    assert campaigns[0].shadow and campaigns[0].state == "running"  # waiting for a device that is not there
    assert f"{final.device_id}" == "cam-1" and len(list_members(app, campaigns[0].id)) == 1
    assert after.worker is None and after.lease_until is None  # released by the clean stop
    assert (Path(app.instance_path) / "adapt" / job.id / "run" / "report.json").is_file()


def list_members(app, campaign_id: str) -> list[str]:
    from cloud_hub.rollout.campaigns import devices_of

    with Session(app.extensions[ENGINE_KEY]) as db:
        return [row.device_id for row in devices_of(db, campaign_id)]


def run_worker_once(app, options: WorkerOptions) -> AdaptWorker:
    """One in-process worker takes the one job and carries it as far as it goes."""
    worker = AdaptWorker(
        app.extensions[ENGINE_KEY], app.instance_path, app.config["HUB_SETTINGS"].snapshot_dir, options
    )
    job_id = worker.claim()
    assert job_id is not None
    worker.process(job_id)
    return worker


def start_job(app, capture_id: str, teacher: str) -> str:
    with Session(app.extensions[ENGINE_KEY], expire_on_commit=False) as db:
        return service.start(
            db,
            app.config["HUB_SETTINGS"],
            "cam-1",
            created_by="alice",
            capture_id=capture_id,
            teacher=teacher,
        ).id


def nothing_registered(app, job_id: str) -> None:
    with Session(app.extensions[ENGINE_KEY]) as db:
        adapted = db.scalars(select(ModelVersion.version).where(ModelVersion.version.like("%-site.%")))
        assert list(adapted) == []
        assert list(db.scalars(select(Campaign.id))) == []
        assert db.get(AdaptJob, job_id).result_ref is None


def test_honest_outcomes_missing_teacher_and_too_few_frames_register_nothing(app, tmp_path: Path):
    device(app)
    register(app, FOMO)
    teacher = real_teacher(app, tmp_path)
    finished_capture(app, "cap-adaptfew001", clip_frames(3))
    few = start_job(app, "cap-adaptfew001", teacher.ref)
    run_worker_once(app, WorkerOptions(smoke=True))
    with Session(app.extensions[ENGINE_KEY]) as db:
        job = db.get(AdaptJob, few)
        assert job.state == "failed" and "frame" in job.reason, job.reason  # adapt()'s AdaptError, verbatim
    nothing_registered(app, few)

    finished_capture(app, "cap-adaptgone01", clip_frames(30))
    blob = blob_dir(app.instance_path) / f"{teacher.sha256}.zip"
    blob.unlink()  # the teacher's stored bundle is gone (disk trouble, a careless clean-up)
    gone = start_job(app, "cap-adaptgone01", teacher.ref)
    run_worker_once(app, WorkerOptions(smoke=True))
    with Session(app.extensions[ENGINE_KEY]) as db:
        job = db.get(AdaptJob, gone)
        assert job.state == "failed", job.reason
        assert (
            job.reason == f"model {teacher.ref}: its stored bundle {blob.name} is missing from the registry"
        )
    nothing_registered(app, gone)


def test_a_model_that_is_not_better_is_rejected_and_nothing_is_registered(app, tmp_path: Path):
    """The real adapt() with a bar no model can pass (--min-gain 1): the job says why and writes nothing."""
    device(app)
    register(app, FOMO)
    teacher = real_teacher(app, tmp_path)
    finished_capture(app, "cap-adaptnot001", clip_frames(40))
    job_id = start_job(app, "cap-adaptnot001", teacher.ref)
    run_worker_once(app, WorkerOptions(smoke=True, min_gain=1.0))
    with Session(app.extensions[ENGINE_KEY]) as db:
        job = db.get(AdaptJob, job_id)
        shown = service.as_dict(db, job)
    assert job.state == "rejected", job.reason
    assert job.reason.startswith(
        "not better on the held-out frames, nothing registered: macro F1 vs the teacher"
    )
    assert "(needed more than +1)" in job.reason and job.frames_train == 24 and job.frames_judge == 16
    assert set(shown["before_f1"]) == {"macro", "person"} and set(shown["after_f1"]) == {"macro", "person"}
    nothing_registered(app, job_id)
    assert not (Path(app.instance_path) / "adapt" / job_id / "run" / "model").exists()


def wait_state(app, job_id: str, states: tuple[str, ...], timeout: float = 120) -> AdaptJob:
    return wait_job(app, job_id, lambda j: j.state in states, timeout, f"state in {states}")


def test_shadow_outcomes_offline_device_and_a_failed_gate_stop_the_campaign(app, tmp_path: Path):
    """Past registering, the job follows its campaign: a device silent past --shadow-timeout ends it failed
    (and the offer withdrawn); the controller's real gate verdict (a candidate that raised) ends it too."""
    from cloud_hub.rollout.controller import Controller
    from cloud_hub.rollout.keys import key_dir, load_signing_key
    from cloud_hub.rollout.models import CampaignDevice

    device(app, state="offline")
    register(app, FOMO)
    teacher = real_teacher(app, tmp_path)
    finished_capture(app, "cap-adaptsh0001", clip_frames(40))
    better = WorkerOptions(
        smoke=True, min_gain=-1.0, shadow_timeout_s=1.0, poll_s=0.2
    )  # any result registers
    offline = start_job(app, "cap-adaptsh0001", teacher.ref)
    run_worker_once(app, better)
    with Session(app.extensions[ENGINE_KEY]) as db:
        job = db.get(AdaptJob, offline)
        campaign = db.get(Campaign, job.campaign_id)
        assert job.state == "failed" and job.reason == "device cam-1 offline for more than 1 s during shadow"
        assert job.result_ref is not None and campaign.state == "aborting"  # the controller withdraws it
        name, _, version = job.result_ref.partition("@")
        adapted = db.scalar(
            select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
        )
        assert adapted.device_scope == "cam-1" and campaign.offer["device_scope"] == "cam-1"  # issue 24
        lines = list(db.scalars(select(AdaptLogLine.line).where(AdaptLogLine.job_id == offline)))
    assert any(line.startswith(f"shadow campaign {campaign.id}") for line in lines)
    assert f"registered {job.result_ref} (signed, scoped to cam-1)" in lines

    device(app, state="online")
    finished_capture(app, "cap-adaptsh0002", clip_frames(40))
    gated = start_job(app, "cap-adaptsh0002", teacher.ref)
    worker = AdaptWorker(
        app.extensions[ENGINE_KEY], app.instance_path, app.config["HUB_SETTINGS"].snapshot_dir, better
    )
    assert worker.claim() == gated
    thread = threading.Thread(target=worker.process, args=(gated,))
    thread.start()
    try:
        job = wait_state(app, gated, ("shadow", "failed"))
        assert job.state == "shadow", job.reason
        with Session(app.extensions[ENGINE_KEY]) as db:  # the device reports: fast, but it raised once
            row = db.scalar(select(CampaignDevice).where(CampaignDevice.campaign_id == job.campaign_id))
            row.state = "SHADOW"
            row.shadow = {
                "frames": 60.0,
                "agreement": 0.2,
                "active_ms_p50": 1.0,
                "candidate_ms_p50": 1.1,
                "candidate_errors": 1.0,
            }
            db.commit()
            Controller(lambda *_: None, load_signing_key(key_dir(app.instance_path))).tick(db)
        job = wait_state(app, gated, ("failed", "done"), 30)
    finally:
        worker.stop_event.set()
        thread.join(30)
    assert job.state == "failed"
    assert job.reason == (
        f"not promoted, campaign {job.campaign_id} stopped: shadow thresholds not met, not "
        "promoted: cam-1: the candidate failed on 1 frames (at most 0)"
    )
    with Session(app.extensions[ENGINE_KEY]) as db:
        assert db.get(Campaign, job.campaign_id).state == "aborting"


def test_device_page_form_starts_a_job_for_an_admin_and_the_job_page_cancels_it(app, client, auth, tmp_path):
    device(app)
    registry_setup(app, tmp_path)
    finished_capture(app, "cap-adaptform01", clip_frames(4))
    auth.create("admin", "admin")
    auth.login("admin")
    page = client.get("/devices/cam-1").get_data(as_text=True)
    assert "Adapt to this view" in page and 'id="adaptations"' in page
    answer = client.post(
        "/devices/cam-1/adaptations",
        data={"capture_id": "cap-adaptform01", "teacher": "", "csrf_token": auth.csrf()},
    )
    assert answer.status_code == 302 and "/adaptations/adp-" in answer.location
    job_id = answer.location.rsplit("/", 1)[1]
    job_page = client.get(f"/adaptations/{job_id}").get_data(as_text=True)
    assert (
        'id="adapt-cancel"' in job_page and 'data-refresh="2"' in job_page and "started by admin" in job_page
    )
    refused = client.post(
        "/devices/cam-1/adaptations", data={"capture_id": "cap-adaptform01", "csrf_token": auth.csrf()}
    )
    assert refused.status_code == 302 and refused.location.endswith("#adaptations")  # one at a time, flashed
    cancelled = client.post(f"/adaptations/{job_id}/cancel", data={"csrf_token": auth.csrf()})
    assert cancelled.status_code == 302
    job_page = client.get(f"/adaptations/{job_id}").get_data(as_text=True)
    assert (
        "cancelled by admin" in job_page and 'data-refresh="0"' in job_page and "adapt-cancel" not in job_page
    )
